"""Every bad input in the robustness page's table (docs/robustness.md), fed to the real CLI: each
gets exactly the documented one
line on stderr (`lit_ner: error: ...`, `…` standing for a long tail) and exit status 2, never a
traceback."""

import re

import pytest

from lit_ner.training.cli import cli_main

from .conftest import REPO

GOOD = "Paris\tB-location\nis\tO\nnice\tO\n\nBob\tB-person\nMarley\tI-person\n"


def readme_cases() -> dict[str, str]:
    """The documented bad-input table: case -> message."""
    text = (REPO / "docs" / "robustness.md").read_text()
    table = text.split("<!-- bad-input-table -->")[1]
    rows = re.findall(r"^\| (.+?) \| `(lit_ner: error: .+)` \|$", table, flags=re.M)
    return dict(rows)


def write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path.name


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory, tiny_model_dir):
    """A real checkpoint, trained for one step on GOOD's labels."""
    directory = tmp_path_factory.mktemp("trained")
    (directory / "good.conll").write_text(GOOD)
    cli_main(
        [
            "fit", "--model.model_name_or_path", tiny_model_dir,
            f"--data.train_file={directory / 'good.conll'}",
            f"--data.validation_file={directory / 'good.conll'}",
            f"--data.cache_dir={directory}", "--trainer.max_steps=1", "--trainer.logger=false",
            f"--trainer.default_root_dir={directory}", "--trainer.enable_progress_bar=false",
        ]
    )  # fmt: skip
    return directory / "checkpoints" / "last.ckpt"


def case_inputs(case: str, tmp_path, checkpoint, model_dir) -> list[str]:
    """Writes the case's files into tmp_path (the working directory) and returns its CLI args."""
    write(tmp_path / "train.conll", GOOD)
    if case == "An encoder whose tokenizer has no fast version":
        import shutil

        # The tiny model's weights, with a tokenizer that exists in Python only (ByT5's).
        shutil.copytree(model_dir, tmp_path / "slow")
        for path in (tmp_path / "slow").glob("*"):
            if "token" in path.name or path.name == "vocab.txt":
                path.unlink()
        write(tmp_path / "slow" / "tokenizer_config.json", '{"tokenizer_class": "ByT5Tokenizer"}')
        write(tmp_path / "dev.conll", GOOD)
        return ["fit", "--data.train_file=train.conll", "--data.validation_file=dev.conll",
                "--model.model_name_or_path=slow"]  # fmt: skip
    files = ["--data.train_file=train.conll", "--data.validation_file=dev.conll"]
    dev = {
        "A CoNLL line with more columns than the others": "Paris\tB-location\nis\tO\tO\n",
        "A CoNLL line with a token and no tag": "Paris\tB-location\nis\n",
        "A CoNLL line with an empty token": "Paris\tB-location\n\tO\n",
        "A tag outside the given label set": GOOD,
        "An entity type the train split never has": "Paris\tB-location\nApple\tB-corporation\n",
        "A split with no sentences (empty, or blank lines only)": "\n  \n\n",
        "Bytes that are not UTF-8": b"Paris\tB-location\nSa\xefd\tB-person\n",
        "A tag that no tag scheme reads": "Bob\tB-person\nParis\tLOC\n",
        "A label map naming a type no split holds": GOOD,
        "Ill-formed BIO, with --data.strict_bio true": "Marley\tI-person\n",
    }
    jsonl = {
        "A JSONL line that is not JSON": '{"tokens": ["Paris"], "tags": ["B-location"]}\n{"tokens": [\n',
        "A JSONL line that is not an object": '["Paris", "B-location"]\n',
        "A JSONL line whose tokens and tags differ in length": '{"tokens": ["a", "b"], "tags": ["O"]}\n',
        "A JSONL line whose tokens are not strings": '{"tokens": ["Bob", 7], "tags": ["B-person", "O"]}\n',
    }
    if case in dev:
        write(tmp_path / "dev.conll", dev[case])
        extra = {
            "A tag outside the given label set": ['--data.label_names=["O", "B-location", "I-location"]'],
            "Ill-formed BIO, with --data.strict_bio true": ["--data.strict_bio=true"],
            "A label map naming a type no split holds": ['--data.label_map={"ORG": "X"}'],
        }.get(case, [])
        return ["fit", *files, *extra]
    if case in jsonl:
        write(tmp_path / "dev.jsonl", jsonl[case])
        return ["fit", "--data.train_file=train.conll", "--data.validation_file=dev.jsonl"]
    if case == "A file that does not exist":
        return ["fit", "--data.train_file=train.conll", "--data.validation_file=nowhere.conll"]
    if case == "A Hub data set, with no network":
        return ["fit", "--data.dataset_name=someone/tweet_ner"]
    if case == "A WNUT-17 directory without the release files":
        (tmp_path / "wnut17").mkdir()
        return ["fit", "--data.dataset_name=leondz/wnut_17", "--data.data_dir=wnut17"]
    write(tmp_path / "dev.conll", GOOD)
    if case == "A checkpoint trained on other labels":
        write(tmp_path / "dev.conll", GOOD + "\nApple\tB-corporation\n")
        write(tmp_path / "train.conll", GOOD + "\nApple\tB-corporation\n")
        return ["validate", *files, f"--ckpt_path={checkpoint}"]
    if case == "A truncated checkpoint (a kill during a copy)":
        write(tmp_path / "cut.ckpt", checkpoint.read_bytes()[:100_000])
        return ["validate", *files, "--ckpt_path=cut.ckpt"]
    if case == "A file that is not a checkpoint":
        write(tmp_path / "notes.ckpt", "not a checkpoint\n")
        return ["validate", *files, "--ckpt_path=notes.ckpt"]
    raise KeyError(f"no input for the documented case {case!r}")


CASES = readme_cases()


def test_the_readme_lists_the_bad_inputs():
    assert len(CASES) == 21


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gets_the_readmes_one_line_message(
    case, tmp_path, monkeypatch, capsys, tiny_model_dir, trained_checkpoint, no_wnut17_env
):
    monkeypatch.chdir(tmp_path)
    args = case_inputs(case, tmp_path, trained_checkpoint, tiny_model_dir)
    if not any(arg.startswith("--model.model_name_or_path") for arg in args):
        args += ["--model.model_name_or_path", tiny_model_dir]
    args += [f"--data.cache_dir={tmp_path}", "--trainer.logger=false"]
    with pytest.raises(SystemExit) as exit_:
        cli_main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("lit_ner: error:")]
    assert len(lines) == 1, err[-2000:]
    expected = CASES[case].replace(str(trained_checkpoint), "CKPT")
    pattern = ".*".join(re.escape(part) for part in expected.split("…"))
    assert re.fullmatch(pattern, lines[0].replace(str(trained_checkpoint), "CKPT")), (lines[0], expected)
