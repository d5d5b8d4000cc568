"""The package's boundaries, held: what each folder may import (docs/development.md, Layout), the
files an export ships importing nothing of lit_ner, tagging without Lightning, the torch-free
commands without torch, one path from a checkpoint's weights to a model, and the versions whose
private parts lit_ner uses."""

import ast
import json
import subprocess
import sys

import pytest
import tomllib

from .conftest import FIXTURES, REPO

SRC = REPO / "src" / "lit_ner"
SUB_PACKAGES = ("data", "model", "training", "export", "tagging", "portable")
HEAVY = ("torch", "lightning", "pytorch_lightning", "transformers", "datasets", "torchmetrics")
LIGHTNING = ("lightning", "pytorch_lightning")

# Per folder (or module), the imports it must never make: third-party packages and lit_ner modules,
# each also forbidding what is below it. Function-level imports count: a lazy import is still a
# dependency. (`training/` may import anything.)
FORBIDDEN = {
    "": (*HEAVY, *(f"lit_ner.{package}" for package in SUB_PACKAGES if package != "portable")),
    "data": ("lit_ner.model", "lit_ner.training", "lit_ner.export", "lit_ner.tagging"),
    "model": ("lit_ner.training", "lit_ner.export", "lit_ner.tagging"),
    # What reading a checkpoint's weights needs: tagging and exporting a .ckpt load no Lightning.
    "model/encoder.py": (*LIGHTNING, "lit_ner.model.module", "lit_ner.data.datamodule", "lit_ner.training"),
    "model/crf.py": (*LIGHTNING, "lit_ner.model.module", "lit_ner.data.datamodule", "lit_ner.training"),
    "model/checkpoint.py": (
        *LIGHTNING,
        "lit_ner.model.module",
        "lit_ner.data.datamodule",
        "lit_ner.training",
    ),
    "export": (
        *LIGHTNING,
        "lit_ner.training",
        "lit_ner.data",
        "lit_ner.model.module",
        "lit_ner.model.metrics",
        "lit_ner.tagging",
    ),
    "tagging": (*LIGHTNING, "lit_ner.training", "lit_ner.data", "lit_ner.model"),
    "portable": ("lit_ner",),  # but each other, by relative imports
}
# The top level's exceptions: the package's public names and the command table point into the
# sub-packages (imported on use), the compatibility module reaches into the libraries it is about
# (lazily), and hub.py loads a model's tokenizer (lazily) the one way that training, export and
# tagging all load it.
EXEMPT = {
    "__init__.py": tuple(f"lit_ner.{package}" for package in SUB_PACKAGES),  # names, imported on use
    "__main__.py": ("lit_ner.training",),
    "compat.py": ("torch", "lightning", "datasets"),
    "hub.py": ("transformers",),
}
# What the files copied into exports may import at all: transformers and what it always installs
# (tokenizers; and the pipeline, torch: transformers' pipeline hands it tensors).
PORTABLE_ALLOWED = ("numpy", "transformers", "tokenizers")
# The portable files that run with a torch model: the pipeline (transformers hands it tensors) and
# an ensemble's model classes (the model itself).
TORCH_PORTABLE = ("portable/pipeline.py", "portable/ensemble.py")


