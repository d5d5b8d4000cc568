"""Mention replacement (`--data.augment.mention_replacement p`): each epoch, training mentions are
swapped for other training mentions of their type, the same way in every process and after a
resume, counted, and never in validation or test."""

import json
import logging
import random
from functools import partial

import pytest

from lit_ner.data.alignment import tokenize_and_align
from lit_ner.data.augment import Augmentation, MentionReplacedSet, mention_pool, replace_mentions
from lit_ner.data.datamodule import NERDataModule
from lit_ner.errors import LitNerError
from lit_ner.formats import read_conll
from lit_ner.portable.spans import get_entities
from lit_ner.tag_schemes import ill_formed_bio
from lit_ner.wnut17 import WNUT17_LABELS

from .test_word_features import wnut17_slice


@pytest.fixture(scope="module")
def train(wnut17_dir):
    data = read_conll(wnut17_dir / "wnut17train.conll")
    return data["tokens"][:600], data["tags"][:600]


def test_every_mention_is_replaced_at_p_1_by_another_of_its_type_with_its_tags_rebuilt(train):
    tokens, tags = train
    pool = mention_pool(tokens, tags)
    rng = random.Random(0)
    replaced = mentions = 0
    for words, sentence_tags in zip(tokens, tags):
        new_words, new_tags, n = replace_mentions(words, sentence_tags, pool, 1.0, rng)
        old, new = get_entities(sentence_tags), get_entities(new_tags)
        mentions += len(old)
        replaced += n
        assert len(new_words) == len(new_tags) and not ill_formed_bio(new_tags)
        assert [span[0] for span in new] == [span[0] for span in old]  # types kept, in order
        for (type_, first, last), (_, new_first, new_last) in zip(old, new):
            mention, drawn = tuple(words[first : last + 1]), tuple(new_words[new_first : new_last + 1])
            assert drawn in pool[type_] and drawn != mention
    assert replaced == mentions > 300
    # p = 0 changes nothing.
    for words, sentence_tags in zip(tokens, tags):
        assert replace_mentions(words, sentence_tags, pool, 0.0, rng) == (words, sentence_tags, 0)


def test_a_mention_with_no_other_of_its_type_stays():
    words, tags = ["I", "met", "Ann"], ["O", "O", "B-person"]
    pool = mention_pool([words], [tags])
    assert replace_mentions(words, tags, pool, 1.0, random.Random(0)) == (words, tags, 0)


def replaced_set(tokens, tags, tokenizer, p=0.5, seed=7, max_length=128):
    align = partial(tokenize_and_align, tokenizer=tokenizer, max_length=max_length, continuation_ids=None)
    return MentionReplacedSet(tokens, tags, WNUT17_LABELS, align, p, seed)


def sentences_of(rows):
    return [(row["sentence_id"], tuple(row["input_ids"])) for row in rows]


def test_each_epoch_is_its_own_draw_and_the_same_draw_wherever_it_is_made(train, tokenizer):
    tokens, tags = train
    first = replaced_set(tokens, tags, tokenizer)
    n = len(first)
    epoch0, counts0 = first.draw(0)
    epoch1, counts1 = first.draw(1)
    assert len(epoch0) == len(epoch1) == n == len(first.original)
    assert [row["sentence_id"] for row in epoch0] == [row["sentence_id"] for row in epoch1]  # same slots
    assert sentences_of(epoch0) != sentences_of(epoch1)
    assert 0.4 < counts0["replaced"] / counts0["mentions"] < 0.6 and counts0 != counts1
    # Another process (or a resumed run) draws the same epoch from the seed alone; indices carry the
    # epoch as `LengthGroupedSampler(epoch_indices=True)` yields them.
    other = replaced_set(tokens, tags, tokenizer)
    assert sentences_of(other[[n + k for k in range(n)]]) == sentences_of(epoch1)
    assert other.draw(1)[1] == counts1
    assert sentences_of(replaced_set(tokens, tags, tokenizer, seed=8).draw(1)[0]) != sentences_of(epoch1)


def test_a_sentence_whose_draw_would_change_its_windows_keeps_its_original(train, tokenizer):
    tokens, tags = train
    # 24 positions: many tweets need two windows, and a longer or shorter name can change that.
    augmented = replaced_set(tokens, tags, tokenizer, p=1.0, max_length=24)
    rows, counts = augmented.draw(0)
    assert counts["kept_for_length"] > 0
    assert len(rows) == len(augmented)  # the example count, and so the schedule, stay the data's
    # At p = 1 every sentence with a mention is drawn anew (each type here has several mentions).
    with_mentions = sum(1 for sentence_tags in tags if get_entities(sentence_tags))
    assert counts["sentences"] + counts["kept_for_length"] == with_mentions


