"""Span annotations as doccano, Label Studio and Prodigy export them: converted to lit_ner's words
and tags exactly (UTF-16 offsets repaired), trained on directly, refused in one line when bad,
and written back as pre-annotations that convert back to the tagger's entities."""

import json

import pytest
from seqeval.metrics.sequence_labeling import get_entities as seqeval_entities

from lit_ner.__main__ import run_command
from lit_ner.annotations import read_spans
from lit_ner.errors import LitNerError
from lit_ner.evaluate import evaluate_files
from lit_ner.formats import read_conll
from lit_ner.portable.words import split_words


def utf16(text: str, index: int) -> int:
    """What a JavaScript tool counts for Python offset `index`."""
    return len(text[:index].encode("utf-16-le")) // 2


def as_spans(words, tags):
    """Written independently of lit_ner: the words joined by single spaces, seqeval's entities as
    character spans."""
    starts, position = [], 0
    for word in words:
        starts.append(position)
        position += len(word) + 1
    text = " ".join(words)
    spans = [
        (starts[first], starts[last] + len(words[last]), type_)
        for type_, first, last in seqeval_entities(tags)
    ]
    return text, spans


def write_tool_file(path, fmt, sentences, utf16_offsets=False):
    records = []
    for words, tags in sentences:
        text, spans = as_spans(words, tags)
        if fmt == "doccano":  # doccano counts UTF-16 units, as JavaScript does
            records.append(
                {"text": text, "label": [[utf16(text, s), utf16(text, e), t] for s, e, t in spans]}
            )
        elif fmt == "prodigy":
            records.append({"text": text, "spans": [{"start": s, "end": e, "label": t} for s, e, t in spans]})
        else:
            where = (lambda i: utf16(text, i)) if utf16_offsets else (lambda i: i)
            result = [
                {
                    "type": "labels",
                    "from_name": "label",
                    "to_name": "text",
                    "value": {"start": where(s), "end": where(e), "text": text[s:e], "labels": [t]},
                }
                for s, e, t in spans
            ]
            records.append(
                {"id": len(records) + 1, "data": {"text": text}, "annotations": [{"result": result}]}
            )
    if fmt == "label-studio":
        path.write_text(json.dumps(records, ensure_ascii=False, indent=2))
    else:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


@pytest.fixture(scope="module")
def dev(wnut17_dir):
    return read_conll(wnut17_dir / "emerging.dev.conll")


@pytest.mark.parametrize("fmt", ["doccano", "label-studio", "prodigy"])
def test_the_wnut17_dev_set_round_trips_through_each_tools_format(fmt, dev, wnut17_dir, tmp_path, capsys):
    source = write_tool_file(
        tmp_path / f"dev.{'json' if fmt == 'label-studio' else 'jsonl'}", fmt, zip(dev["tokens"], dev["tags"])
    )
    # The tools hold the tokens joined by spaces: read back as tokenized text, they are the
    # tokens again; read as raw text, punctuation stuck to a token is split off it.
    run_command("convert", [str(source), str(tmp_path / "raw.conll")])
    assert "1009 texts, 15734 words, 836 entities (conll)" in capsys.readouterr().out
    run_command("convert", [str(source), str(tmp_path / "back.conll"), "--word_split", "whitespace"])
    assert "1009 texts, 15733 words, 836 entities (conll)" in capsys.readouterr().out
    back = read_conll(tmp_path / "back.conll")
    assert back["tokens"] == dev["tokens"] and back["tags"] == dev["tags"]
    scores = evaluate_files(wnut17_dir / "emerging.dev.conll", tmp_path / "back.conll")["overall"]
    assert scores["f1"] == 1.0 and scores["accuracy"] == 1.0


def test_label_studio_utf16_offsets_after_emoji_are_repaired_and_counted(dev, tmp_path, capsys):
    sentences = list(zip(dev["tokens"], dev["tags"]))
    astral = sum(
        any(ord(c) > 0xFFFF for c in " ".join(words)) and "B-" in str(tags) for words, tags in sentences
    )
    assert astral > 10  # WNUT-17's tweets hold emoji before entities: the case this is about
    source = write_tool_file(tmp_path / "dev.json", "label-studio", sentences, utf16_offsets=True)
    run_command("convert", [str(source), str(tmp_path / "back.conll"), "--word_split", "whitespace"])
    note = capsys.readouterr().err
    repaired = int(note.split(" spans repaired from UTF-16 offsets")[0].rsplit(" ", 1)[-1])
    assert 0 < repaired <= sum(len(seqeval_entities(tags)) for _, tags in sentences)
    back = read_conll(tmp_path / "back.conll")
    assert back["tokens"] == dev["tokens"] and back["tags"] == dev["tags"]


