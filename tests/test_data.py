import json
import re

import pytest
import torch

from lit_ner.data.alignment import (
    IGNORE_INDEX,
    TokenClassificationCollator,
    align_labels,
    continuation_label_ids,
    tokenize_and_align,
)
from lit_ner.data.datamodule import NERDataModule
from lit_ner.errors import LitNerError
from lit_ner.formats import read_conll, read_jsonl
from lit_ner.portable.windows import word_windows
from lit_ner.tag_schemes import bio_label_order, ill_formed_bio
from lit_ner.wnut17 import WNUT17_LABELS

from .conftest import FIXTURES


def tutorial_tokenize_and_align_labels(examples, tokenizer):
    """Verbatim from the Hugging Face token-classification tutorial (the reference)."""
    tokenized_inputs = tokenizer(examples["tokens"], truncation=True, is_split_into_words=True)

    labels = []
    for i, label in enumerate(examples["ner_tags"]):
        word_ids = tokenized_inputs.word_ids(batch_index=i)  # Map tokens to their respective word.
        previous_word_idx = None
        label_ids = []
        for word_idx in word_ids:  # Set the special tokens to -100.
            if word_idx is None:
                label_ids.append(-100)
            elif word_idx != previous_word_idx:  # Only label the first token of a given word.
                label_ids.append(label[word_idx])
            else:
                label_ids.append(-100)
            previous_word_idx = word_idx
        labels.append(label_ids)

    tokenized_inputs["labels"] = labels
    return tokenized_inputs


# --- reading files ---------------------------------------------------------------------------


def test_conll_reader_accepts_bom_crlf_docstart_whitespace_separators_and_trailing_blanks():
    split = read_conll(FIXTURES / "quirks.conll")
    assert split["tokens"] == [
        ["Empire", "State", "Building", "is", "tall"],
        ["@paulwalk", "loves", "iPhone"],
        ["Microsoft", "hired", "Satya", "Nadella"],
    ]
    assert split["tags"][0] == ["B-location", "I-location", "I-location", "O", "O"]
    assert split["tags"][2] == ["B-corporation", "O", "B-person", "I-person"]
    assert split["lines"][1] == [9, 10, 11]  # 1-based line numbers of each word


def test_conll_reader_takes_the_first_column_as_token_and_the_last_as_tag(tmp_path):
    path = tmp_path / "conll2003.txt"
    path.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n")
    assert read_conll(path) == {"tokens": [["EU", "rejects"]], "tags": [["B-ORG", "O"]], "lines": [[3, 4]]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Paris\tB-location\nlonely\n", ":2: expected a token and a tag"),
        ("Paris\tB-location\tx\nis\tO\n", ":2: expected 3 columns, got 2"),
        ("\n\n  \n", ": no sentences"),
    ],
)
def test_conll_reader_names_the_file_and_line_of_a_malformed_line(tmp_path, content, message):
    path = tmp_path / "bad.conll"
    path.write_text(content)
    with pytest.raises(LitNerError) as error:
        read_conll(path)
    assert str(error.value).startswith(str(path))
    assert message in str(error.value)


def test_conll_reader_refuses_non_utf8_bytes(tmp_path):
    path = tmp_path / "latin1.conll"
    path.write_bytes("café\tO\n".encode("latin-1"))
    with pytest.raises(LitNerError, match="not UTF-8"):
        read_conll(path)


def test_jsonl_reader_reads_tokens_and_tags_and_ignores_other_fields():
    split = read_jsonl(FIXTURES / "sample.jsonl")
    assert split["tokens"][2] == ["Paris", "Saint-Germain", "won"]
    assert split["tags"][0][3:] == ["B-creative-work", "I-creative-work", "I-creative-work"]
    assert split["lines"][1] == [2, 2]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"tokens": ["a", "b"], "tags": ["O"]}', ':2: "tokens" has 2 items but "tags" has 1'),
        ("[1, 2]", ':2: expected an object with "tokens" and "tags"'),
        ('{"tokens": ["a"', ":2: not valid JSON"),
    ],
)
def test_jsonl_reader_names_the_line_of_a_bad_record(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"tokens": ["ok"], "tags": ["O"]}\n' + line + "\n")
    with pytest.raises(LitNerError, match=message):
        read_jsonl(path)


