"""Tag schemes: each is told apart, read into the entities its own scorer reads and written back
exactly; a data module trains in BIO whatever its files spell, and says what it rewrote."""

import json
import random

import pytest
from seqeval.metrics import f1_score
from seqeval.metrics.sequence_labeling import get_entities as seqeval_entities
from seqeval.scheme import BILOU, IOB2, IOBES

from lit_ner.data.datamodule import NERDataModule
from lit_ner.errors import LitNerError
from lit_ner.tag_schemes import (
    SCHEMES,
    detect_scheme,
    from_bio,
    ill_formed,
    read_entities,
    to_bio,
    write_tags,
)

SEQEVAL_SCHEMES = {"IOB2": IOB2, "IOBES": IOBES, "BILOU": BILOU}


def random_entities(rng: random.Random, length: int) -> list[tuple[str, int, int]]:
    """Non-overlapping entities of two types, often adjacent and of one type (where IOB1 needs B-
    and IO cannot tell them apart)."""
    entities, position = [], rng.randrange(2)
    while position < length:
        last = min(length - 1, position + rng.randrange(3))
        entities.append((rng.choice("XY"), position, last))
        position = last + 1 + rng.choice([0, 0, 1, 2])
    return entities


def test_every_scheme_writes_entities_that_read_back_the_same():
    rng = random.Random(0)
    for _ in range(300):
        length = rng.randrange(1, 12)
        entities = random_entities(rng, length)
        for scheme in SCHEMES:
            tags = write_tags(entities, length, scheme)
            if scheme == "IO":  # adjacent entities of one type merge: IO cannot spell them
                continue
            assert read_entities(tags, scheme) == entities, (scheme, tags)
            assert read_entities(tags, scheme, strict=True) == entities, (scheme, tags)
            assert not ill_formed(tags, scheme)
            assert to_bio(tags, scheme) == write_tags(entities, length, "IOB2")
            assert from_bio(to_bio(tags, scheme), scheme) == tags


def test_strict_reading_is_seqeval_strict_modes_and_lenient_reading_its_default():
    rng = random.Random(1)
    prefixes = {"IOB2": "BI", "IOBES": "BIES", "BILOU": "BILU"}
    for _ in range(500):
        for scheme, letters in prefixes.items():
            tags = [
                "O" if rng.random() < 0.3 else f"{rng.choice(letters)}-{rng.choice('XY')}"
                for _ in range(rng.randrange(1, 9))
            ]
            strict = {(t, a, b) for t, a, b in read_entities(tags, scheme, strict=True)}
            # seqeval's strict mode scores only well-formed chunks: F1 against the strict reading
            # written back as well-formed tags is 1 exactly when the two readings agree.
            rewritten = write_tags(sorted(strict, key=lambda e: e[1]), len(tags), scheme)
            if strict:
                assert f1_score([tags], [rewritten], mode="strict", scheme=SEQEVAL_SCHEMES[scheme]) == 1.0
            if scheme != "BILOU":  # seqeval's default reading knows no L-/U-
                assert read_entities(tags, scheme) == seqeval_entities(tags)


def test_schemes_are_detected_from_the_tags():
    iob1 = [["I-PER", "I-PER", "B-PER", "O", "I-LOC"], ["I-ORG", "O"]]
    assert detect_scheme(iob1).scheme == "IOB1"
    assert detect_scheme([["I-PER", "O", "I-LOC"]]).scheme == "IOB1"  # I- only: IO reads the same
    assert detect_scheme([["B-PER", "I-PER", "O", "B-LOC"], ["O", "I-LOC"]]).scheme == "IOB2"
    assert detect_scheme([["S-PER", "O", "B-LOC", "E-LOC"]]).scheme == "IOBES"
    assert detect_scheme([["U-PER", "O", "B-LOC", "L-LOC"]]).scheme == "BILOU"
    assert detect_scheme([["O", "O"]]).scheme == "IOB2"
    with pytest.raises(ValueError, match="mix IOBES"):
        detect_scheme([["S-PER", "U-LOC"]])
    with pytest.raises(ValueError, match="'PER' is neither O nor"):
        detect_scheme([["PER", "O"]])


