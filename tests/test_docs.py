"""The documentation is part of the product: its links resolve, every command line it shows
parses against the real parsers (so a page naming a flag that does not exist fails here), and the
README's results are the figures `make results` wrote."""

import json
import re
import shlex
from pathlib import Path

import pytest

from lit_ner.__main__ import COMMANDS, run_command

from .conftest import FIXTURES, REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LIGHTNING = ("fit", "validate", "test", "predict")
COMMAND_START = r"(?:[A-Z_0-9]+=\S+\s+)*(?:\.\.\.\s+)?(?:lit_ner\s|python -m lit_ner\s|make train\b)"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading (a word's underscores kept: `lit_ner` -> lit_ner)."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text))


def test_every_relative_link_resolves():
    broken = []
    for page in PAGES:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # an outside address
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(), flags=re.M)
                if anchor not in {slug(h) for h in headings}:
                    broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken


def test_the_readme_is_a_landing_page():
    assert (REPO / "README.md").stat().st_size <= 12 * 1024


def command_lines(page: Path) -> list[tuple[str, str]]:
    """`(kind, line)` for every command line of a page: `block` lines of its shell code blocks
    (continuations joined, comments dropped), `inline` code spans in its prose."""
    found, block, pending = [], None, ""  # block: the open code block's language
    for line in page.read_text().split("\n"):
        if line.startswith("```"):
            block = line[3:].strip() if block is None else None
            continue
        if block is not None:
            if block not in ("bash", "sh", "shell", ""):
                continue  # terminal output, Python, YAML
            line = pending + line
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            line = re.split(r"\s#\s", " " + line, maxsplit=1)[0].strip()
            if re.match(COMMAND_START, line):
                found.append(("block", line))
        else:
            found += [
                ("inline", span) for span in re.findall(r"`([^`]+)`", line) if re.match(COMMAND_START, span)
            ]
    return found


def to_args(line: str, files: dict[str, str]) -> list[str] | None:
    """A documented command line as arguments of `lit_ner`'s entry point: synopsis brackets and
    alternatives resolved, `...` and placeholders (`CKPT`, `GOLD`, ...) filled by real files."""
    tokens = [t for t in shlex.split(line.replace("[", " ").replace("]", " ")) if t]
    while tokens and (re.fullmatch(r"[A-Z_0-9]+=\S+", tokens[0]) or tokens[0] == "..."):
        tokens.pop(0)
    if tokens[:2] == ["make", "train"]:
        args = ["fit", "--config", "configs/wnut.yaml"]
        for token in tokens[2:]:
            if token == "OFFLINE=1":
                args += ["--config", "configs/offline.yaml"]
            elif token.startswith("ARGS="):
                args += shlex.split(token.removeprefix("ARGS="))
        tokens = args
    elif tokens[0] == "lit_ner":
        tokens = tokens[1:]
    else:  # python -m lit_ner
        tokens = tokens[3:]
    args = []
    for previous, token in zip([None, *tokens], tokens):
        if token == "COMMAND":
            return None  # `lit_ner COMMAND --help`: every command's help is tested in test_layout
        if token == "...":
            if previous == "--config":
                args.append("configs/offline.yaml")
            elif previous == "--ckpt_path":
                args.append(files["CKPT"])
            continue
        if "|" in token and not token.startswith("-"):
            token = token.split("|")[0]
        args.append(files.get(token, token))
    return args