def test_span_edges_inside_words_split_them_and_whitespace_is_trimmed_counted(tmp_path):
    path = tmp_path / "spans.jsonl"
    path.write_text(
        json.dumps(
            {"text": "I love bigNewYork!  ok", "spans": [{"start": 10, "end": 19, "label": "location"}]}
        )
    )
    split, counts = read_spans(path)
    assert split["tokens"] == [["I", "love", "big", "NewYork", "!", "ok"]]
    assert split["tags"] == [["O", "O", "O", "B-location", "I-location", "O"]]
    assert counts == {"words split at a span edge": 1, "spans trimmed of whitespace at their ends": 1}
    split, _ = read_spans(path, split_words="whitespace")
    assert split["tokens"] == [["I", "love", "big", "NewYork!", "ok"]]
    assert split["tags"] == [["O", "O", "O", "B-location", "O"]]


BAD_RECORDS = {
    "overlapping spans": (
        {"text": "New York City", "label": [[0, 8, "location"], [4, 13, "location"]]},
        r"spans \[0, 8\) 'location' and \[4, 13\) 'location' overlap",
    ),
    "a span outside the text": (
        {"text": "Paris", "label": [[0, 9, "location"]]},
        r"is outside the text \(5 characters\)",
    ),
    "a negative span": (
        {"text": "Paris", "label": [[-1, 3, "location"]]},
        r"span \[-1, 3\) 'location' is outside the text",
    ),
    "an empty label": ({"text": "Paris", "label": [[0, 5, " "]]}, r"has an empty label"),
    "a record without text": ({"label": [[0, 5, "location"]]}, r"the record has no text"),
    "a span of whitespace": (
        {"text": "a   b", "label": [[1, 4, "location"]]},
        r"holds no word, only whitespace",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_RECORDS))
def test_each_bad_record_is_one_line_naming_file_and_record(case, tmp_path):
    record, message = BAD_RECORDS[case]
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"text": "fine", "label": []}) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(LitNerError, match=message) as error:
        read_spans(path, "doccano")
    assert str(error.value).startswith(f"{path}:2 (record): ")
    assert "\n" not in str(error.value)


def test_a_label_studio_span_text_that_matches_neither_way_is_refused(tmp_path):
    text = "😀 Paris"
    task = {
        "data": {"text": text},
        "annotations": [
            {
                "result": [
                    {
                        "type": "labels",
                        "value": {"start": 0, "end": 2, "text": "Rome", "labels": ["location"]},
                    }
                ]
            }
        ],
    }
    path = tmp_path / "bad.json"
    path.write_text("[\n" + json.dumps(task) + "\n]\n")
    with pytest.raises(
        LitNerError, match=r"bad.json:2 \(task\): span \[0, 2\) 'location' says its text is 'Rome'"
    ):
        read_spans(path)


def test_label_studio_tasks_without_annotations_are_skipped_and_counted(tmp_path):
    tasks = [
        {
            "data": {"text": "Paris rocks"},
            "annotations": [
                {
                    "result": [
                        {
                            "type": "labels",
                            "value": {"start": 0, "end": 5, "text": "Paris", "labels": ["location"]},
                        }
                    ]
                }
            ],
        },
        {"data": {"text": "nothing here"}, "annotations": []},
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    split, counts = read_spans(path)
    assert split["tags"] == [["B-location", "O"]]
    assert counts == {"tasks without annotations or predictions, skipped": 1}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["doccano", "label-studio", "prodigy"])