def test_iob1_writes_b_only_where_an_entity_follows_one_of_its_type():
    entities = [("PER", 0, 1), ("PER", 2, 2), ("LOC", 3, 3), ("PER", 5, 5)]
    assert write_tags(entities, 6, "IOB1") == ["I-PER", "I-PER", "B-PER", "I-LOC", "O", "I-PER"]
    assert write_tags(entities, 6, "IOBES") == ["B-PER", "E-PER", "S-PER", "S-LOC", "O", "S-PER"]
    assert write_tags(entities, 6, "BILOU") == ["B-PER", "L-PER", "U-PER", "U-LOC", "O", "U-PER"]


# --- a data module on files in other schemes -------------------------------------------------


def conll(path, sentences):
    path.write_text("\n\n".join("\n".join(f"{w} POS CHUNK {t}" for w, t in s) for s in sentences) + "\n")
    return str(path)


def pairs(text: str) -> list[tuple[str, str]]:
    return [tuple(item.rsplit("/", 1)) for item in text.split()]


# CoNLL-2003's release format: four columns, IOB1, -DOCSTART- lines, B- only between two adjacent
# entities of one type, and here a B-ORG that only the test split spells.
IOB1_TRAIN = [
    pairs("EU/I-ORG rejects/O German/I-MISC call/O"),
    pairs("Peter/I-PER Blackburn/I-PER met/O Bill/I-PER in/O Brussels/I-LOC"),
    pairs("Germany/I-LOC 's/O Werner/I-PER Zwingmann/I-PER"),
]
IOB1_TEST = [pairs("Reuters/I-ORG Bloomberg/B-ORG and/O AP/I-ORG report/O"), pairs("Paris/I-LOC ./O")]


def test_iob1_files_train_as_bio_with_the_full_label_set_and_one_line_saying_so(
    tiny_model_dir, tmp_path, caplog
):
    train = conll(tmp_path / "eng.train", IOB1_TRAIN)
    test = conll(tmp_path / "eng.testb", IOB1_TEST)
    (tmp_path / "eng.train").write_text("-DOCSTART- -X- -X- O\n\n" + (tmp_path / "eng.train").read_text())
    with caplog.at_level("INFO"):
        data = NERDataModule(
            train_file=train, validation_file=test, test_file=test, tokenizer_name_or_path=tiny_model_dir
        )
    assert data.tag_scheme == "IOB1"
    # The B-ORG only test spells is in the set (the full BIO set of the types train holds).
    assert data.label_names == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert data.tags("train")[1] == ["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC"]
    assert data.tags("test")[0] == ["B-ORG", "B-ORG", "O", "B-ORG", "O"]  # two adjacent entities stay two
    assert (
        "tags: IOB1 (detected: I- opens 13 of the 13 entities after O or another type) read as BIO: "
        "13 tags rewritten (I- -> B-: 13)" in caplog.text
    )


def test_bioes_and_bilou_files_train_as_bio(tiny_model_dir, tmp_path, caplog):
    for scheme, (one, last) in {"IOBES": ("S", "E"), "BILOU": ("U", "L")}.items():
        sentences = [pairs(f"New/B-LOC York/I-LOC City/{last}-LOC is/O big/O"), pairs(f"Bob/{one}-PER ran/O")]
        path = conll(tmp_path / f"{scheme}.conll", sentences)
        with caplog.at_level("INFO"):
            data = NERDataModule(train_file=path, tokenizer_name_or_path=tiny_model_dir)
        assert data.tag_scheme == scheme
        assert data.tags("train") == [["B-LOC", "I-LOC", "I-LOC", "O", "O"], ["B-PER", "O"]]
        assert f"read as BIO: 2 tags rewritten ({last}- -> I-: 1, {one}- -> B-: 1)" in caplog.text


def test_a_set_scheme_refuses_tags_it_does_not_have_naming_the_line(tiny_model_dir, tmp_path):
    path = conll(tmp_path / "mixed.conll", [pairs("Bob/S-PER ran/O")])
    with pytest.raises(LitNerError, match=r"mixed.conll:1: tag 'S-PER' is not an IOB2 tag"):
        NERDataModule(train_file=path, tag_scheme="BIO", tokenizer_name_or_path=tiny_model_dir)
    bare = conll(tmp_path / "bare.conll", [pairs("Bob/PER ran/O")])
    with pytest.raises(LitNerError, match=r"bare.conll:1: tag 'PER' is neither O nor"):
        NERDataModule(train_file=bare, tokenizer_name_or_path=tiny_model_dir)