def imported_modules(relative: str, source: str) -> set[tuple[str, bool]]:
    """Every module `source` (the file at `relative` under src/lit_ner) imports, at any level, by
    its absolute name, and whether the import was relative (`from .words import ...`, how the
    portable modules import each other: resolved from the importing module's package)."""
    package = ["lit_ner", *relative.split("/")[:-1]]
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update((alias.name, False) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add((module, node.level > 0))
            names.update(
                (f"{module}.{alias.name}", node.level > 0) for alias in node.names if not node.module
            )
    return names


def rules_for(relative: str) -> tuple[str, ...]:
    folder = relative.split("/")[0]
    folder = folder if folder in SUB_PACKAGES else ""  # wnut17/ is a top-level tool too
    return FORBIDDEN.get(folder, ()) + FORBIDDEN.get(relative, ())


def violations(relative: str, source: str) -> list[str]:
    """The imports of `source` that its place in the package forbids."""
    found = []
    exempt = EXEMPT.get(relative, ())
    for name, is_relative in sorted(imported_modules(relative, source)):
        if is_relative and relative.startswith("portable/"):
            continue  # the portable modules import each other, relatively
        for forbidden in rules_for(relative):
            if (name == forbidden or name.startswith(forbidden + ".")) and not any(
                name == e or name.startswith(e + ".") for e in exempt
            ):
                found.append(f"{relative} imports {name} ({forbidden} is outside its boundary)")
        if relative.startswith("portable/") and not is_relative:
            top = name.split(".")[0]
            allowed = PORTABLE_ALLOWED + (("torch",) if relative in TORCH_PORTABLE else ())
            if top not in sys.stdlib_module_names and top not in allowed and top != "lit_ner":
                found.append(f"{relative} imports {name}, which an export's host may not have")
    return found


def package_files() -> dict[str, str]:
    return {path.relative_to(SRC).as_posix(): path.read_text() for path in sorted(SRC.rglob("*.py"))}


def test_every_module_imports_only_what_its_folder_may():
    found = [line for relative, source in package_files().items() for line in violations(relative, source)]
    assert found == []


@pytest.mark.parametrize(
    "relative, added",
    [
        ("tagging/tagger.py", "import lightning"),
        ("tagging/runtime.py", "from lit_ner.training.resume import run_directory"),
        ("portable/words.py", "from lit_ner.errors import LitNerError"),
        ("portable/spans.py", "import pandas"),
        ("model/encoder.py", "from lightning.pytorch import LightningModule"),
        ("export/hf.py", "from lit_ner.model.module import TokenClassifier"),
        ("scoring.py", "import torch"),
        ("formats.py", "from lit_ner.data.datamodule import NERDataModule"),
        ("data/sources.py", "from lit_ner.model.module import TokenClassifier"),
        ("tagging/tag.py", "from ..training import summary"),
        ("wnut17/__init__.py", "import torch"),
        ("portable/word_decoding.py", "import torch"),
    ],
)
def test_a_forbidden_import_added_anywhere_is_caught_even_inside_a_function(relative, added):
    source = package_files()[relative]
    assert violations(relative, source) == []
    inside_a_function = source + f"\n\ndef _added():\n    {added}\n"
    assert len(violations(relative, inside_a_function)) == 1


def test_the_files_an_export_ships_are_the_portable_package():
    from lit_ner.export.hf import PIPELINE_FILES

    shipped = {path.name for path in (SRC / "portable").glob("*.py")} - {"__init__.py"}
    # Every export that carries code ships the pipeline's files; an ensemble's also its classes.
    assert set(PIPELINE_FILES) | {"ensemble.py"} == shipped


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def crf_checkpoint(tmp_path_factory, tiny_model_dir):
    """A lit_ner checkpoint (what ModelCheckpoint writes, as far as tagging reads it) of a tiny
    random model with a CRF head and word-shape features."""
    import torch

    from lit_ner.model.encoder import ClassifierParts
    from lit_ner.wnut17 import WNUT17_LABELS

    torch.manual_seed(0)
    hparams = {
        "label_names": WNUT17_LABELS, "model_name_or_path": tiny_model_dir, "head": "crf",
        "word_features": True, "word_features_dim": 4, "decoding": "argmax",
    }  # fmt: skip
    parts = ClassifierParts(
        WNUT17_LABELS, tiny_model_dir, head="crf", word_features=True, word_features_dim=4
    )
    path = tmp_path_factory.mktemp("ckpt") / "epoch=0.ckpt"
    torch.save({"state_dict": parts.state_dict(), "hyper_parameters": hparams, "epoch": 0}, path)
    return path


def test_a_checkpoints_weights_are_exactly_the_lightning_modules(tiny_model_dir):
    from lit_ner.model.encoder import ClassifierParts
    from lit_ner.model.module import TokenClassifier
    from lit_ner.wnut17 import WNUT17_LABELS

    options = {"head": "crf", "word_features": True, "word_features_dim": 4}
    module = TokenClassifier(WNUT17_LABELS, model_name_or_path=tiny_model_dir, **options)
    parts = ClassifierParts(WNUT17_LABELS, tiny_model_dir, **options)
    assert list(module.state_dict()) == list(parts.state_dict())
    assert {"crf.transitions", "word_shapes.embedding.weight"} <= set(parts.state_dict())


@pytest.mark.slow
def test_tagging_a_checkpoint_loads_no_lightning(crf_checkpoint):
    code = (
        "import json, sys\n"
        "from lit_ner import Tagger\n"
        f"tagger = Tagger.from_pretrained({str(crf_checkpoint)!r})\n"
        "entities = tagger('Alice flew to New York with @bob')\n"
        "print(json.dumps([tagger.decoding, len(entities), 'lightning' in sys.modules]))\n"
    )
    decoding, found, lightning_loaded = json.loads(run_python(code))
    assert decoding == "crf" and found > 0
    assert lightning_loaded is False


@pytest.mark.slow
def test_the_torch_free_commands_load_neither_torch_nor_lightning(tmp_path):
    run = tmp_path / "runs" / "version_0"
    run.mkdir(parents=True)
    summary = {"seed": 42, "run_dir": str(run), "best/val_f1": 0.5, "test/f1": 0.4, "test/precision": 0.5}
    (run / "fit_summary.json").write_text(json.dumps(summary))
    gold = str(FIXTURES / "quirks.conll")
    code = (
        "import contextlib, io, sys\n"
        "from lit_ner.__main__ import run_command\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    run_command('evaluate', [{gold!r}, {gold!r}])\n"
        f"    run_command('convert', [{gold!r}, {str(tmp_path / 'out.jsonl')!r}, '--to', 'doccano'])\n"
        f"    run_command('summarize', [{str(tmp_path / 'runs')!r}])\n"
        "print(sorted(name for name in ('torch', 'lightning', 'transformers') if name in sys.modules))\n"
    )
    assert run_python(code) == "[]"
    assert (tmp_path / "out.jsonl").read_text().count("\n") > 1


def test_pyproject_caps_each_package_whose_private_parts_are_used_at_the_tested_range():
    from packaging.requirements import Requirement

    from lit_ner.compat import SUPPORTED

    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = dependencies["optional-dependencies"]
    requirements = [*dependencies["dependencies"], *extras["serve"], *extras["search"]]
    declared = {Requirement(r).name: str(Requirement(r).specifier) for r in requirements}
    for distribution, supported in SUPPORTED.items():
        assert declared[distribution] == str(Requirement(f"x{supported}").specifier), distribution
        assert any(part.startswith("<") for part in supported.split(",")), distribution


def test_an_untested_version_is_refused_in_one_line_unless_allowed(monkeypatch):
    from lit_ner import compat
    from lit_ner.errors import LitNerError

    monkeypatch.delenv(compat.UNTESTED_VERSIONS, raising=False)  # `make test-latest` sets it
    monkeypatch.setitem(compat.SUPPORTED, "lightning", ">=0.1,<0.2")
    compat.require.cache_clear()
    try:
        with pytest.raises(
            LitNerError, match=r"lightning \S+ is installed; lit_ner is tested with lightning"
        ):
            compat.require("lightning")
        monkeypatch.setenv(compat.UNTESTED_VERSIONS, "1")
        compat.require.cache_clear()
        with pytest.warns(UserWarning, match="trying it anyway"):
            compat.require("lightning")
    finally:
        compat.require.cache_clear()


def test_private_attributes_of_libraries_are_used_in_the_compatibility_module_alone():
    # Outside compat.py, a private attribute is read only on lit_ner's own objects: `self._name`
    # where lit_ner's code sets `self._name` (not one a Lightning base class keeps), never
    # `other._name`.
    trees = {
        relative: ast.parse(source) for relative, source in package_files().items() if relative != "compat.py"
    }
    private = [
        (relative, node)
        for relative, tree in trees.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
    ]
    own = {
        node.attr
        for _, node in private
        if isinstance(node.ctx, ast.Store) and ast.unparse(node.value) == "self"
    }
    own |= {  # and lit_ner's own private methods
        node.name for tree in trees.values() for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
    }
    found = [
        f"{relative}:{node.lineno}: {ast.unparse(node)}"
        for relative, node in private
        if (ast.unparse(node.value) != "self" or node.attr not in own) and node.attr not in DOCUMENTED_HOOKS
    ]
    assert found == []


# Underscored names that a library documents as the ones to override, so not private: the
# exported pipeline (which cannot import lit_ner.compat) extends its parent's through them.
DOCUMENTED_HOOKS = {
    "_sanitize_parameters",  # transformers' "Adding a new pipeline": a pipeline's own call parameters
    "_forward",  # the same guide: the model call, between preprocess and postprocess
}