def test_label_order_from_file_tags_is_wnut17s_order_for_wnut17s_tags():
    assert bio_label_order(set(WNUT17_LABELS)) == WNUT17_LABELS


def test_label_order_puts_o_first_then_types_sorted_with_b_before_i():
    tags = {"I-PER", "B-ORG", "O", "B-PER", "I-ORG", "B-LOC"}
    assert bio_label_order(tags) == ["O", "B-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]


# --- alignment -------------------------------------------------------------------------------


def test_alignment_labels_first_subwords_and_masks_specials_and_continuations():
    # [CLS] em ##pire state [SEP]  for the words "Empire State" tagged B-location I-location
    word_ids = [None, 0, 0, 1, None]
    assert align_labels(word_ids, [7, 8]) == [IGNORE_INDEX, 7, IGNORE_INDEX, 8, IGNORE_INDEX]


def test_label_all_tokens_gives_continuations_the_i_tag_of_their_word():
    continuation = continuation_label_ids(WNUT17_LABELS)
    b_location, i_location, outside = 7, 8, 0
    word_ids = [None, 0, 0, 1, 1, 2, 2, None]
    labels = align_labels(word_ids, [b_location, i_location, outside], continuation)
    assert labels == [IGNORE_INDEX, b_location, i_location, i_location, i_location, 0, 0, IGNORE_INDEX]


def test_alignment_equals_the_tutorials_function(tokenizer):
    split = read_conll(FIXTURES / "quirks.conll")
    index = {tag: i for i, tag in enumerate(WNUT17_LABELS)}
    batch = {"tokens": split["tokens"], "ner_tags": [[index[t] for t in s] for s in split["tags"]]}
    ours = tokenize_and_align({"tokens": batch["tokens"], "tags": batch["ner_tags"]}, tokenizer, None, None)
    reference = tutorial_tokenize_and_align_labels(batch, tokenizer)
    assert ours["input_ids"] == reference["input_ids"]
    assert ours["labels"] == reference["labels"]


def test_alignment_equals_the_tutorials_function_on_every_wnut17_sentence(tokenizer, wnut17_dir):
    index = {tag: i for i, tag in enumerate(WNUT17_LABELS)}
    for name in ("wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated"):
        split = read_conll(wnut17_dir / name)
        tags = [[index[t] for t in sentence] for sentence in split["tags"]]
        ours = tokenize_and_align({"tokens": split["tokens"], "tags": tags}, tokenizer, None, None)
        reference = tutorial_tokenize_and_align_labels(
            {"tokens": split["tokens"], "ner_tags": tags}, tokenizer
        )
        assert ours["labels"] == reference["labels"], name
        assert len(ours["labels"]) == len(split["tokens"])


def test_alignment_counts_words_that_get_no_subword_position(tokenizer):
    words = ["New", "York", "\u200b", "rocks"]  # a zero-width space tokenizes to nothing
    out = tokenize_and_align({"tokens": [words], "tags": [[7, 8, 0, 0]]}, tokenizer, None, None)
    assert out["unlabelled_words"] == [1]
    assert out["word_index"][0] == [-1, 0, 1, 3, -1]  # [CLS] new york rocks [SEP]
    assert out["word_labels"][0] == [7, 8, 0, 0]  # the empty word keeps its gold label


def test_a_sentence_longer_than_max_length_becomes_windows_that_own_every_word_once(tokenizer):
    words = ["New", "York", "\u200b", "rocks"] * 5
    tags = [7, 8, 0, 0] * 5
    out = tokenize_and_align(
        {"tokens": [words], "tags": [tags], "sentence_id": [7]},
        tokenizer,
        max_length=6,
        continuation_ids=None,
        stride=2,
    )
    assert len(out["input_ids"]) > 1
    assert all(len(ids) <= 6 for ids in out["input_ids"])
    assert all(
        ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id for ids in out["input_ids"]
    )
    assert set(out["sentence_id"]) == {7}
    # The windows' owned words, in offset order, are the sentence: each word once, in order.
    assert out["word_offset"] == sorted(out["word_offset"])
    joined = [label for labels in out["word_labels"] for label in labels]
    assert joined == tags
    assert [sum(n for n in out["word_offset"][:1])] == [0]
    for offset, labels, next_offset in zip(out["word_offset"], out["word_labels"], out["word_offset"][1:]):
        assert offset + len(labels) == next_offset
    # Every owned word that has a subword is trained on exactly once (its first subword).
    trained = [label for labels in out["labels"] for label in labels if label != IGNORE_INDEX]
    assert len(trained) == len(words) - 5  # the five zero-width words have no position
    assert sum(out["unlabelled_words"]) == 5
    assert set(out["n_windows"]) == {len(out["input_ids"])}


def test_windows_overlap_by_the_stride_and_share_each_overlap_at_its_middle():
    one_subword_each = [(i, i + 1) for i in range(10)]
    windows = word_windows(one_subword_each, budget=4, stride=2)
    assert windows[0][:2] == (0, 4) and windows[1][0] == 2  # the second window repeats 2 words
    owned = [range(own_first, own_last) for _, _, own_first, own_last in windows]
    assert [w for r in owned for w in r] == list(range(10))
    assert all(first <= own_first and own_last <= last for first, last, own_first, own_last in windows)


def test_a_single_word_longer_than_the_budget_gets_a_window_of_its_own():
    windows = word_windows([(0, 1), (1, 9), (9, 10)], budget=4, stride=1)
    assert (1, 2, 1, 2) in windows
    assert [w for _, _, a, b in windows for w in range(a, b)] == [0, 1, 2]


# --- collation -------------------------------------------------------------------------------


def test_collator_pads_each_batch_to_its_longest_sentence():
    collate = TokenClassificationCollator(pad_token_id=0)
    batch = collate(
        [
            {"input_ids": [101, 7, 102], "attention_mask": [1, 1, 1], "labels": [-100, 3, -100]},
            {"input_ids": [101, 5, 6, 9, 102], "attention_mask": [1] * 5, "labels": [-100, 1, 2, -100, -100]},
        ]
    )
    assert batch["input_ids"].tolist() == [[101, 7, 102, 0, 0], [101, 5, 6, 9, 102]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["labels"].tolist() == [[-100, 3, -100, -100, -100], [-100, 1, 2, -100, -100]]
    assert batch["labels"].dtype == torch.long


def test_collator_rounds_the_length_up_to_pad_to_multiple_of():
    collate = TokenClassificationCollator(pad_token_id=0, pad_to_multiple_of=8)
    batch = collate([{"input_ids": [101, 7, 102], "attention_mask": [1, 1, 1], "labels": [-100, 3, -100]}])
    assert batch["input_ids"].shape == (1, 8)
    assert batch["labels"][0, 3:].eq(IGNORE_INDEX).all()


# --- the DataModule --------------------------------------------------------------------------


def files_datamodule(tiny_model_dir, tmp_path, **kwargs):
    conll = str(FIXTURES / "quirks.conll")
    options = dict(
        train_file=conll,
        validation_file=conll,
        test_file=str(FIXTURES / "sample.jsonl"),
        label_names=WNUT17_LABELS,  # the test file has types that train lacks
    )
    options.update(kwargs)
    return NERDataModule(
        tokenizer_name_or_path=tiny_model_dir, cache_dir=str(tmp_path), batch_size=2, **options
    )


def test_labels_read_from_files_are_the_full_bio_set_of_the_train_splits_types(tiny_model_dir, tmp_path):
    data = files_datamodule(tiny_model_dir, tmp_path, test_file=None, label_names=None)
    # I-corporation and I-product never occur in train: the scheme's full set has them all the same.
    assert data.label_names == [
        "O",
        "B-corporation",
        "I-corporation",
        "B-location",
        "I-location",
        "B-person",
        "I-person",
        "B-product",
        "I-product",
    ]


def test_an_evaluation_type_that_train_lacks_is_an_error_naming_its_line(tiny_model_dir, tmp_path):
    with pytest.raises(
        LitNerError, match=r"sample.jsonl:1: entity type 'creative-work' never occurs in the train split"
    ):
        files_datamodule(tiny_model_dir, tmp_path, label_names=None)


def test_a_tag_outside_the_given_label_set_is_an_error_naming_its_line(tiny_model_dir, tmp_path):
    with pytest.raises(LitNerError, match=r"quirks.conll:11: tag 'B-product' is not in the label set"):
        files_datamodule(tiny_model_dir, tmp_path, label_names=["O", "B-location", "I-location"])


def test_dataloaders_yield_padded_batches_with_one_label_per_word(tiny_model_dir, tmp_path):
    data = files_datamodule(tiny_model_dir, tmp_path)
    data.setup("fit")
    batch = next(iter(data.val_dataloader()))
    assert set(batch) == {
        "input_ids",
        "attention_mask",
        "labels",
        "shape_ids",
        "word_labels",
        "word_index",
        "sentence_id",
        "word_offset",
        "n_windows",
        "closes_sentence",
    }
    assert batch["shape_ids"].shape == batch["input_ids"].shape
    assert batch["shape_ids"][batch["attention_mask"] == 0].eq(0).all()  # padding has no word
    # Each sentence's index in its split; evaluation batches come longest first.
    ids = batch["sentence_id"].tolist()
    lengths = [len(data.datasets["validation"][i]["input_ids"]) for i in range(3)]
    assert ids == sorted(range(3), key=lambda i: -lengths[i])[:2]
    raw = read_conll(FIXTURES / "quirks.conll")
    words_per_sentence = [len(raw["tokens"][i]) for i in ids]
    assert (batch["labels"] != IGNORE_INDEX).sum(dim=1).tolist() == words_per_sentence
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    # Word-level scoring: every word's gold label, padded, and where each word starts.
    assert (batch["word_labels"] != IGNORE_INDEX).sum(dim=1).tolist() == words_per_sentence
    for row, tags in enumerate(raw["tags"][i] for i in ids):
        assert [data.label_names[i] for i in batch["word_labels"][row, : len(tags)].tolist()] == tags
        starts = batch["word_index"][row]
        assert starts[starts >= 0].tolist() == list(range(len(tags)))  # each word starts once, in order
        assert batch["labels"][row][starts >= 0].tolist() == batch["word_labels"][row, : len(tags)].tolist()
    assert batch["word_index"].shape == batch["input_ids"].shape


def test_tokenized_file_splits_are_cached_and_reused(tiny_model_dir, tmp_path):
    first = files_datamodule(tiny_model_dir, tmp_path)
    first.setup("validate")
    cache_files = sorted((tmp_path / "lit_ner").glob("validation-*.arrow"))
    assert len(cache_files) == 1
    second = files_datamodule(tiny_model_dir, tmp_path)
    second.setup("validate")
    assert second.datasets["validation"].cache_files[0]["filename"] == str(cache_files[0])
    assert second.datasets["validation"]["labels"] == first.datasets["validation"]["labels"]
    # Changing what shapes the encoding must not reuse it.
    files_datamodule(tiny_model_dir, tmp_path, label_all_tokens=True).setup("validate")
    assert len(list((tmp_path / "lit_ner").glob("validation-*.arrow"))) == 2


def test_sentences_longer_than_max_length_are_windowed_reported_and_keep_every_word(
    tiny_model_dir, tmp_path, caplog
):
    data = files_datamodule(tiny_model_dir, tmp_path, max_length=5, stride=1)
    with caplog.at_level("INFO"):
        data.setup("validate")
    assert re.search(r"validation: 3 sentences; 3 longer than 5 subword positions, each split", caplog.text)
    validation = data.datasets["validation"]
    assert all(len(ids) <= 5 for ids in validation["input_ids"])
    by_sentence: dict[int, list] = {}
    for sentence_id, offset, labels in zip(
        validation["sentence_id"], validation["word_offset"], validation["word_labels"]
    ):
        by_sentence.setdefault(sentence_id, []).append((offset, labels))
    tags = [[data.label_names.index(t) for t in s] for s in data.tags("validation")]
    for sentence_id, pieces in by_sentence.items():
        assert [label for _, labels in sorted(pieces) for label in labels] == tags[sentence_id]


def test_wnut17_release_directory_gives_the_three_splits_in_wnut17_label_order(
    tiny_model_dir, tmp_path, wnut17_dir
):
    data = NERDataModule(
        data_dir=str(wnut17_dir), tokenizer_name_or_path=tiny_model_dir, cache_dir=str(tmp_path)
    )
    assert data.label_names == WNUT17_LABELS
    assert {split: len(raw["tokens"]) for split, raw in data.splits.items()} == {
        "train": 3394,
        "validation": 1009,
        "test": 1287,
    }
    assert sum(len(sentence) for sentence in data.splits["train"]["tokens"]) == 62730


def test_wnut17_dir_variable_stands_in_for_the_wnut17_hub_data_set_only(
    monkeypatch, tiny_model_dir, wnut17_dir
):
    monkeypatch.setenv("WNUT17_DIR", str(wnut17_dir))
    assert (
        NERDataModule(tokenizer_name_or_path=tiny_model_dir).files["test"].name == "emerging.test.annotated"
    )
    assert NERDataModule(dataset_name="conll2003", tokenizer_name_or_path=tiny_model_dir).files == {}


def test_missing_wnut17_files_are_named(tmp_path, tiny_model_dir):
    (tmp_path / "wnut17train.conll").write_text("a\tO\n")
    with pytest.raises(LitNerError, match="emerging.dev.conll, .*emerging.test.annotated"):
        NERDataModule(data_dir=str(tmp_path), tokenizer_name_or_path=tiny_model_dir)


def test_an_unreachable_hub_is_one_actionable_error(no_wnut17_env, tiny_model_dir):
    data = NERDataModule(dataset_name="leondz/wnut_17", tokenizer_name_or_path=tiny_model_dir)
    with pytest.raises(
        LitNerError, match="cannot reach the Hugging Face Hub .* configs/offline.yaml"
    ) as error:
        data.label_names  # noqa: B018 - reads the ClassLabel names from the Hub data set
    assert "\n" not in str(error.value)


def test_hub_data_sets_are_read_through_their_tokens_and_classlabel_columns(
    monkeypatch, no_wnut17_env, tiny_model_dir, tmp_path
):
    # The Hub is the one boundary not reachable here: stand in for load_dataset with a real
    # DatasetDict shaped like leondz/wnut_17's parquet conversion.
    import datasets

    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=WNUT17_LABELS)),
        }
    )
    split = datasets.Dataset.from_dict(
        {"id": ["0"], "tokens": [["Empire", "State", "rocks"]], "ner_tags": [[7, 8, 0]]}, features=features
    )
    calls = []

    def fake_load_dataset(name, config=None, revision=None):
        calls.append((name, config, revision))
        return datasets.DatasetDict({"train": split, "validation": split, "test": split})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    # As configs/wnut.yaml names it: the revision applies because it is set.
    data = NERDataModule(
        dataset_name="leondz/wnut_17",
        dataset_revision="refs/convert/parquet",
        tokenizer_name_or_path=tiny_model_dir,
    )
    assert data.label_names == WNUT17_LABELS
    data.setup("test")
    assert calls[0] == ("leondz/wnut_17", None, "refs/convert/parquet")
    labels = data.datasets["test"][0]["labels"]
    assert [label for label in labels if label != IGNORE_INDEX] == [7, 8, 0]