def test_an_io_file_set_as_io_reads_runs_of_one_type_as_one_entity(tiny_model_dir, tmp_path):
    path = conll(tmp_path / "io.conll", [pairs("Peter/I-PER Bill/I-PER met/O Rome/I-LOC")])
    data = NERDataModule(train_file=path, tag_scheme="IO", tokenizer_name_or_path=tiny_model_dir)
    assert data.tag_scheme == "IO" and data.tags("train") == [["B-PER", "I-PER", "O", "B-LOC"]]


def test_a_label_map_renames_merges_and_drops_types_in_every_split_before_the_label_set(
    tiny_model_dir, tmp_path, caplog
):
    train = conll(tmp_path / "train.conll", [pairs("Bob/B-PERSON met/O Ann/B-PER in/O Rome/B-GPE ./O")])
    test = conll(tmp_path / "test.conll", [pairs("Ann/B-PERSON Lee/I-PERSON saw/O Oslo/B-GPE")])
    with caplog.at_level("INFO"):
        data = NERDataModule(
            train_file=train,
            test_file=test,
            label_map={"PERSON": "PER", "GPE": None},
            tokenizer_name_or_path=tiny_model_dir,
        )
    assert data.label_names == ["O", "B-PER", "I-PER"]
    assert data.tags("train") == [["B-PER", "O", "B-PER", "O", "O", "O"]]
    assert data.tags("test") == [["B-PER", "I-PER", "O", "O"]]
    assert "label map: PERSON -> PER (2 entities); GPE dropped (2 entities)" in caplog.text
    with pytest.raises(LitNerError, match="label_map: no split holds entity type 'ORG'"):
        NERDataModule(train_file=train, label_map={"ORG": "X"}, tokenizer_name_or_path=tiny_model_dir)


# --- end to end: the offline recipe on IOB1 and IOBES files, scored as their own scorers do ----


def conlleval_f1(path) -> float:
    import conlleval

    # Tab-separated (a token may hold other white space); a sentence break as the port spells it.
    lines = [line or "-X-\tO\tO" for line in path.read_text(encoding="utf-8").splitlines()]
    return conlleval.evaluate(lines, delimiter="\t")["overall"]["chunks"]["evals"]["f1"]


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["IOB1", "IOBES"])
def test_the_offline_recipe_trains_on_other_schemes_and_reports_their_own_scorers_f1(
    scheme, tiny_model_dir, wnut17_dir, tmp_path, capsys
):
    from lit_ner.data.sources import read_files
    from lit_ner.formats import read_conll, write_conll
    from lit_ner.training.cli import cli_main
    from lit_ner.wnut17 import wnut17_files

    from .conftest import REPO

    def adjacent(tags):  # two entities of one type side by side: where IOB1 spells a B-
        entities = read_entities(tags, "IOB2")
        return any(a[0] == b[0] and b[1] == a[2] + 1 for a, b in zip(entities, entities[1:]))

    release = read_files(wnut17_files(wnut17_dir))
    train, test = release["train"], release["test"]
    # Train without adjacent entities of one type (in IOB1: no B- at all); test with every one of
    # its 5 such sentences, after its first 60 (in IOB1: B- tags that only test spells).
    chosen = {
        "train": [n for n in range(200) if not adjacent(train["tags"][n])],
        "test": [*range(60), *(n for n in range(60, len(test["tags"])) if adjacent(test["tags"][n]))],
    }
    files = {}
    for split, data in (("train", train), ("test", test)):
        tags = [
            write_tags(read_entities(data["tags"][n], "IOB2"), len(data["tags"][n]), scheme)
            for n in chosen[split]
        ]
        words = [data["tokens"][n] for n in chosen[split]]
        files[split] = write_conll(tmp_path / f"wnut-{scheme}" / f"{split}.conll", words, tags)
    if scheme == "IOB1":
        assert not any(t.startswith("B-") for s in read_conll(files["train"])["tags"] for t in s)
        assert sum(t.startswith("B-") for s in read_conll(files["test"])["tags"] for t in s) >= 5
    cli = cli_main(
        [
            "fit", "--config", str(REPO / "configs/wnut.yaml"),
            "--config", str(REPO / "configs/offline.yaml"),
            f"--model.model_name_or_path={tiny_model_dir}", "--trainer.max_epochs=2",
            # The tiny random encoder finds entities within two epochs only with a high rate.
            "--model.learning_rate=3e-3",
            f"--data.train_file={files['train']}", f"--data.validation_file={files['test']}",
            f"--data.test_file={files['test']}", f"--data.cache_dir={tmp_path}",
            f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}", "--trainer.enable_progress_bar=false",
        ]
    )  # fmt: skip
    assert cli.datamodule.tag_scheme == scheme  # detected: no flag
    run = tmp_path / "runs" / f"wnut-{scheme}-offline" / "version_0"  # named after the data
    written = run / "predictions" / "test.conll"
    gold, predicted = read_conll(written, tag_column=-2)["tags"], read_conll(written)["tags"]
    assert gold == [t for t in read_conll(files["test"])["tags"]]  # the gold, in the data's own scheme
    assert any(read_entities(tags, scheme) for tags in predicted)  # something to score
    assert all(not ill_formed(tags, scheme) for tags in predicted)
    reported = json.loads((run / "test_report.json").read_text())["scores"]["f1"]
    if scheme == "IOB1":
        assert reported == pytest.approx(conlleval_f1(written), abs=1e-12)
    else:
        assert reported == pytest.approx(f1_score(gold, predicted, mode="strict", scheme=IOBES), abs=1e-12)


