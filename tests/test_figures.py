"""Every figure the README and docs/ print comes from a file (tests/figures.py says which): a
figure a page prints that the map does not know, a figure the map knows that the page no longer
prints, and a figure whose file now says otherwise each fail."""

import importlib.util
import json
import re

import pytest
import yaml

from .conftest import REPO
from .figures import FIGURES, Fact, Measured, Published, Setting

# A number with a decimal point, a count with thousands separators, a percentage or a multiplier.
FIGURE = re.compile(
    r"(?<![\w./=])(?<![A-Za-z]-)(?:"
    r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+)(?:x|%)?(?![\w.]*\d)"  # 0.4804, 1,287, 2.15x
    r"|\d+(?:\.\d+)?%"  # 96.6%
    r"|\d+(?= ?(?:min|minutes|s|ms|MB|GB|h|hours)\b)"  # 38 min, 111 s, 438 MB: a measure's unit
    r")"
)
PAGES = ["README.md", *(f"docs/{page.name}" for page in sorted((REPO / "docs").glob("*.md")))]


def bench_module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tables_tested_elsewhere() -> list[str]:
    """The tables tests/test_docs.py already equals to their files, as the pages print them."""
    results = json.loads((REPO / "bench" / "results.json").read_text())
    levers = json.loads((REPO / "bench" / "levers.json").read_text())
    return [
        bench_module("levers").markdown_table(levers),
        bench_module("levers").candidates_table(levers),
        *bench_module("tagging").markdown_tables(results["tagging"]),
        bench_module("raw_text").markdown_table(json.loads((REPO / "bench" / "raw_text.json").read_text())),
    ]


