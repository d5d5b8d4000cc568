"""`Tagger` / `lit_ner tag` give what `transformers.pipeline("token-classification")` gives, for
every aggregation strategy, and tag long texts completely."""

import json

import pytest
import torch

from lit_ner.__main__ import run_command
from lit_ner.errors import LitNerError
from lit_ner.formats import read_conll
from lit_ner.tagging.tagger import AGGREGATION_STRATEGIES, Tagger, bf16_is_native
from lit_ner.wnut17 import WNUT17_LABELS

SPECIAL_TEXTS = [
    "Empire State Building = ESB . Pretty bad storm here last evening .",
    "😀😀 visit https://t.co/x1Y2z and @paulwalk #NYC",
    "東京 and Москва and القاهرة rock",
    "spaces    between     words   ",
    "",
    "ﬁne café in Zürich naïve",
    "a",
]


@pytest.fixture(scope="module")
def gazetteer_dir(tmp_path_factory, tiny_model_dir):
    """A model that tags exactly "new york" as a location and everything else O, wherever it
    stands: no transformer layers, no position embeddings, a classifier that matches the two
    word embeddings. It makes window edges testable."""
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertForTokenClassification

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = DistilBertConfig(
        vocab_size=tokenizer.vocab_size, dim=32, n_layers=0, n_heads=2, hidden_dim=64,
        max_position_embeddings=128, id2label=dict(enumerate(WNUT17_LABELS)),
        label2id={label: i for i, label in enumerate(WNUT17_LABELS)},
    )  # fmt: skip
    torch.manual_seed(0)
    model = DistilBertForTokenClassification(config).eval()
    with torch.no_grad():
        embeddings = model.distilbert.embeddings
        embeddings.position_embeddings.weight.zero_()
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.bias[0] = 5.0
        for label, token in ((7, "new"), (8, "york")):
            vector = embeddings.LayerNorm(
                embeddings.word_embeddings.weight[tokenizer.convert_tokens_to_ids(token)]
            )
            model.classifier.weight[label] = vector
            model.classifier.bias[label] = -20.0
    directory = tmp_path_factory.mktemp("gazetteer")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def assert_same_entities(ours, theirs):
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs):
        assert mine.keys() == reference.keys()
        for key in mine:
            if key == "score":
                assert abs(float(mine[key]) - float(reference[key])) < 1e-4
            else:
                assert mine[key] == reference[key], key


@pytest.mark.parametrize("strategy", AGGREGATION_STRATEGIES)
def test_entities_equal_the_pipelines_on_emoji_urls_scripts_and_spaces(export_dir, strategy):
    from transformers import pipeline

    reference = pipeline("token-classification", model=export_dir)
    tagger = Tagger.from_pretrained(export_dir, batch_size=3, precision="32")
    ours = tagger(SPECIAL_TEXTS, aggregation_strategy=strategy)
    assert sum(len(entities) for entities in ours) > 20  # the random model tags a lot
    for text, entities in zip(SPECIAL_TEXTS, ours):
        assert_same_entities(entities, reference(text, aggregation_strategy=strategy) if text else [])


@pytest.mark.slow
@pytest.mark.parametrize("strategy", AGGREGATION_STRATEGIES)
def test_entities_equal_the_pipelines_on_the_wnut17_test_sentences(export_dir, wnut17_dir, strategy):
    from transformers import pipeline

    texts = [" ".join(words) for words in read_conll(wnut17_dir / "emerging.test.annotated")["tokens"]]
    reference = pipeline("token-classification", model=export_dir)
    tagger = Tagger.from_pretrained(export_dir, precision="32")
    ours = tagger(texts, aggregation_strategy=strategy)
    too_long = 0
    for text, entities in zip(texts, ours):
        if len(tagger.tokenizer(text).input_ids) <= 128:
            assert_same_entities(entities, reference(text, aggregation_strategy=strategy))
            continue
        # The tiny model takes 128 positions and two test sentences need more: the pipeline cuts
        # it (its truncation bug) and only agrees when given the same stride, which it refuses
        # for "none".
        too_long += 1
        assert len(reference(text, aggregation_strategy=strategy)) < len(entities)
        if strategy != "none":
            assert_same_entities(
                entities, reference(text, aggregation_strategy=strategy, stride=tagger.stride)
            )
    assert too_long == 2