def test_jsonl_and_conll_files_can_be_mixed_across_splits(tiny_model_dir, tmp_path):
    data = files_datamodule(tiny_model_dir, tmp_path)
    data.setup("test")
    first = data.datasets["test"][0]
    expected = json.loads((FIXTURES / "sample.jsonl").read_text().splitlines()[0])["tags"]
    assert [data.label_names[i] for i in first["labels"] if i != IGNORE_INDEX] == expected


def test_a_hub_data_set_without_classlabel_tags_asks_for_label_names(
    monkeypatch, no_wnut17_env, tiny_model_dir
):
    import datasets

    split = datasets.Dataset.from_dict({"tokens": [["a"]], "ner_tags": [[0]]})  # plain ints, no names
    monkeypatch.setattr(
        datasets, "load_dataset", lambda *args, **kwargs: datasets.DatasetDict({"train": split})
    )
    with pytest.raises(LitNerError, match="'ner_tags' holds plain integer tags .* set --data.label_names"):
        NERDataModule(dataset_name="someone/ner", tokenizer_name_or_path=tiny_model_dir).label_names  # noqa: B018
    with pytest.raises(LitNerError, match="has no column 'words'"):
        NERDataModule(
            dataset_name="someone/ner", tokens_column="words", tokenizer_name_or_path=tiny_model_dir
        ).label_names  # noqa: B018


