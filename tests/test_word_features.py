"""Word-shape features (`--model.word_features`): computed from the original characters, they give
an uncased encoder the casing it cannot see, and a model trained with them tags the same entities
on every path: `predict`, the Tagger (from the checkpoint and from the export), `lit_ner tag`, the
export's pipeline code and ONNX Runtime."""

import json

import pytest
import torch

from lit_ner.__main__ import run_command
from lit_ner.data.alignment import TokenClassificationCollator, tokenize_and_align
from lit_ner.formats import read_conll
from lit_ner.model.module import TokenClassifier
from lit_ner.portable.word_shapes import SHAPES, word_shape
from lit_ner.tagging.tagger import Tagger
from lit_ner.training.cli import cli_main
from lit_ner.wnut17 import WNUT17_LABELS

from .conftest import REPO
from .test_export import tag_with_onnx
from .test_inference import assert_same_entities


@pytest.mark.parametrize(
    ("word", "shape"),
    [
        ("apple", "lower"),
        ("don't", "lower"),
        ("Apple", "capitalised"),
        ("I", "capitalised"),
        ("NASA", "all_caps"),
        ("U.S.", "all_caps"),
        ("iPhone", "mixed"),
        ("McDonald", "mixed"),
        ("A380", "digits"),
        ("2017", "digits"),
        (":)", "punctuation"),
        ("@Apple", "mention"),
        ("#TBT", "hashtag"),
        ("https://t.co/x", "url"),
        ("www.example.com", "url"),
        ("😍😍", "emoji"),
        ("東京", "other"),
    ],
)
def test_a_words_shape_comes_from_its_original_characters(word, shape):
    assert SHAPES[word_shape(word)] == shape


def batch_of(tokenizer, sentences):
    encoded = tokenize_and_align(
        {"tokens": sentences, "tags": [[0] * len(words) for words in sentences]}, tokenizer, 128, None
    )
    examples = [dict(zip(encoded, row)) for row in zip(*encoded.values())]
    return TokenClassificationCollator(tokenizer.pad_token_id)(examples)


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_two_texts_equal_but_for_case_get_different_emissions(tiny_model_dir, tokenizer, head):
    batch = batch_of(tokenizer, [["Apple", "opens", "in", "PARIS"], ["apple", "opens", "in", "paris"]])
    # The uncased tokenizer cannot tell them apart: the same subwords.
    assert torch.equal(batch["input_ids"][0], batch["input_ids"][1])
    torch.manual_seed(0)
    model = TokenClassifier(WNUT17_LABELS, tiny_model_dir, head=head, word_features=True).eval()
    with torch.no_grad():
        fresh = model._logits(batch)
        # A fresh model's shape scores are zero: it scores as a model without word features.
        assert torch.equal(fresh[0], fresh[1])
        torch.nn.init.normal_(model.word_shapes.head.weight)  # as training would move them
        logits = model._logits(batch)
    differs = (logits[0] - logits[1]).abs().amax(dim=-1) > 1e-3
    # Only where the words differ in shape: the first and last word's subwords.
    shapes_differ = batch["shape_ids"][0] != batch["shape_ids"][1]
    assert shapes_differ.sum() >= 2
    assert torch.equal(differs, shapes_differ)


def spans(entities):
    return [(e["entity_group"], e["start"], e["end"]) for e in entities]


def wnut17_slice(source, target, sentences):
    data = read_conll(source)
    lines = [
        "\n".join(f"{word}\t{tag}" for word, tag in zip(words, tags))
        for words, tags in zip(data["tokens"][:sentences], data["tags"][:sentences])
    ]
    target.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    return str(target)