def test_tags_that_break_iobes_grammar_are_read_leniently_counted_or_refused(tiny_model_dir, tmp_path):
    path = conll(tmp_path / "broken.conll", [pairs("New/B-LOC York/O is/O big/O"), pairs("Bob/E-PER ran/O")])
    with pytest.warns(UserWarning, match=r"broken.conll:1: 'B-LOC' breaks IOBES's grammar: 2 such tags"):
        data = NERDataModule(train_file=path, tag_scheme="IOBES", tokenizer_name_or_path=tiny_model_dir)
    assert data.tags("train") == [["B-LOC", "O", "O", "O"], ["B-PER", "O"]]  # seqeval's default reading
    with pytest.raises(LitNerError, match=r"broken.conll:1: 'B-LOC' breaks IOBES's grammar \(refused"):
        NERDataModule(
            train_file=path, tag_scheme="IOBES", strict_bio=True, tokenizer_name_or_path=tiny_model_dir
        )


def test_lit_ner_evaluate_scores_each_scheme_as_its_own_scorer_does(tmp_path):
    from lit_ner.evaluate import evaluate_files
    from lit_ner.formats import write_conll

    rng = random.Random(2)
    sentences = [rng.randrange(1, 10) for _ in range(200)]
    gold = [random_entities(rng, n) for n in sentences]
    predicted = [[e for e in random_entities(rng, n) if rng.random() < 0.8] for n in sentences]
    for n, entities in enumerate(predicted):
        if gold[n] and rng.random() < 0.5:
            predicted[n] = [e for e in gold[n] if rng.random() < 0.7]  # partly right, as a model is
    words = [["w"] * n for n in sentences]
    for scheme in ("IOB1", "IOB2", "IOBES", "BILOU"):
        columns = [[write_tags(e, n, scheme) for e, n in zip(side, sentences)] for side in (gold, predicted)]
        path = write_conll(tmp_path / f"{scheme}.conll", words, *columns)
        ours = evaluate_files(path)
        assert ours["tag_scheme"] == scheme
        if scheme in ("IOB1", "IOB2"):
            assert ours["overall"]["f1"] == pytest.approx(conlleval_f1(path), abs=1e-12)
        else:
            theirs = f1_score(*columns, mode="strict", scheme=SEQEVAL_SCHEMES[scheme])
            assert ours["overall"]["f1"] == pytest.approx(theirs, abs=1e-12)
            assert evaluate_files(path, mode="strict")["overall"]["f1"] == pytest.approx(theirs, abs=1e-12)
