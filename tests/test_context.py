"""Retrieved context (`--data.retrieved_context K`): each sentence gets its K nearest training
sentences by the encoder's own sentence embedding, never itself or a copy of its words, as a
second segment that carries no labels; the sentence's own encoding and labels stay as they were."""

import json

import torch

from lit_ner.data.alignment import tokenize_and_align
from lit_ner.data.context import nearest_sentences
from lit_ner.data.datamodule import NERDataModule
from lit_ner.wnut17 import WNUT17_LABELS

from .test_word_features import wnut17_slice


def test_the_nearest_sentences_are_the_most_similar_others_never_itself_or_a_copy():
    words = [["a"], ["b"], ["a"], ["c"]]  # sentence 2 is a copy of sentence 0
    pool = torch.nn.functional.normalize(
        torch.tensor([[1.0, 0.0], [0.8, 0.6], [1.0, 0.01], [0.0, 1.0]]), dim=-1
    )
    assert nearest_sentences(pool, pool, 2, words, words, same_split=True) == [[1, 3], [2, 0], [1, 3], [1, 2]]
    queries = torch.nn.functional.normalize(torch.tensor([[0.1, 1.0]]), dim=-1)
    assert nearest_sentences(queries, pool, 1, [["x"]], words, same_split=False) == [[3]]


def test_each_sentence_is_followed_by_its_context_which_carries_no_label(
    tiny_model_dir, wnut17_dir, tmp_path
):
    train = wnut17_slice(wnut17_dir / "wnut17train.conll", tmp_path / "train.conll", 60)
    test = wnut17_slice(wnut17_dir / "emerging.test.annotated", tmp_path / "test.conll", 20)

    def data(k):
        module = NERDataModule(
            train_file=train, validation_file=test, test_file=test, label_names=WNUT17_LABELS,
            tokenizer_name_or_path=tiny_model_dir, cache_dir=str(tmp_path), retrieved_context=k,
        )  # fmt: skip
        module.setup("fit")
        return module

    plain, with_context = data(0), data(2)
    tokenizer = with_context.tokenizer
    for split in ("train", "validation"):
        contexts = with_context.contexts(split)
        for plain_row, row in zip(plain.datasets[split], with_context.datasets[split]):
            sentence = row["sentence_id"]
            n = len(plain_row["input_ids"])
            # The sentence as it was, then its context and a separator; no label, word or shape there.
            assert row["input_ids"][:n] == plain_row["input_ids"]
            expected = tokenizer(contexts[sentence], is_split_into_words=True, add_special_tokens=False)
            assert row["input_ids"][n:-1] == expected["input_ids"][: len(row["input_ids"]) - n - 1]
            assert row["input_ids"][-1] == tokenizer.sep_token_id
            assert set(row["labels"][n:]) == {-100} and set(row["shape_ids"][n:]) == {0}
            assert row["labels"][:n] == plain_row["labels"] and row["word_labels"] == plain_row["word_labels"]
            assert set(row["word_index"][n:]) == {-1}
            # Context from the training split, two sentences, never the sentence itself.
            words = with_context.words(split)[sentence]
            assert len(contexts[sentence]) > 0 and contexts[sentence] != words
    assert json.dumps(with_context.contexts("train")) != json.dumps(with_context.contexts("validation"))


def test_a_tokenizer_with_two_separators_between_segments_gets_context_only_where_it_fits(
    wnut17_dir, tmp_path
):
    """RoBERTa's pair is `<s> A </s></s> B </s>`: a sentence one position short of the limit has
    no room for context and stays as it was, instead of failing in the tokenizer."""
    from transformers import AutoTokenizer

    from .tokenizer_families import FAMILIES, save_family_model, training_text

    family = next(family for family in FAMILIES if family.name == "roberta")
    directory = save_family_model(
        family, training_text(wnut17_dir / "wnut17train.conll"), tmp_path / "roberta"
    )
    tokenizer = AutoTokenizer.from_pretrained(directory, add_prefix_space=True)
    words = ["Storm", "hits", "New", "York"]
    alone = len(tokenizer(words, is_split_into_words=True)["input_ids"])
    context = [["the", "storm", "in", "Boston", "was", "worse"]]
    for max_length, has_context in ((alone + 1, False), (alone + 2, False), (alone + 3, True)):
        example = tokenize_and_align(
            {"tokens": [words], "tags": [[0] * 4], "sentence_id": [0]},
            tokenizer,
            max_length,
            None,
            contexts=context,
        )
        ids = example["input_ids"][0]
        assert len(ids) <= max_length and (len(ids) > alone) == has_context, max_length


def test_a_model_trained_with_context_says_that_tagging_retrieves_none(tiny_model_dir, tmp_path, capsys):
    from lit_ner.tagging.tagger import Tagger
    from lit_ner.training.cli import cli_main

    from .conftest import FIXTURES

    conll = str(FIXTURES / "quirks.conll")
    cli_main(
        [
            "fit", "--model.model_name_or_path", tiny_model_dir, "--model.head=crf",
            "--data.retrieved_context=1",
            f"--data.train_file={conll}", f"--data.validation_file={conll}", f"--data.cache_dir={tmp_path}",
            "--trainer.max_steps=1", "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}",
            "--trainer.enable_progress_bar=false",
        ]
    )  # fmt: skip
    export = tmp_path / "hf_model"
    assert json.loads((export / "config.json").read_text())["lit_ner_retrieved_context"] == 1
    capsys.readouterr()
    Tagger.from_pretrained(export)
    assert "trained and tested with 1 retrieved training sentences as context" in capsys.readouterr().err