def test_span_files_train_through_the_data_options(fmt, dev, tiny_model_dir, tmp_path, no_wnut17_env):
    from lit_ner.training.cli import cli_main
    from lit_ner.wnut17 import WNUT17_LABELS

    sentences = list(zip(dev["tokens"], dev["tags"]))
    source = write_tool_file(
        tmp_path / f"train.{'json' if fmt == 'label-studio' else 'jsonl'}", fmt, sentences
    )
    cli = cli_main(
        [
            "fit", f"--model.model_name_or_path={tiny_model_dir}", f"--data.train_file={source}",
            f"--data.validation_file={source}", f"--data.cache_dir={tmp_path}", "--trainer.max_epochs=1",
            f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false",
            "--trainer.enable_progress_bar=false", "--test_after_fit=false",
        ]
    )  # fmt: skip
    assert cli.datamodule.label_names == WNUT17_LABELS  # read from the spans, in WNUT-17's order
    # The spans' texts are split into words as tagging splits raw text.
    assert cli.datamodule.words("train") == [split_words(" ".join(words)) for words, _ in sentences]
    assert cli.trainer.global_step == -(-1009 // 16)


def test_tagged_texts_as_label_studio_pre_annotations_convert_back_to_the_taggers_entities(
    export_dir, tmp_path, capsys
):
    from lit_ner.scoring import get_entities
    from lit_ner.tagging.tagger import Tagger

    from .test_inference import SPECIAL_TEXTS

    texts = ["Bob lives in New York with 😀 Alice and #Apple", *(text for text in SPECIAL_TEXTS if text)]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")
    run_command(
        "tag",
        [str(tmp_path / "texts.txt"), "--model", export_dir, "--format", "label-studio", "--precision", "32",
         "--output", str(tmp_path / "pre.json")],
    )  # fmt: skip
    tasks = json.loads((tmp_path / "pre.json").read_text())
    assert [task["data"]["text"] for task in tasks] == texts
    assert all(task["predictions"][0]["model_version"] == "lit_ner" for task in tasks)
    expected = Tagger.from_pretrained(export_dir, precision="32")(texts)
    assert sum(map(len, expected)) > 10  # the random tiny model finds entities everywhere
    run_command("convert", [str(tmp_path / "pre.json"), str(tmp_path / "back.conll")])
    back = read_conll(tmp_path / "back.conll")
    for text, words, tags, entities in zip(texts, back["tokens"], back["tags"], expected):
        # The same characters (the words, read back from the text, hold no spaces).
        found = [(type_, "".join(words[first : last + 1])) for type_, first, last in get_entities(tags)]
        tagged = [(e["entity_group"], "".join(text[e["start"] : e["end"]].split())) for e in entities]
        assert found == tagged


def test_real_exports_shapes_gzip_cancelled_tasks_and_fields_that_collide(tmp_path):
    import gzip

    prodigy = {"text": "Bob in Paris", "tokens": [{"text": "Bob", "start": 0, "end": 3, "id": 0}],
               "spans": [{"start": 7, "end": 12, "label": "location"}], "answer": "accept"}  # fmt: skip
    path = tmp_path / "prodigy.jsonl.gz"
    path.write_bytes(gzip.compress((json.dumps(prodigy) + "\n").encode()))
    from lit_ner.annotations import read_annotations, span_records

    assert read_annotations(path)["tags"] == [["O", "O", "B-location"]]
    cancelled = {"data": {"text": "Paris"}, "annotations": [{"was_cancelled": True, "result": []}],
                 "predictions": [{"result": []}]}  # fmt: skip
    kept = {"data": {"text": "Rome"}, "annotations": [{"result": []}]}
    (tmp_path / "ls.json").write_text(json.dumps([cancelled, kept]))
    split, counts = read_spans(tmp_path / "ls.json")
    assert split["tokens"] == [["Rome"]] and counts == {
        "tasks whose annotations were all cancelled, skipped": 1
    }
    # doccano: UTF-16 offsets both ways, and the spans written win over an input "label" field.
    written = span_records(["😀 Paris"], [[(2, 7, "location")]], "doccano", extra=[{"label": [], "id": 7}])
    assert json.loads(written) == {"label": [[3, 8, "location"]], "id": 7, "text": "😀 Paris"}
    (tmp_path / "d.jsonl").write_text(written)
    split, counts = read_spans(tmp_path / "d.jsonl")
    assert split["tags"] == [["O", "B-location"]] and counts == {"doccano spans read from UTF-16 offsets": 1}