def test_each_epochs_words_are_the_sentences_its_examples_encode(train, tokenizer):
    """What a teacher reads (`model.teacher`): the epoch's words, mention-replaced ones in place."""
    tokens, tags = train
    augmented = replaced_set(tokens, tags, tokenizer)
    for epoch in (0, 1):
        rows, counts = augmented.draw(epoch)
        words = augmented.words(epoch)
        assert sum(new != old for new, old in zip(words, tokens)) == counts["sentences"] > 100
        for row in rows:
            encoded = tokenizer(words[row["sentence_id"]], is_split_into_words=True)["input_ids"]
            assert row["input_ids"] == encoded


def datamodule(tiny_model_dir, tmp_path, train_file, p):
    return NERDataModule(
        train_file=train_file, validation_file=train_file, test_file=train_file,
        label_names=WNUT17_LABELS, tokenizer_name_or_path=tiny_model_dir, cache_dir=str(tmp_path),
        batch_size=8, augment=Augmentation(mention_replacement=p),
    )  # fmt: skip


def batches(data, epoch, resume=None):
    data.setup("fit")
    if resume is not None:
        data.load_state_dict({"seed": data.seed, "epoch": epoch, "batches_done": resume})
    loader = data.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return [batch["input_ids"].tolist() for batch in loader]


def test_the_data_module_augments_train_only_and_resumes_on_the_same_batches(
    tiny_model_dir, wnut17_dir, tmp_path
):
    train_file = wnut17_slice(wnut17_dir / "wnut17train.conll", tmp_path / "train.conll", 300)
    plain = datamodule(tiny_model_dir, tmp_path, train_file, 0.0)
    augmented = datamodule(tiny_model_dir, tmp_path, train_file, 0.5)
    for data in (plain, augmented):
        data._seed = 42
    assert augmented.hparams["augment"] == {"mention_replacement": 0.5}  # plain values in checkpoints
    epoch1 = batches(augmented, 1)
    assert epoch1 != batches(plain, 1) and epoch1 != batches(augmented, 2)
    assert len(epoch1) == len(batches(plain, 1))
    # Validation and test are the data as it is.
    for data in (plain, augmented):
        data.setup("test")
    for split in ("validation", "test"):
        assert augmented.datasets[split]["input_ids"] == plain.datasets[split]["input_ids"]
    # A run resumed after 5 batches of epoch 1 trains on the rest of the same epoch.
    resumed = datamodule(tiny_model_dir, tmp_path, train_file, 0.5)
    resumed._seed = 42
    assert batches(resumed, 1, resume=5) == epoch1[5:]
    assert augmented.augmentation_counts(1)["replaced"] > 50


def test_a_probability_outside_0_1_is_refused(tiny_model_dir, tmp_path, wnut17_dir):
    with pytest.raises(LitNerError, match=r"mention_replacement must be a probability in \[0, 1\], not 1.5"):
        datamodule(tiny_model_dir, tmp_path, str(wnut17_dir / "emerging.dev.conll"), 1.5)


def test_replacements_are_counted_in_the_logs_each_epoch(tiny_model_dir, wnut17_dir, tmp_path, caplog):
    from lit_ner.training.cli import cli_main

    from .conftest import REPO

    caplog.set_level(logging.INFO)
    train_file = wnut17_slice(wnut17_dir / "wnut17train.conll", tmp_path / "slice.conll", 200)
    fitted = cli_main(
        [
            "fit", "--config", str(REPO / "configs" / "wnut.yaml"),
            "--model.model_name_or_path", tiny_model_dir, f"--data.label_names={json.dumps(WNUT17_LABELS)}",
            f"--data.train_file={train_file}", f"--data.validation_file={train_file}",
            "--data.test_file=null", f"--data.cache_dir={tmp_path}", "--data.augment.mention_replacement=0.3",
            "--trainer.max_epochs=2", "--trainer.enable_progress_bar=false",
            f"--trainer.logger.init_args.save_dir={tmp_path}", "--test_after_fit=false",
        ]
    )  # fmt: skip
    data = fitted.datamodule
    counts = [data.augmentation_counts(epoch) for epoch in (0, 1)]
    for epoch, count in enumerate(counts):
        assert (
            f"epoch {epoch}: mention replacement swapped {count['replaced']:,} of the {count['mentions']:,} "
            f"training mentions" in caplog.text
        )
    metrics = (tmp_path / "slice" / "version_0" / "metrics.csv").read_text().splitlines()
    column = metrics[0].split(",").index("train/replaced_mentions")
    logged = [float(row.split(",")[column]) for row in metrics[1:] if row.split(",")[column]]
    assert logged == [float(count["replaced"]) for count in counts]


@pytest.mark.parametrize("labels", [["O", "B-PER", "E-PER", "S-PER"], ["O", "PER", "LOC"]])
def test_a_label_set_of_another_scheme_is_refused_since_replacements_are_written_as_bio(labels, tokenizer):
    tags = [[labels[1], labels[2]]]
    align = partial(tokenize_and_align, tokenizer=tokenizer, max_length=64, continuation_ids=None)
    with pytest.raises(LitNerError, match=r"rewrites mentions as BIO tags; the label set has \d labels"):
        MentionReplacedSet([["Ann", "Lee"]], tags, labels, align, 0.5, seed=7)