def test_a_5000_word_text_is_tagged_completely_with_entities_across_window_edges_whole(gazetteer_dir):
    from transformers import pipeline

    words = "the cat sat on a mat in new york today".split()
    text = " ".join(words * 500)
    expected = [(m, m + len("new york")) for m in range(len(text)) if text.startswith("new york", m)]
    # 126-token windows: ~50 of them.
    tagger = Tagger.from_pretrained(gazetteer_dir, stride=16, precision="32")
    entities = tagger(text)
    assert [(e["start"], e["end"]) for e in entities] == expected
    assert {e["entity_group"] for e in entities} == {"location"} and {e["word"] for e in entities} == {
        "new york"
    }
    # Some of them straddle a window edge: each window holds 126 tokens, text tokens are words here.
    assert len(expected) == 500
    # The pipeline without `stride` cuts the text at 128 positions and finds only the first 12.
    assert (
        len(pipeline("token-classification", model=gazetteer_dir, aggregation_strategy="simple")(text)) == 12
    )
    # With the same stride it agrees with lit_ner.
    with_stride = pipeline(
        "token-classification", model=gazetteer_dir, aggregation_strategy="simple", stride=16
    )
    assert_same_entities(entities, with_stride(text))


def test_tag_writes_one_object_per_good_line_and_names_each_bad_line(export_dir, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "Bob in Paris", "id": 1}\n\n{"text": 3}\n{bad\n{"text": "Apple", "id": 2}\n')
    with pytest.raises(SystemExit) as exit_:
        run_command("tag", ["--model", export_dir, str(source), "--output", str(tmp_path / "out.jsonl")])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert f"{source}:2: empty line, skipped" in err
    assert f'{source}:3: expected an object with a string "text", skipped' in err
    assert f"{source}:4: not valid JSON" in err
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(o["id"], o["text"]) for o in out] == [(1, "Bob in Paris"), (2, "Apple")]
    expected = Tagger.from_pretrained(export_dir)(["Bob in Paris", "Apple"])
    assert [len(o["entities"]) for o in out] == [len(e) for e in expected]
    assert all(
        {"entity_group", "score", "word", "start", "end"} == set(e) for o in out for e in o["entities"]
    )


def test_tag_refuses_an_empty_file_in_one_line(export_dir, tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(SystemExit) as exit_:
        run_command("tag", ["--model", export_dir, str(tmp_path / "empty.txt")])
    assert exit_.value.code == 2
    assert (
        capsys.readouterr().err.strip()
        == f"lit_ner: error: {tmp_path / 'empty.txt'}: empty file, no texts to tag"
    )


def test_a_lit_ner_checkpoint_tags_like_its_hugging_face_export(tiny_model_dir, tmp_path):
    from lit_ner.export.hf import EXPORT_DIRNAME
    from lit_ner.training.cli import cli_main

    from .conftest import FIXTURES
    from .test_cli import QUIRKS_TAGS

    conll = str(FIXTURES / "quirks.conll")
    cli_main(
        [
            "fit", "--model.model_name_or_path", tiny_model_dir, f"--data.train_file={conll}",
            f"--data.validation_file={conll}", f"--data.cache_dir={tmp_path}", "--trainer.max_steps=2",
            "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}",
            "--trainer.enable_progress_bar=false",
            # quirks.conll's own tags: with them the best checkpoint (what the export holds) is
            # last.ckpt's step; with the full BIO set it is epoch 0's, other weights by ~1e-5.
            f"--data.label_names={json.dumps(QUIRKS_TAGS)}",
        ]
    )  # fmt: skip
    # In fp32: the same weights give the same scores to 1e-6, whatever kernels each load picks.
    from_checkpoint = Tagger.from_pretrained(tmp_path / "checkpoints" / "last.ckpt", precision="32")
    from_export = Tagger.from_pretrained(tmp_path / EXPORT_DIRNAME, precision="32")
    for strategy in AGGREGATION_STRATEGIES:
        for ours, exported in zip(
            from_checkpoint(SPECIAL_TEXTS, strategy), from_export(SPECIAL_TEXTS, strategy)
        ):
            assert_same_entities(ours, exported)
    assert from_checkpoint.model.config.id2label == from_export.model.config.id2label


def test_export_writes_a_hugging_face_folder_with_a_model_card(tiny_model_dir, tmp_path, capsys):
    from lit_ner.export.hf import EXPORT_DIRNAME
    from lit_ner.training.cli import cli_main

    from .conftest import FIXTURES

    conll = str(FIXTURES / "quirks.conll")
    cli_main(
        [
            "fit", "--model.model_name_or_path", tiny_model_dir, f"--data.train_file={conll}",
            f"--data.validation_file={conll}", f"--data.test_file={conll}", f"--data.cache_dir={tmp_path}",
            "--trainer.max_epochs=1", f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false",
            "--trainer.enable_progress_bar=false",
        ]
    )  # fmt: skip
    run = tmp_path
    best = next((run / "checkpoints").glob("epoch=*.ckpt"))
    run_command("export", [str(best), str(tmp_path / "exported")])
    exported = tmp_path / "exported"
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md"} <= {
        p.name for p in exported.iterdir()
    }
    card = (exported / "README.md").read_text()
    test_f1 = json.loads((run / "test_report.json").read_text())["scores"]["f1"]
    assert "pipeline_tag: token-classification" in card and "learning_rate: 2.0e-05" in card
    assert f"{test_f1:.4f}" in card and "B-corporation" in card
    # fit's own export of the best checkpoint carries the same card and tags the same.
    assert (run / EXPORT_DIRNAME / "README.md").read_text() == card
    ours = Tagger.from_pretrained(exported, precision="32")(SPECIAL_TEXTS, "first")
    theirs = Tagger.from_pretrained(run / EXPORT_DIRNAME, precision="32")(SPECIAL_TEXTS, "first")
    for a, b in zip(ours, theirs):
        assert_same_entities(a, b)


