"""Training batches group sentences of similar length, differ every epoch, repeat with the seed, and
under DDP give every process as many batches while each sentence is trained on once per epoch."""

import csv
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lit_ner.data.sampling import LengthGroupedSampler, SortedSampler, batch_sizes


def epoch_batches(lengths, batch_size, world_size, epoch=0, **kwargs):
    """Each process's batches of one epoch."""
    batches = []
    for rank in range(world_size):
        sampler = LengthGroupedSampler(lengths, batch_size, world_size, rank, **kwargs)
        sampler.set_epoch(epoch)
        batches.append(list(sampler))
    return batches


def padded_fraction(lengths, batches):
    positions = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
    return 1 - sum(lengths[i] for batch in batches for i in batch) / positions


_rng = random.Random(0)
WNUT_LIKE_LENGTHS = [_rng.randint(5, 60) for _ in range(3394)]


def test_one_process_gets_full_batches_and_a_smaller_last_one_as_usual():
    assert batch_sizes(3394, 213, 16) == [16] * 212 + [2]
    assert batch_sizes(32, 2, 16) == [16, 16]


def test_under_ddp_the_extra_batches_share_the_rest_instead_of_repeating_sentences():
    # 2 processes: 107 steps of 2 batches; 212 full ones, and the last 2 sentences one each.
    assert batch_sizes(3394, 214, 16) == [16] * 212 + [1, 1]
    assert batch_sizes(10, 4, 4) == [4, 4, 1, 1]
    assert batch_sizes(5, 4, 1) == [2, 1, 1, 1]  # batches of 1 on 2 processes: one holds 2


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 512), min_size=1, max_size=300),
    batch_size=st.integers(1, 20),
    world_size=st.integers(1, 4),
    group_by_length=st.booleans(),
    epoch=st.integers(0, 3),
)
def test_every_sentence_is_trained_on_once_per_epoch_and_every_process_gets_as_many_batches(
    lengths, batch_size, world_size, group_by_length, epoch
):
    if len(lengths) < world_size:
        with pytest.raises(Exception, match="cannot give each of"):
            LengthGroupedSampler(lengths, batch_size, world_size, 0)
        return
    batches = epoch_batches(lengths, batch_size, world_size, epoch, group_by_length=group_by_length, seed=3)
    seen = [i for process in batches for batch in process for i in batch]
    assert sorted(seen) == list(range(len(lengths)))
    assert len({len(process) for process in batches}) == 1
    # Batches of 1 cannot always be split evenly: then a few hold 2.
    assert all(1 <= len(batch) <= max(batch_size, 2) for process in batches for batch in process)
    if batch_size > 1 or len(lengths) % world_size == 0:
        assert all(len(batch) <= batch_size for process in batches for batch in process)
    assert len(batches[0]) == len(LengthGroupedSampler(lengths, batch_size, world_size, 0))


def test_grouped_batches_pad_far_less_than_random_ones():
    grouped = epoch_batches(WNUT_LIKE_LENGTHS, 16, 1)[0]
    random_batches = epoch_batches(WNUT_LIKE_LENGTHS, 16, 1, group_by_length=False)[0]
    assert padded_fraction(WNUT_LIKE_LENGTHS, random_batches) > 0.3
    assert padded_fraction(WNUT_LIKE_LENGTHS, grouped) < 0.03


def test_the_order_repeats_with_the_seed_and_changes_with_the_epoch_and_the_seed():
    first = epoch_batches(WNUT_LIKE_LENGTHS, 16, 2, epoch=0, seed=7)
    assert epoch_batches(WNUT_LIKE_LENGTHS, 16, 2, epoch=0, seed=7) == first
    assert epoch_batches(WNUT_LIKE_LENGTHS, 16, 2, epoch=1, seed=7) != first
    assert epoch_batches(WNUT_LIKE_LENGTHS, 16, 2, epoch=0, seed=8) != first


def test_batches_come_in_shuffled_order_with_the_longest_first():
    batches = epoch_batches(WNUT_LIKE_LENGTHS, 16, 1)[0]
    assert max(WNUT_LIKE_LENGTHS) in [WNUT_LIKE_LENGTHS[i] for i in batches[0]]
    longest = [max(WNUT_LIKE_LENGTHS[i] for i in batch) for batch in batches]
    assert longest[1:] != sorted(longest[1:], reverse=True)  # not simply longest to shortest


def test_processes_train_on_batches_of_similar_length_at_the_same_step():
    # No process waits long for another's longer batch at the gradient all-reduce.
    # (The last, partial chunk of 194 sentences has coarser neighbours than the full ones.)
    rank0, rank1 = epoch_batches(WNUT_LIKE_LENGTHS, 16, 2)
    gaps = [
        abs(max(WNUT_LIKE_LENGTHS[i] for i in a) - max(WNUT_LIKE_LENGTHS[i] for i in b))
        for a, b in zip(rank0, rank1)
    ]
    assert sum(gap <= 1 for gap in gaps) >= 0.9 * len(gaps) and max(gaps) <= 6


def test_a_resumed_epoch_skips_exactly_the_batches_already_trained_on():
    sampler = LengthGroupedSampler(WNUT_LIKE_LENGTHS, 16, seed=5)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.resume_at(2, 40)
    assert list(sampler) == full[40:]
    assert list(sampler) == full  # only the resumed pass is shortened