def test_ill_formed_bio_is_read_as_seqeval_reads_it_counted_and_reported(tiny_model_dir, tmp_path):
    path = tmp_path / "odd.conll"
    # B- opens most entities (IOB2), so the I- tags after O are annotation slips, not IOB1.
    path.write_text(
        "Bob\tI-person\nMarley\tI-person\nin\tO\nParis\tB-location\n\nhi\tO\n\n"
        "The\tB-group\nBeatles\tI-group\nand\tO\nRome\tB-location\n"
    )
    with pytest.warns(
        UserWarning, match=r"odd.conll:1: 'I-person' continues no entity: 1 such I- tags in train"
    ):
        data = NERDataModule(
            train_file=str(path), tokenizer_name_or_path=tiny_model_dir, cache_dir=str(tmp_path)
        )
    assert data.tags("train")[0] == ["I-person", "I-person", "O", "B-location"]  # kept as written
    assert ill_formed_bio(["B-person", "I-person", "I-group", "O", "I-group"]) == [2, 4]


def test_without_a_directory_the_offline_data_is_the_release_shipped_inside_the_package(
    no_wnut17_env, tiny_model_dir, wnut17_dir, tmp_path
):
    from lit_ner.wnut17 import PACKAGED_WNUT17

    packaged = NERDataModule(
        dataset_name=None, tokenizer_name_or_path=tiny_model_dir, cache_dir=str(tmp_path)
    )
    assert {path.parent for path in packaged.files.values()} == {PACKAGED_WNUT17}
    release = NERDataModule(data_dir=str(wnut17_dir), tokenizer_name_or_path=tiny_model_dir)
    assert packaged.label_names == release.label_names == WNUT17_LABELS
    assert packaged.splits == release.splits  # words, tags and line numbers
    assert (PACKAGED_WNUT17 / "README.md").read_text().count("CC-BY 4.0") >= 1


def test_a_truncated_gzip_file_is_one_line_naming_it(tmp_path):
    import gzip

    path = tmp_path / "train.conll.gz"
    path.write_bytes(gzip.compress(b"Paris\tB-location\n\n")[:-6])
    with pytest.raises(LitNerError, match=r"train.conll.gz: cannot read \(") as error:
        read_conll(path)
    assert "\n" not in str(error.value)