def test_precision_auto_takes_bf16_only_where_the_device_multiplies_in_bf16(export_dir):
    cpu = Tagger.from_pretrained(export_dir)
    assert cpu.precision == ("bf16" if bf16_is_native(torch.device("cpu")) else "32")
    assert Tagger.from_pretrained(export_dir, precision="32").precision == "32"
    with pytest.raises(LitNerError, match="precision must be"):
        Tagger.from_pretrained(export_dir, precision="16")


def test_word_level_decoding_tags_long_texts_whole_even_where_windows_start_mid_word(gazetteer_dir):
    # Long words of several subwords make windows start inside words; a zero-width character
    # before some words is no part of them (the tokenizer drops it too), so no entity holds it.
    words = "the antidisestablishmentarianism sat on a mat in new york today \u200bnew york".split()
    text = " ".join(words * 200)
    tagger = Tagger.from_pretrained(gazetteer_dir, stride=16, precision="32", decoding="valid_bio")
    entities = tagger(text)
    expected = [(m, m + len("new york")) for m in range(len(text)) if text.startswith("new york", m)]
    assert len(expected) == 400 and text.count("\u200bnew york") == 200
    found = [(e["start"], e["end"]) for e in entities]
    assert found == expected
    assert {e["entity_group"] for e in entities} == {"location"}
    assert {e["word"] for e in entities} == {"new york"}


def test_batches_pad_at_most_max_padding_and_tag_as_one_text_at_a_time(export_dir):
    texts = [" ".join(["word"] * n) for n in (3, 40, 5, 38, 4, 20, 41, 6, 19, 39)] + SPECIAL_TEXTS
    tagger = Tagger.from_pretrained(export_dir, precision="32", batch_size=4)
    assert tagger.max_padding == 0.1  # the CPU's default
    seen = []
    run = tagger.model.__call__

    def recording(inputs):
        mask = inputs["attention_mask"]
        seen.append((mask.shape[1], mask.sum(axis=1).min(), len(mask)))
        return run(inputs)

    tagger.model = type("Recording", (), {"__call__": lambda self, inputs: recording(inputs)})()
    batched = tagger(texts)
    assert seen and all(rows <= 4 and longest <= 1.1 * shortest for longest, shortest, rows in seen)
    assert len(seen) < len(texts) - 1  # texts of near lengths still share a batch
    one_by_one = [Tagger.from_pretrained(export_dir, precision="32")(text) for text in texts[:3]]
    for mine, alone in zip(batched, one_by_one):
        assert_same_entities(mine, alone)
    with pytest.raises(LitNerError, match="max_padding must be >= 0"):
        Tagger.from_pretrained(export_dir, max_padding=-1)
