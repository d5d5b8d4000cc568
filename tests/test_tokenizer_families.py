"""Every tokenizer family, without downloads (`tokenizer_families.py`): BERT and MPNet (uncased
WordPiece), DistilBERT and ELECTRA (cased WordPiece), RoBERTa (byte-level BPE), XLM-R and
DeBERTa-v2 (Unigram, SentencePiece's "▁"). For each, the words of a sentence are encoded as running
text has them and labelled at their first subword; long sentences become windows that own each
word once; and a short fit of either head exports a model that `lit_ner tag`, the Tagger, the
export's own pipeline and ONNX Runtime all tag as the test scored it."""

import json

import pytest

from lit_ner.data.alignment import IGNORE_INDEX, tokenize_and_align
from lit_ner.formats import read_conll
from lit_ner.hub import load_tokenizer
from lit_ner.portable.spans import get_entities

from .tokenizer_families import FAMILIES, WORD_START, save_family_model, training_text

FAMILY_IDS = [family.name for family in FAMILIES]


@pytest.fixture(scope="session")
def family_dirs(tmp_path_factory, wnut17_dir) -> dict:
    text = training_text(wnut17_dir / "wnut17train.conll")
    root = tmp_path_factory.mktemp("families")
    return {family.name: save_family_model(family, text, root / family.name) for family in FAMILIES}


@pytest.fixture(scope="module")
def wnut17_train(wnut17_dir) -> dict:
    return read_conll(wnut17_dir / "wnut17train.conll")


def running_text_subwords(tokenizer, words: list[str]) -> list[list[int]]:
    """Each word's subwords as running text has them after a space ("x " + word, the "x" left
    out): what the encoder saw in pre-training."""
    encoded = tokenizer(
        ["x " + word for word in words], add_special_tokens=False, return_offsets_mapping=True
    )
    return [
        [i for i, (start, _) in zip(ids, offsets) if start >= 1]
        for ids, offsets in zip(encoded["input_ids"], encoded["offset_mapping"])
    ]


@pytest.mark.parametrize("family", FAMILIES, ids=FAMILY_IDS)
def test_each_word_is_encoded_as_in_running_text_and_labelled_at_its_first_subword_only(
    family, family_dirs, wnut17_train
):
    tokenizer = load_tokenizer(str(family_dirs[family.name]))
    sentences = {name: column[:300] for name, column in wnut17_train.items()}
    tags = [[i + 1 for i, _ in enumerate(words)] for words in sentences["tokens"]]  # a label per word
    examples = tokenize_and_align({"tokens": sentences["tokens"], "tags": tags}, tokenizer, None, None)
    assert len(examples["input_ids"]) == 300  # every sentence fits: one example each
    for words, ids, labels in zip(sentences["tokens"], examples["input_ids"], examples["labels"]):
        subwords = running_text_subwords(tokenizer, words)
        content = [i for i, token_id in enumerate(ids) if token_id not in tokenizer.all_special_ids]
        # The sentence's subwords are its words' subwords in running text, one word after another,
        assert [ids[i] for i in content] == [token_id for word in subwords for token_id in word]
        # each word's label on its first subword and nowhere else, specials unlabelled.
        expected = [IGNORE_INDEX] * len(ids)
        position = content[0] if content else 0
        for label, word in zip(range(1, len(words) + 1), subwords):
            if word:
                expected[position] = label
            position += len(word)
        assert labels == expected
        if family.tokenizer in WORD_START:  # every word opens with the family's word-start marker
            tokens = tokenizer.convert_ids_to_tokens(ids)
            assert all(
                tokens[i].startswith(WORD_START[family.tokenizer])
                for i, label in enumerate(labels)
                if label > 0
            )


def test_a_roberta_tokenizer_without_add_prefix_space_in_its_config_marks_every_word_start(
    family_dirs, capsys
):
    from transformers import AutoTokenizer

    directory = family_dirs["roberta"]
    assert "add_prefix_space" not in json.loads((directory / "tokenizer_config.json").read_text())
    words = ["@paulwalk", "lives", "in", "New", "York", "!"]
    tags = [[0, 0, 0, 7, 8, 0]]

    def word_subwords(tokenizer) -> list[tuple[str, list[str], int]]:
        """Per word: its subwords and the label its first subword carries."""
        example = tokenize_and_align({"tokens": [words], "tags": tags}, tokenizer, None, None)
        tokens = tokenizer.convert_ids_to_tokens(example["input_ids"][0])
        word_ids = tokenizer(words, is_split_into_words=True).word_ids()
        labels = example["labels"][0]
        return [
            (word, [t for t, w in zip(tokens, word_ids) if w == i], labels[word_ids.index(i)])
            for i, word in enumerate(words)
        ]

    # As transformers 5 loads it by itself: no word is marked as a word start, not a warning said.
    plain = word_subwords(AutoTokenizer.from_pretrained(directory))
    assert [subwords[0][0] for _, subwords, _ in plain] != ["Ġ"] * len(words)
    # As lit_ner loads it: every word opens with "Ġ", as it does in running text, and carries
    # its label there.
    mapping = word_subwords(load_tokenizer(str(directory)))
    assert "add_prefix_space=True" in capsys.readouterr().err
    print("\n".join(f"{word!r}: {subwords} label {label}" for word, subwords, label in mapping))
    assert [subwords[0][0] for _, subwords, _ in mapping] == ["Ġ"] * len(words)
    assert ["".join(subwords).replace("Ġ", "") for _, subwords, _ in mapping] == words
    assert [label for _, _, label in mapping] == tags[0]