def printed_figures(text: str) -> list[str]:
    """The figures a page prints: outside code, links and the tables tested elsewhere."""
    for table in [*tables_tested_elsewhere(), *training_rows()]:
        text = text.replace(table.strip(), "")
    # The README's measured rows and results.md's table (both held to results.json).
    text = "\n".join(
        line for line in text.splitlines() if "| measured: `" not in line and not RESULTS_ROW.match(line)
    )
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    text = re.sub(r"`[^`\n]*`", "", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return FIGURE.findall(text)


RESULTS_ROW = re.compile(r"^\| `(\w+)` \| ")


def results_page_cells(scores: dict) -> list[str]:
    """A row of docs/results.md's table as results.json's scores print: mean ± sample std over
    the seeds (the mean alone for one seed), each seed's best epoch, minutes, mean peak RSS."""

    def cell(name: str, digits: int = 3) -> str:
        numbers = scores[name]
        spread = f" ± {numbers['std']:.{digits}f}" if len(numbers["values"]) > 1 else ""
        return f"{numbers['mean']:.{digits}f}{spread}"

    return [
        cell("best/val_f1"), ", ".join(str(epoch) for epoch in scores["best_epoch"]["values"]),
        cell("test/precision"), cell("test/recall"), cell("test/f1"), cell("test/accuracy"),
        cell("minutes", 1), f"{scores['peak_rss_gb']['mean']:.2f}",
    ]  # fmt: skip


def test_the_results_page_table_is_results_json():
    results = json.loads((REPO / "bench" / "results.json").read_text())["results"]
    rows = [
        line for line in (REPO / "docs" / "results.md").read_text().splitlines() if RESULTS_ROW.match(line)
    ]
    assert sorted(RESULTS_ROW.match(row).group(1) for row in rows) == sorted(results)  # each row once
    for row in rows:
        key = RESULTS_ROW.match(row).group(1)
        cells = [cell.strip().strip("*") for cell in row.strip("|").split("|")][2:]
        assert cells == results_page_cells(results[key]["scores"]), key


TRAINING_ROWS = {  # docs/speed.md's training table: engine as printed -> results.json's run
    "HF Trainer, the tutorial's (random batches, fp32)": "hf_tutorial",
    'HF Trainer, `train_sampling_strategy="group_by_length"`': "hf_group_by_length",
    "HF Trainer, `group_by_length` + `bf16=True`": "hf_group_by_length_bf16",
    'lit_ner, `precision="32-true"`': "lit_ner_fp32",
    'lit_ner, `precision="bf16-mixed"`': "lit_ner_bf16",
    "lit_ner fp32, `model.compile`": "lit_ner_fp32_compile",
    "lit_ner bf16-mixed, `model.compile`": "lit_ner_bf16_compile",
}


def training_row(engine: str, run: dict) -> str:
    passes = ", ".join(
        f"{rate:.1f}" for rate in run.get("train_samples_per_s_passes", [run["train_samples_per_s"]])
    )
    return (
        f"| {engine} | **{run['train_samples_per_s']:.1f}** ({passes}) | {run['real_tokens_per_s']:,.0f} | "
        f"{run['padded_fraction']:.1%} | {run['validate_s']:.2f} | {run['val_f1']:.3f} | "
        f"{run['peak_rss_mib']:,} | {run['model_flops_fraction_of_peak']:.0%} |"
    )


def training_rows() -> list[str]:
    runs = json.loads((REPO / "bench" / "results.json").read_text())["training"]["runs"]
    return [training_row(engine, runs[run]) for engine, run in TRAINING_ROWS.items()]


def test_the_speed_page_training_table_is_results_json():
    page = (REPO / "docs" / "speed.md").read_text()
    for row in training_rows():
        assert row in page, row


def as_printed(value: float, figure: str) -> str:
    """`value` written as `figure` is: its decimals, its thousands separators, its % or x."""
    number = figure.rstrip("%x").replace(",", "")
    decimals = len(number.split(".")[1]) if "." in number else 0
    if figure.endswith("%"):
        value *= 100
    text = f"{value:,.{decimals}f}" if "," in figure else f"{value:.{decimals}f}"
    return text + ("%" if figure.endswith("%") else "x" if figure.endswith("x") else "")


def setting(file: str, key: str) -> float:
    value = yaml.safe_load((REPO / file).read_text())
    for part in key.split("."):
        value = value[part]
    return float(value)


@pytest.mark.parametrize("page", PAGES)
def test_every_figure_a_page_prints_is_mapped_to_where_it_comes_from(page):
    printed = set(printed_figures((REPO / page).read_text()))
    mapped = FIGURES.get(page, {})
    assert sorted(printed - set(mapped)) == [], f"{page} prints figures tests/figures.py does not map"
    assert sorted(set(mapped) - printed) == [], f"tests/figures.py maps figures {page} no longer prints"


@pytest.mark.parametrize("page", sorted(FIGURES))
def test_every_mapped_figure_is_what_its_file_says(page):
    for figure, sources in FIGURES[page].items():
        for source in sources:
            if isinstance(source, Measured):
                assert as_printed(source.value, figure) == figure, (page, figure, source)
            elif isinstance(source, Setting):
                assert as_printed(setting(source.file, source.key), figure) == figure, (page, figure, source)
            else:
                assert isinstance(source, (Published, Fact)) and (
                    source.source if isinstance(source, Published) else source.what
                )


def test_a_changed_figure_fails():
    """The README's recipe test F1 printed one digit off is caught: the map's file says otherwise."""
    figure = "0.4804"
    (source, *_) = FIGURES["README.md"][figure]
    assert as_printed(source.value, figure) == figure
    assert as_printed(source.value, "0.4805") != "0.4805"
    page = (
        (REPO / "README.md")
        .read_text()
        .replace("scores the same test F1, 0.4804", "scores the same test F1, 0.4805")
    )
    assert "0.4805" in set(printed_figures(page)) - set(FIGURES["README.md"])


def test_the_figure_pattern_reads_figures_as_people_write_them():
    text = "F1 0.4804, 1,287 texts, 96.6% of them, 2.15x faster, recall 0.11-0.24, "
    text += "v2.13.0, 1e-4, ~8 min, 111 s, batch 16, 6 epochs, Apache-2.0"
    assert FIGURE.findall(text) == ["0.4804", "1,287", "96.6%", "2.15x", "0.11", "0.24", "8", "111"]
