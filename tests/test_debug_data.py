"""`lit_ner debug-data` counts what the data holds and what training will make of it: checked on
the WNUT-17 release against plain counts of its lines, and on a file made to hold each problem."""

import json
import subprocess

import pytest

from .conftest import REPO
from .test_evaluate import LIT_NER


def debug_data(tmp_path, *args, env=None):
    import os

    result = subprocess.run(
        [LIT_NER, "debug-data", *args, f"--output={tmp_path / 'out'}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, **(env or {})},
    )
    return result


def plain_entities(path):
    """(sentences, words, entities as (type, text)) of a CoNLL file, read without lit_ner."""
    sentences, words, entities, current = 0, 0, [], None
    for line in [*path.read_text(encoding="utf-8").split("\n"), ""]:
        if not line.strip():
            sentences += current is not None
            current = None
            continue
        word, tag = line.rstrip("\r").split("\t")
        words += 1
        if current is None:
            current = []
        if tag.startswith("B-"):
            entities.append([tag[2:], word])
        elif tag.startswith("I-"):
            entities[-1][1] += " " + word
    return sentences, words, [tuple(entity) for entity in entities]


@pytest.mark.slow
def test_debug_data_counts_the_wnut17_release_and_its_unseen_entities(wnut17_dir, tmp_path, minilm_dir):
    result = debug_data(
        tmp_path,
        "--config", str(REPO / "configs" / "wnut.yaml"), "--config", str(REPO / "configs" / "offline.yaml"),
        env={"WNUT17_DIR": str(wnut17_dir)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "debug_data.json").read_text())
    assert (tmp_path / "out" / "debug_data.png").stat().st_size > 10_000
    files = {
        "train": "wnut17train.conll",
        "validation": "emerging.dev.conll",
        "test": "emerging.test.annotated",
    }
    forms = {}
    for split, name in files.items():
        sentences, words, entities = plain_entities(wnut17_dir / name)
        numbers = report["splits"][split]
        assert (numbers["sentences"], numbers["words"], numbers["entities"]) == (
            sentences,
            words,
            len(entities),
        )
        assert sum(numbers["entities_per_type"].values()) == len(entities)
        assert numbers["ill_formed_bio"] == 0 and numbers["longer_than_max_length"] == 0
        forms[split] = entities
    assert [report["splits"][s]["sentences"] for s in files] == [3394, 1009, 1287]
    # The variation selector U+FE0F alone on a line: the tokenizer makes nothing of it.
    assert report["splits"]["test"]["words_without_subword"] == 3
    assert all(
        "'\ufe0f'" in example for example in report["splits"]["test"]["words_without_subword_examples"]
    )
    seen = {text for _, text in forms["train"]}
    for split in ("validation", "test"):
        unique = {text for _, text in forms[split]}
        expected = sum(text not in seen for text in unique) / len(unique)
        assert report["unseen_in_train"][split]["unseen_forms"] == expected
    assert "test entities never seen in train: 100.0% of its 948 unique surface forms" in result.stdout


PROBLEMS = """Paris\tB-location
is\tO
nice\tI-location
and\tO
big\tI-location

Apple\tB-corporation
rocks\tO

\u200b\tO
hello\tO
world\tI-person

{long}
"""


@pytest.mark.slow
def test_debug_data_finds_and_places_each_problem_of_a_conll_file(tiny_model_dir, tmp_path):
    long_sentence = "\n".join(f"word{i}\tO" for i in range(30))  # ~60 subwords: 4+ windows of 24
    train = tmp_path / "train.conll"
    train.write_text(PROBLEMS.format(long=long_sentence), encoding="utf-8")
    test = tmp_path / "test.conll"
    test.write_text("Paris\tB-location\nand\tO\nRome\tB-location\n\nApple\tB-corporation\n", encoding="utf-8")
    result = debug_data(
        tmp_path,
        "--model.model_name_or_path", tiny_model_dir, f"--data.train_file={train}",
        f"--data.validation_file={train}", f"--data.test_file={test}", "--data.max_length=24",
        "--data.stride=8",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "debug_data.json").read_text())
    train_numbers = report["splits"]["train"]
    assert (train_numbers["sentences"], train_numbers["words"]) == (4, 5 + 2 + 3 + 30)
    # I- after O: lines 3, 5 and 12, in 2 sentences, each read as an entity start.
    assert train_numbers["ill_formed_bio"] == 3 and train_numbers["ill_formed_bio_sentences"] == 2
    assert train_numbers["ill_formed_bio_examples"] == [
        "line 3: 'I-location' after 'O'",
        "line 5: 'I-location' after 'O'",
        "line 12: 'I-person' after 'O'",
    ]
    assert train_numbers["entities_per_type"] == {"corporation": 1, "location": 3, "person": 1}
    assert train_numbers["words_without_subword"] == 1
    assert train_numbers["words_without_subword_examples"] == ["line 10: '\\u200b'"]
    assert train_numbers["longer_than_max_length"] == 1 and train_numbers["max_length"] == 24
    long_length = train_numbers["subword_lengths"][3]
    assert long_length > 24 and train_numbers["windows_of_long_sentences"] >= long_length // 24 + 1
    assert train_numbers["long_sentence_examples"][0].startswith(
        f"line 14: {long_length} subword positions -> "
    )
    # Test: Paris (seen in train) and Rome (not), Apple (seen): 1 of 3 unique forms unseen.
    unseen = report["unseen_in_train"]["test"]
    assert unseen["unique_forms"] == 3 and abs(unseen["unseen_forms"] - 1 / 3) < 1e-12
    assert "ill-formed BIO: 3 I- tags continuing no entity, in 2 sentences" in result.stdout


@pytest.mark.slow
def test_debug_data_on_a_malformed_file_is_one_line_and_exit_status_2(tiny_model_dir, tmp_path):
    bad = tmp_path / "bad.conll"
    bad.write_text("Paris\tB-location\nthree\tcolumns\there\n", encoding="utf-8")
    result = debug_data(
        tmp_path, "--model.model_name_or_path", tiny_model_dir, f"--data.train_file={bad}",
        f"--data.validation_file={bad}",
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"lit_ner: error: {bad}:2:")