@pytest.mark.parametrize("family", FAMILIES, ids=FAMILY_IDS)
def test_windows_of_a_long_sentence_own_each_word_once_at_its_running_text_subwords(
    family, family_dirs, wnut17_train
):
    tokenizer = load_tokenizer(str(family_dirs[family.name]))
    # Five long sentences of 20 WNUT-17 sentences each, in windows of 32 positions.
    words = [sum(wnut17_train["tokens"][20 * i : 20 * i + 20], []) for i in range(5)]
    tags = [list(range(1, len(sentence) + 1)) for sentence in words]
    batch = {"tokens": words, "tags": tags, "sentence_id": list(range(5))}
    examples = tokenize_and_align(batch, tokenizer, max_length=32, continuation_ids=None, stride=8)
    assert len(examples["input_ids"]) > 5 * 10
    whole = tokenizer(words, is_split_into_words=True)
    owned: dict[int, list[int]] = {i: [] for i in range(5)}
    for ids, labels, sentence, offset, word_labels in zip(
        examples["input_ids"], examples["labels"], examples["sentence_id"], examples["word_offset"],
        examples["word_labels"],
    ):  # fmt: skip
        assert len(ids) <= 32
        owned[sentence] += word_labels
        # Each owned word's label sits on the subword that starts it in the whole sentence.
        for position, label in enumerate(labels):
            if label != IGNORE_INDEX:
                word = label - 1
                start = whole.word_to_tokens(sentence, word).start
                assert ids[position] == whole["input_ids"][sentence][start]
    assert owned == {i: tags[i] for i in range(5)}


def corpus_files(wnut17_train, directory):
    """A small corpus of WNUT-17 sentences: train 24 sentences; test 12 and two long ones (25
    sentences joined, several windows of the tiny models' 128 positions)."""
    from lit_ner.formats import write_conll

    tokens, tags = wnut17_train["tokens"], wnut17_train["tags"]
    long_tokens = [sum(tokens[100 + 25 * i : 125 + 25 * i], []) for i in range(2)]
    long_tags = [sum(tags[100 + 25 * i : 125 + 25 * i], []) for i in range(2)]
    write_conll(directory / "train.conll", tokens[:24], tags[:24])
    write_conll(directory / "test.conll", tokens[24:36] + long_tokens, tags[24:36] + long_tags)
    return directory / "train.conll", directory / "test.conll"


# ONNX Runtime runs the encoder and its classifier, whatever the head (a CRF decodes in numpy, as
# on torch): each family's export goes through it once, the heads taking turns.
ONNX_HEAD = {family.name: ("softmax", "crf")[i % 2] for i, family in enumerate(FAMILIES)}


def word_entities(words: list[str], tags: list[str]) -> list[tuple[str, int, int]]:
    """The entities of tagged words, as character spans of the words joined by single spaces."""
    starts = [sum(len(word) + 1 for word in words[:i]) for i in range(len(words))]
    return [
        (type_, starts[first], starts[last] + len(words[last])) for type_, first, last in get_entities(tags)
    ]