def test_a_checkpoint_from_another_number_of_processes_resumes_with_a_warning(tiny_model_dir, tmp_path):
    from lit_ner.data.datamodule import NERDataModule

    from .conftest import FIXTURES

    quirks = str(FIXTURES / "quirks.conll")
    data = NERDataModule(
        train_file=quirks, validation_file=quirks, tokenizer_name_or_path=tiny_model_dir, batch_size=1,
        cache_dir=str(tmp_path),
    )  # fmt: skip
    data.setup("fit")
    full = list(data.train_dataloader().sampler)
    assert len(full) == 3
    data.load_state_dict({"seed": data.seed, "epoch": 0, "batches_done": 1, "world_size": 1})
    assert list(data.train_dataloader().sampler) == full[1:]
    data.load_state_dict({"seed": data.seed, "epoch": 0, "batches_done": 1, "world_size": 2})
    with pytest.warns(UserWarning, match="resumed with 1 processes where the checkpoint had 2"):
        loader = data.train_dataloader()
    assert list(loader.sampler) == full


def test_evaluation_batches_are_sorted_longest_first_and_cover_every_sentence():
    lengths = [5, 9, 2, 9, 7]
    assert list(SortedSampler(lengths)) == [1, 3, 4, 0, 2]
    shards = [list(SortedSampler(lengths, 2, rank)) for rank in (0, 1)]
    assert shards == [[1, 4, 2], [3, 0, 2]]  # the shortest repeated to give both as many


def conll_sentences(n, seed=0):
    """A learnable task: people and places among filler words, in sentences of varied length."""
    rng = random.Random(seed)
    people, places = ["alice", "bob", "carol", "dave"], ["paris", "tokyo", "lima", "oslo"]
    fillers = ["today", "we", "saw", "the", "big", "old", "market", "and", "then", "left"]
    sentences = []
    for _ in range(n):
        words = [(w, "O") for w in rng.sample(fillers, rng.randint(0, 8))]
        words.insert(rng.randint(0, len(words)), (rng.choice(people), "B-person"))
        words.insert(rng.randint(0, len(words)), (rng.choice(places), "B-location"))
        sentences.append("\n".join(f"{w}\t{t}" for w, t in words))
    return "\n\n".join(sentences) + "\n"


@pytest.mark.slow
def test_a_two_process_cpu_ddp_fit_converges_sees_each_sentence_once_and_only_rank_0_writes(
    tiny_model_dir, tmp_path
):
    from .conftest import REPO
    from .test_cli import run_lit_ner

    train, validation = tmp_path / "train.conll", tmp_path / "validation.conll"
    train.write_text(conll_sentences(61))  # odd: the processes cannot split it evenly
    validation.write_text(conll_sentences(20, seed=1))
    run_dir, records = tmp_path / "runs", tmp_path / "records"
    result = run_lit_ner(
        "fit",
        "--model.model_name_or_path", tiny_model_dir,
        "--model.learning_rate=3e-3",
        f"--data.train_file={train}",
        f"--data.validation_file={validation}",
        f"--data.cache_dir={tmp_path / 'cache'}",
        "--data.batch_size=4",
        "--trainer.accelerator=cpu",
        "--trainer.devices=2",
        "--trainer.strategy=ddp",
        "--trainer.max_epochs=6",
        "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={run_dir}",
        "--trainer.logger=CSVLogger",
        f"--trainer.logger.save_dir={run_dir}",
        "--trainer.callbacks+=tests.probes.RecordTraining",
        f"--trainer.callbacks.record_dir={records}",
        env={"PYTHONPATH": str(REPO)},  # for tests.probes
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((records / f"rank{rank}.json").read_text()) for rank in (0, 1)]

    # Each epoch: every training sentence once across the two processes, as many batches each,
    # and a different order from the epoch before.
    for epoch in map(str, range(6)):
        seen = [i for rank in ranks for batch in rank["batches"][epoch] for i in batch]
        assert sorted(seen) == list(range(61))
        assert len(ranks[0]["batches"][epoch]) == len(ranks[1]["batches"][epoch]) == 8
    assert ranks[0]["batches"]["0"] != ranks[0]["batches"]["1"]

    # Converges: the loss falls by far, and the people and places are found.
    losses = [sum(sum(rank["losses"][epoch]) for rank in ranks) / 16 for epoch in ("0", "5")]

    assert losses[1] < 0.3 * losses[0]
    version = run_dir / "lightning_logs" / "version_0"
    with open(version / "metrics.csv") as log:
        rows = list(csv.DictReader(log))
    assert float([row for row in rows if row["val/f1"]][-1]["val/f1"]) > 0.9
    assert len([row for row in rows if row["train/padded_fraction"]]) == 6  # reported every epoch

    # Rank 0 alone writes the run: checkpoints, logs, reports and the export.
    written = [set(path for path in rank["writes"] if path.startswith(str(run_dir))) for rank in ranks]
    assert written[1] == set()
    assert any("checkpoints" in path for path in written[0])
    assert str(version / "metrics.csv") in written[0] and any("hf_model" in p for p in written[0])
    assert [path.name for path in (run_dir / "lightning_logs").iterdir()] == ["version_0"]