@pytest.fixture
def placeholder_files(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the pages' configs/... paths
    monkeypatch.delenv("WNUT17_DIR", raising=False)
    conll = str(FIXTURES / "quirks.conll")
    directory = tmp_path / "dir"
    directory.mkdir()
    (tmp_path / "model.ckpt").write_bytes(b"")
    return {
        "GOLD": conll,
        "PRED": conll,
        "INPUT": conll,
        "OUTPUT": str(tmp_path / "out.conll"),
        "FILE": str(tmp_path / "out.jsonl"),
        "CKPT": str(tmp_path / "model.ckpt"),
        "DIR_OR_CKPT": str(directory),
        "OUT_DIR": str(directory),
        "DIR": str(directory),
        "RUNS": str(directory),
    }


def parses(args: list[str], capsys) -> tuple[bool, str]:
    """Whether `lit_ner ARGS --print_config` parses (it prints the configuration and exits 0)."""
    from lit_ner.training.cli import cli_main

    with pytest.raises(SystemExit) as exit_:
        if args[0] in COMMANDS:
            run_command(args[0], [*args[1:], "--print_config"])
        else:
            cli_main([*args, "--print_config"])
    captured = capsys.readouterr()
    return exit_.value.code == 0, captured.err[-600:]


def help_flags(command: str, capsys) -> set[str]:
    from lit_ner.training.cli import cli_main

    with pytest.raises(SystemExit):
        run_command(command, ["--help"]) if command in COMMANDS else cli_main([command, "--help"])
    return set(re.findall(r"(--[\w.]+)", capsys.readouterr().out))


def known_flag(flag: str, flags: set[str]) -> bool:
    """A flag the parser lists, or below a listed option of its own (`--trainer.logger.init_args.offline`
    under `--trainer.logger`); a group alone (`--model`) vouches for nothing below it."""
    parts = flag.split(".")
    return any(".".join(parts[:n]) in flags for n in range(len(parts), 1, -1)) or flag in flags


def check_page(page: Path, files: dict[str, str], capsys) -> list[str]:
    problems, helps = [], {}
    for kind, line in command_lines(page):
        args = to_args(line, files)
        if not args:
            continue
        if kind == "block":
            ok, err = parses(args, capsys)
            if not ok:
                problems.append(f"{page.name}: `{line}` does not parse: {err.strip().splitlines()[-1:]}")
        else:  # prose names a command with some of its flags: each must exist
            command = args[0]
            if command not in helps:
                helps[command] = help_flags(command, capsys)
            for flag in re.findall(r"(--[\w.]+)", " ".join(args[1:])):
                if not known_flag(flag, helps[command]):
                    problems.append(f"{page.name}: `{line}` names {flag}, which `{command}` does not have")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_documented_command_line_parses(page, placeholder_files, capsys):
    assert check_page(page, placeholder_files, capsys) == []


def test_a_page_naming_a_flag_that_does_not_exist_fails(tmp_path, placeholder_files, capsys):
    page = tmp_path / "bad.md"
    page.write_text(
        "```bash\n"
        "python -m lit_ner fit --config configs/wnut.yaml --model.learning_rte 3e-5\n"
        "lit_ner evaluate GOLD PRED --bootstrapp 100\n"
        'make train OFFLINE=1 ARGS="--data.batchsize 16"\n'
        "```\n"
        "Prose: `lit_ner tag --model DIR --decodings argmax`.\n"
    )
    problems = check_page(page, placeholder_files, capsys)
    assert len(problems) == 4
    assert "--decodings, which `tag` does not have" in problems[-1]


def results_cells(scores: dict) -> list[str]:
    """A results row's figures as the README prints them: mean (± sample std over seeds)."""

    def cell(name: str, digits: int = 3) -> str:
        numbers = scores[name]
        spread = f" ± {numbers['std']:.{digits}f}" if len(numbers["values"]) > 1 else ""
        return f"{numbers['mean']:.{digits}f}{spread}"

    return [
        cell("best/val_f1"),
        cell("test/precision"),
        cell("test/recall"),
        cell("test/f1"),
        f"{scores['minutes']['mean']:.1f}",
    ]


def test_the_readme_results_are_the_figures_make_results_wrote():
    results = json.loads((REPO / "bench" / "results.json").read_text())["results"]
    rows = [line for line in (REPO / "README.md").read_text().split("\n") if "| measured: `" in line]
    # Every row make results wrote is shown, once.
    assert sorted(re.search(r"measured: `(\w+)`", row).group(1) for row in rows) == sorted(results)
    for row in rows:
        key = re.search(r"measured: `(\w+)`", row).group(1)
        cells = [cell.strip().strip("*") for cell in row.strip("|").split("|")][2:]
        assert cells == results_cells(results[key]["scores"]), key


def bench_module(name: str):
    """A script of bench/ imported as a module (its table writers)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


@pytest.mark.parametrize("page", sorted((REPO / "docs").glob("*.md")), ids=lambda page: page.name)
def test_every_page_opens_by_saying_who_it_is_for(page):
    title, blank, opening = page.read_text().splitlines()[:3]
    assert title.startswith("# ") and blank == "" and opening.startswith("For "), page.name


def test_the_lever_table_is_the_figures_make_levers_wrote():
    bench = bench_module("levers")
    results = json.loads((REPO / "bench" / "levers.json").read_text())
    page = (REPO / "docs" / "experiments.md").read_text()
    assert bench.markdown_table(results) in page and bench.candidates_table(results) in page


def test_the_tagging_tables_are_the_figures_make_bench_wrote():
    bench = bench_module("tagging")
    result = json.loads((REPO / "bench" / "results.json").read_text())["tagging"]
    pages = "\n".join(page.read_text() for page in sorted((REPO / "docs").glob("*.md")))
    for table in bench.markdown_tables(result):  # in tagging.md (int8), speed.md, design.md
        assert table in pages


def test_the_readme_shipping_figures_are_make_bench_s():
    engines = json.loads((REPO / "bench" / "results.json").read_text())["tagging"]["engines"]
    readme = (REPO / "README.md").read_text()
    speedup = engines["onnx_int8"]["texts_per_s"] / engines["pipeline_batched"]["texts_per_s"]
    over_torch = engines["onnx_int8"]["texts_per_s"] / engines["torch_fp32"]["texts_per_s"]
    for figure in (
        f"scores {engines['pipeline_per_text']['test_f1']:.4f} test F1",
        f"lit_ner scores {engines['torch_fp32']['test_f1']:.4f}",
        f"{speedup:.2f}x as\nmany texts per second",
        f"{over_torch:.2f}x the torch Tagger",
        f"(test F1 {engines['onnx_int8']['test_f1']:.4f})",
    ):
        assert figure in readme, figure


def test_the_raw_text_table_is_the_figures_make_raw_text_wrote():
    bench = bench_module("raw_text")
    result = json.loads((REPO / "bench" / "raw_text.json").read_text())
    assert bench.markdown_table(result) in (REPO / "docs" / "tagging.md").read_text()
    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"scores the same test F1, {result['typed']['f1']:.4f}" in readme
    assert result["typed"]["f1"] == result["tokens"]["test_f1"]