@pytest.mark.parametrize("head", ["softmax", "crf"])
@pytest.mark.parametrize("family", FAMILIES, ids=FAMILY_IDS)
def test_a_short_fit_exports_a_model_that_every_tagging_path_tags_as_the_test_scored(
    family, head, family_dirs, wnut17_train, tmp_path
):
    """fit (with its test) and its export; then the test sentences (their words joined by
    spaces) through the Tagger, `lit_ner tag`, the export's own pipeline and, for one head of
    each family, ONNX Runtime: the test's entities, sentence by sentence, short and windowed,
    with the same scores."""
    from transformers import pipeline

    from lit_ner.__main__ import run_command
    from lit_ner.export.hf import EXPORT_DIRNAME
    from lit_ner.tagging.tagger import Tagger
    from lit_ner.training.cli import cli_main
    from lit_ner.wnut17 import WNUT17_LABELS

    train, test = corpus_files(wnut17_train, tmp_path)
    # Softmax with valid-BIO decoding, or a CRF; two small steps keep the model near random, so
    # that it finds entities everywhere.
    decoding = ["--model.decoding=valid_bio"] if head == "softmax" else ["--model.head=crf"]
    cli_main(
        [
            "fit", "--model.model_name_or_path", str(family_dirs[family.name]), f"--data.train_file={train}",
            f"--data.validation_file={train}", f"--data.test_file={test}", f"--data.cache_dir={tmp_path}",
            "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}", "--trainer.max_steps=2",
            "--trainer.enable_progress_bar=false", f"--data.label_names={json.dumps(WNUT17_LABELS)}",
            "--data.batch_size=16", "--model.learning_rate=1e-5", *decoding,
            # Windows not the tokenizer's: tagging must cut the ones the export records.
            "--data.max_length=96", "--data.stride=32",
        ]
    )  # fmt: skip
    tested = read_conll(tmp_path / "predictions" / "test.conll")
    expected = [word_entities(words, tags) for words, tags in zip(tested["tokens"], tested["tags"])]
    assert sum(map(len, expected)) >= 5
    assert any(len(words) > 96 for words in tested["tokens"])  # windowed in test and in tagging
    # Texts without words tagged among the others: no entities.
    texts = [" ".join(words) for words in tested["tokens"]] + ["", "   "]
    expected += [[], []]
    export = tmp_path / EXPORT_DIRNAME
    if ONNX_HEAD[family.name] == head:
        export = tmp_path / "onnx"
        run_command("export", [str(tmp_path / "checkpoints" / "last.ckpt"), str(export), "--onnx", "true"])

    found = {"Tagger": Tagger.from_pretrained(export, precision="32", word_split="whitespace")(texts)}
    if export.name == "onnx":
        found["onnx"] = Tagger.from_pretrained(export, backend="onnx", word_split="whitespace")(texts)
    (tmp_path / "texts.txt").write_text("\n".join(texts[:-2]) + "\n")  # lit_ner tag skips empty lines
    tagged = tmp_path / "tagged.jsonl"
    run_command(
        "tag",
        [str(tmp_path / "texts.txt"), "--model", str(export), "--output", str(tagged),
         "--word_split", "whitespace", "--precision", "32"],
    )  # fmt: skip
    found["lit_ner tag"] = [json.loads(line)["entities"] for line in tagged.read_text().splitlines()] + [
        [],
        [],
    ]
    exported = pipeline("token-classification", model=str(export), trust_remote_code=True)
    found["pipeline"] = exported(texts, word_split="whitespace", batch_size=4)
    scores = [e["score"] for entities in found["Tagger"] for e in entities]
    for path, entities in found.items():
        assert [[(e["entity_group"], e["start"], e["end"]) for e in one] for one in entities] == expected, (
            path
        )
        assert [e["score"] for one in entities for e in one] == pytest.approx(scores, abs=1e-4), path


def test_a_hub_roberta_classifier_is_tagged_as_the_pipeline_tags_it_its_tokenizer_as_saved(
    family_dirs, tmp_path
):
    """A token classifier lit_ner did not train (its tokenizer without add_prefix_space), tagged
    by argmax: the Tagger's entities are the transformers pipeline's, and a re-export keeps its
    tokenizer as it was."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

    from lit_ner.__main__ import run_command
    from lit_ner.tagging.tagger import Tagger
    from lit_ner.wnut17 import WNUT17_LABELS

    torch.manual_seed(3)
    model = AutoModelForTokenClassification.from_pretrained(
        family_dirs["roberta"], num_labels=len(WNUT17_LABELS), id2label=dict(enumerate(WNUT17_LABELS)),
        label2id={label: i for i, label in enumerate(WNUT17_LABELS)},
    )  # fmt: skip
    model.save_pretrained(tmp_path / "hub")
    AutoTokenizer.from_pretrained(family_dirs["roberta"]).save_pretrained(tmp_path / "hub")
    texts = ["Paris is nice, says @paulwalk!", "New York Knicks won", "RT @user: see https://t.co/x"]
    reference = pipeline("token-classification", model=str(tmp_path / "hub"))
    tagged = Tagger.from_pretrained(tmp_path / "hub", precision="32")(texts)
    assert sum(map(len, tagged)) > 0
    for text, entities in zip(texts, tagged):
        assert [(e["entity_group"], e["start"], e["end"]) for e in entities] == [
            (e["entity_group"], e["start"], e["end"]) for e in reference(text, aggregation_strategy="simple")
        ]
    run_command("export", [str(tmp_path / "hub"), str(tmp_path / "again")])
    saved = json.loads((tmp_path / "again" / "tokenizer.json").read_text())["pre_tokenizer"]
    assert saved["add_prefix_space"] is False