@pytest.mark.slow
def test_a_model_trained_with_word_features_tags_the_same_entities_on_every_path(
    tiny_model_dir, wnut17_dir, tmp_path, capsys
):
    train = wnut17_slice(wnut17_dir / "wnut17train.conll", tmp_path / "slice.conll", 400)
    test = wnut17_slice(wnut17_dir / "emerging.test.annotated", tmp_path / "test.conll", 200)
    args = [
        "--config", str(REPO / "configs" / "wnut.yaml"),
        "--model.model_name_or_path", tiny_model_dir,
        "--model.decoding=valid_bio", "--model.word_features=true",
        # The tiny random encoder learns next to nothing in a few steps: a high learning rate and
        # a light `O` make it find entities (the paths' agreement is what is tested here).
        "--model.learning_rate=1e-3", "--model.o_weight=0.02", "--model.word_features_lr_factor=30",
        f"--data.train_file={train}", f"--data.validation_file={test}", f"--data.test_file={test}",
        f"--data.label_names={json.dumps(WNUT17_LABELS)}", f"--data.cache_dir={tmp_path}",
        "--trainer.enable_progress_bar=false",
    ]  # fmt: skip
    fitted = cli_main(
        ["fit", *args, "--trainer.max_epochs=3", f"--trainer.logger.init_args.save_dir={tmp_path}"]
    )
    checkpoint = fitted.trainer.checkpoint_callback.best_model_path
    run_dir = tmp_path / "slice" / "version_0"
    export = run_dir / "hf_model"
    config = json.loads((export / "config.json").read_text())
    assert (
        len(config["lit_ner_word_shape_scores"]) == len(SHAPES) and config["lit_ner_decoding"] == "valid_bio"
    )

    cli_main(["predict", *args, f"--ckpt_path={checkpoint}", "--trainer.logger=false",
              f"--trainer.default_root_dir={tmp_path / 'predict'}"])  # fmt: skip
    records = [json.loads(line) for line in (tmp_path / "predict" / "predictions" / "test.jsonl").open()]
    texts = [record["text"] for record in records]
    predicted = [spans(record["entities"]) for record in records]
    assert sum(map(len, predicted)) > 30

    from_checkpoint = Tagger.from_pretrained(checkpoint, precision="32")(texts)
    from_export = Tagger.from_pretrained(export, precision="32")(texts)
    assert [spans(entities) for entities in from_checkpoint] == predicted
    for ours, theirs in zip(from_export, from_checkpoint):
        assert_same_entities(ours, theirs)

    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    capsys.readouterr()
    run_command("tag", ["--model", str(export), "--precision", "32", str(tmp_path / "texts.txt")])
    tagged = [json.loads(line)["entities"] for line in capsys.readouterr().out.splitlines()]
    for ours, theirs in zip(tagged, from_export, strict=True):
        assert_same_entities(ours, theirs)

    from transformers import pipeline

    shipped = pipeline("token-classification", model=str(export), trust_remote_code=True)
    for text, theirs in zip(texts, from_export):
        assert_same_entities(shipped(text), theirs)

    run_command("export", [str(export), str(tmp_path / "onnx"), "--onnx", "true"])
    onnx = tag_with_onnx(tmp_path / "onnx", texts)
    assert onnx["loaded"] == []
    for ours, theirs in zip(onnx["entities"], from_export):
        assert_same_entities(ours, theirs)

    # The shapes are what these paths share: without their scores the same model tags otherwise.
    without = Tagger.from_pretrained(export, precision="32")
    without.shape_scores = None
    assert sum(spans(a) != spans(b) for a, b in zip(without(texts), from_export)) > 20


def argmax_export_with_word_features(tiny_model_dir, directory, version=None):
    from transformers import AutoTokenizer

    from lit_ner.export.hf import save_hf_model
    from lit_ner.model.encoder import load_token_classifier
    from lit_ner.portable.word_decoding import write_decoding
    from lit_ner.portable.word_shapes import write_shape_scores

    torch.manual_seed(3)
    model = load_token_classifier(tiny_model_dir, WNUT17_LABELS)
    write_decoding(model.config, "argmax")
    table = 3 * torch.randn(len(SHAPES), len(WNUT17_LABELS))
    table[0] = 0  # no word
    write_shape_scores(model.config, table.tolist())
    if version is not None:
        model.config.lit_ner_word_shapes_version = version
    save_hf_model(model, AutoTokenizer.from_pretrained(tiny_model_dir), directory, "# card\n")
    return str(directory)


@pytest.mark.parametrize("strategy", ["simple", "first", "max"])
def test_an_argmax_export_with_word_features_tags_alike_in_its_shipped_pipeline(
    tiny_model_dir, tmp_path, strategy
):
    from transformers import pipeline

    from .test_inference import SPECIAL_TEXTS

    export = argmax_export_with_word_features(tiny_model_dir, tmp_path / "export")
    texts = [text for text in SPECIAL_TEXTS if text]
    ours = Tagger.from_pretrained(export, precision="32")(texts, strategy)
    shipped = pipeline("token-classification", model=export, trust_remote_code=True)
    for text, theirs in zip(texts, ours):
        assert_same_entities(shipped(text, aggregation_strategy=strategy), theirs)
    assert sum(map(len, ours)) > 10
    without = Tagger.from_pretrained(export, precision="32")
    without.shape_scores = None
    assert [spans(found) for found in without(texts, strategy)] != [spans(found) for found in ours]
    # Pre-split words carry no offsets into one text: refused in one line, never mis-shaped.
    with pytest.raises(ValueError, match="pass the text, not is_split_into_words=True"):
        shipped(["Apple", "opens"], is_split_into_words=True)


def test_a_model_whose_word_shapes_are_not_this_codes_is_refused_in_one_line(tiny_model_dir, tmp_path):
    from lit_ner.errors import LitNerError

    export = argmax_export_with_word_features(tiny_model_dir, tmp_path / "export", version=99)
    with pytest.raises(LitNerError, match=r"word-shape features: the model's word shapes \(version 99"):
        Tagger.from_pretrained(export)
