import random

import pytest
import seqeval.metrics
import torch
from seqeval.metrics.sequence_labeling import get_entities as seqeval_get_entities

from lit_ner.data.alignment import IGNORE_INDEX
from lit_ner.formats import read_conll
from lit_ner.model.metrics import NERMetrics
from lit_ner.scoring import (
    classification_report,
    entity_confusion,
    get_entities,
    get_entities_strict,
    ner_scores,
    surface_scores,
)
from lit_ner.wnut17 import WNUT17_LABELS

# Valid and ill-formed BIO, IOBES prefixes and odd tags seqeval still parses.
ODD_TAGS = ["E-person", "S-group", "B", "I", ".", "I-"]


def random_tags(rng: random.Random, length: int, alphabet: list[str]) -> list[str]:
    return [rng.choice(alphabet) for _ in range(length)]


def seqeval_scores(y_true, y_pred):
    return {
        "precision": seqeval.metrics.precision_score(y_true, y_pred, zero_division=0),
        "recall": seqeval.metrics.recall_score(y_true, y_pred, zero_division=0),
        "f1": seqeval.metrics.f1_score(y_true, y_pred, zero_division=0),
        "accuracy": seqeval.metrics.accuracy_score(y_true, y_pred),
    }


def assert_scores_equal(ours, reference):
    assert ours.keys() == reference.keys()
    for name in ours:
        assert ours[name] == pytest.approx(reference[name], abs=1e-9), name


def test_entities_of_valid_and_ill_formed_bio():
    tags = ["B-person", "I-person", "O", "I-location", "I-location", "B-group", "I-product", "O", "B-person"]
    # A lone I- opens an entity; a type switch inside a span closes one and opens another.
    assert get_entities(tags) == [
        ("person", 0, 1),
        ("location", 3, 4),
        ("group", 5, 5),
        ("product", 6, 6),
        ("person", 8, 8),
    ]


def test_entities_equal_seqevals_on_random_sequences():
    rng = random.Random(0)
    alphabet = WNUT17_LABELS + ODD_TAGS
    for _ in range(3000):
        tags = random_tags(rng, rng.randint(0, 12), alphabet)
        assert get_entities(tags) == seqeval_get_entities(tags), tags


def test_scores_equal_seqevals_on_random_corpora():
    rng = random.Random(1)
    for trial in range(300):
        alphabet = WNUT17_LABELS + (ODD_TAGS if trial % 2 else [])
        lengths = [rng.randint(0, 10) for _ in range(rng.randint(1, 8))]
        y_true = [random_tags(rng, n, alphabet) for n in lengths]
        y_pred = [random_tags(rng, n, alphabet) for n in lengths]
        if not any(lengths):
            continue  # seqeval's accuracy divides by zero on a corpus without words
        assert_scores_equal(ner_scores(y_true, y_pred), seqeval_scores(y_true, y_pred))


def seqeval_report(y_true, y_pred, mode):
    from seqeval.scheme import IOB2

    strict = {"mode": "strict", "scheme": IOB2} if mode == "strict" else {}
    report = seqeval.metrics.classification_report(
        y_true, y_pred, output_dict=True, zero_division=0, **strict
    )
    return {
        name: {"f1" if key == "f1-score" else key: value for key, value in row.items()}
        for name, row in report.items()
    }


@pytest.mark.parametrize("mode", ["default", "strict"])
def test_per_type_report_equals_seqevals_on_10000_random_sequences(mode):
    rng = random.Random(7)
    alphabet = WNUT17_LABELS + (ODD_TAGS if mode == "default" else [])  # strict IOB2 refuses E-, S-, ...
    n_sequences = 0
    while n_sequences < 10_000:
        lengths = [rng.randint(1, 12) for _ in range(5)]
        y_true = [random_tags(rng, n, alphabet) for n in lengths]
        # Predictions near and far from the gold: a report full of partial matches.
        y_pred = perturb(y_true, rng, rng.choice([0.1, 0.5, 1.0]), alphabet)
        n_sequences += len(lengths)
        ours = classification_report(y_true, y_pred, mode)
        if len(ours) == 3:  # no entity on either side: seqeval averages to NaN, lit_ner to 0
            continue
        reference = seqeval_report(y_true, y_pred, mode)
        assert ours.keys() == reference.keys()
        for name, row in ours.items():
            assert row == pytest.approx(reference[name], abs=1e-9), (name, y_true, y_pred)


def test_strict_mode_ignores_a_stray_i_and_refuses_non_iob2_tags():
    tags = ["I-person", "I-person", "O", "B-group", "I-group", "I-location", "B-product", "B-product"]
    assert get_entities_strict(tags) == [("group", 3, 4), ("product", 6, 6), ("product", 7, 7)]
    with pytest.raises(ValueError, match="not an IOB2 tag"):
        get_entities_strict(["S-person"])


def test_report_micro_average_is_ner_scores_in_either_mode():
    rng = random.Random(8)
    y_true = [random_tags(rng, rng.randint(1, 9), WNUT17_LABELS) for _ in range(50)]
    y_pred = perturb(y_true, rng, 0.3, WNUT17_LABELS)
    for mode in ("default", "strict"):
        micro = classification_report(y_true, y_pred, mode)["micro avg"]
        scores = ner_scores(y_true, y_pred, mode)
        assert {name: micro[name] for name in ("precision", "recall", "f1")} == {
            name: scores[name] for name in ("precision", "recall", "f1")
        }


def test_scores_without_any_entity_are_zero_not_nan():
    assert ner_scores([["O", "O"]], [["O", "O"]]) == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "accuracy": 1.0,
    }


def test_scores_refuse_sequences_of_different_lengths():
    with pytest.raises(ValueError):
        ner_scores([["O", "O"]], [["O"]])


def perturb(sentences, rng, rate, alphabet):
    return [
        [rng.choice(alphabet) if rng.random() < rate else tag for tag in sentence] for sentence in sentences
    ]


def test_scores_equal_seqevals_on_wnut17_gold_against_perturbed_predictions(wnut17_dir):
    rng = random.Random(2)
    for name in ("emerging.dev.conll", "emerging.test.annotated"):
        gold = read_conll(wnut17_dir / name)["tags"]
        for rate in (0.0, 0.05, 0.3, 1.0):
            predictions = perturb(gold, rng, rate, WNUT17_LABELS)
            assert_scores_equal(ner_scores(gold, predictions), seqeval_scores(gold, predictions))


def to_padded_batches(sentences, batch_size, rng):
    """Label-id tensors as the model sees them: -100 at specials and continuation positions."""
    index = {tag: i for i, tag in enumerate(WNUT17_LABELS)}
    for start in range(0, len(sentences), batch_size):
        chunk = sentences[start : start + batch_size]
        width = 2 * max(len(s) for s in chunk) + 2
        batch = torch.full((len(chunk), width), IGNORE_INDEX)
        for row, sentence in enumerate(chunk):
            position = 1  # after [CLS]
            for tag in sentence:
                batch[row, position] = index[tag]
                position += rng.choice([1, 2])  # a word of one or two subwords
        yield batch


def test_metric_over_masked_batches_equals_seqeval_on_the_words():
    rng = random.Random(3)
    y_true = [random_tags(rng, rng.randint(1, 9), WNUT17_LABELS) for _ in range(40)]
    y_pred = perturb(y_true, rng, 0.3, WNUT17_LABELS)
    metric = NERMetrics(WNUT17_LABELS)
    # The same seed lays gold and predictions out over the same subword positions.
    gold_batches = list(to_padded_batches(y_true, 16, random.Random(4)))
    pred_batches = list(to_padded_batches(y_pred, 16, random.Random(4)))
    for gold, pred in zip(gold_batches, pred_batches):
        # Predictions at ignored positions are arbitrary and must not count.
        noise = torch.randint(0, len(WNUT17_LABELS), pred.shape)
        metric.update(torch.where(gold == IGNORE_INDEX, noise, pred), gold)
    scores = metric.compute()
    report = scores.pop("report")
    sentences = scores.pop("sentences")
    assert scores.pop("surface") is None  # no words given
    assert_scores_equal(scores, seqeval_scores(y_true, y_pred))
    assert report["micro avg"]["f1"] == scores["f1"]
    assert report == classification_report(y_true, y_pred)
    # The scored sentences come back as tags, in order (no ids given: all of them, as fed).
    assert sentences == {"ids": [-1] * len(y_true), "y_true": y_true, "y_pred": y_pred}


def test_metric_reset_forgets_earlier_sentences():
    metric = NERMetrics(WNUT17_LABELS)
    gold = torch.tensor([[IGNORE_INDEX, 9, 10, IGNORE_INDEX]])
    metric.update(torch.tensor([[0, 0, 0, 0]]), gold)
    assert metric.compute()["f1"] == 0.0
    metric.reset()
    metric.update(gold.clamp(min=0), gold)
    scores = metric.compute()
    assert scores.pop("report")["person"]["support"] == 1
    assert scores.pop("sentences")["y_true"] == [["B-person", "I-person"]]
    assert scores.pop("surface") is None
    assert scores == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "accuracy": 1.0}


def test_with_the_splits_words_the_metric_gives_wnut17s_surface_scores_too():
    words = [["see", "Paris", "now"], ["Paris", "!"]]
    metric = NERMetrics(WNUT17_LABELS)
    metric.words = words
    gold = torch.tensor([[0, 7, 0], [7, 0, IGNORE_INDEX]])
    metric.update(torch.tensor([[0, 7, 0], [0, 0, 0]]), gold, torch.tensor([0, 1]))
    scores = metric.compute()
    assert scores["sentences"]["words"] == words
    assert scores["surface"] == surface_scores(
        words, scores["sentences"]["y_true"], scores["sentences"]["y_pred"]
    )
    # One unique surface form, "paris", found: every measure 1 (two mentions, one found).
    assert scores["surface"]["overall"]["f1"] == 1.0


def test_metric_without_updates_computes_zeros():
    metric = NERMetrics(WNUT17_LABELS)
    with pytest.warns(UserWarning, match="compute"):  # torchmetrics warns about compute before update
        assert metric.compute()["f1"] == 0.0


def _ddp_worker(rank, world_size, init_file, y_true, y_pred, results):
    from torch.utils.data import DistributedSampler

    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    # Lightning's sampler: every process gets as many sentences, repeating some to get there.
    shard = list(DistributedSampler(range(len(y_true)), num_replicas=world_size, rank=rank, shuffle=False))
    metric = NERMetrics(WNUT17_LABELS)
    for start in range(0, len(shard), 4):
        ids = shard[start : start + 4]
        # The same seed lays gold and predictions out over the same subword positions.
        (gold,) = to_padded_batches([y_true[i] for i in ids], 4, random.Random(start))
        (pred,) = to_padded_batches([y_pred[i] for i in ids], 4, random.Random(start))
        metric.update(pred, gold, torch.tensor(ids))
    scores = metric.compute()
    results[f"sentences{rank}"] = scores.pop("sentences")
    results[rank] = {name: value for name, value in scores.items() if name not in ("report", "surface")}
    results[f"shard{rank}"] = shard
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_metric_scores_each_sentence_once_under_ddp_though_the_sampler_repeats_some(tmp_path):
    rng = random.Random(5)
    y_true = [random_tags(rng, rng.randint(1, 9), WNUT17_LABELS) for _ in range(31)]
    y_pred = perturb(y_true, rng, 0.3, WNUT17_LABELS)
    y_pred[0] = ["O"] * len(
        y_true[0]
    )  # the sentence the sampler repeats: wrong, so a double count would show
    results = torch.multiprocessing.Manager().dict()
    torch.multiprocessing.spawn(_ddp_worker, args=(2, tmp_path / "init", y_true, y_pred, results), nprocs=2)
    assert len(results["shard0"]) + len(results["shard1"]) == 32  # one of 31 sentences seen twice
    reference = seqeval_scores(y_true, y_pred)
    for rank in (0, 1):
        assert_scores_equal(results[rank], reference)
        # Every rank ends with every sentence, once, in id order: what a predictions file needs.
        assert results[f"sentences{rank}"] == {"ids": list(range(31)), "y_true": y_true, "y_pred": y_pred}


def test_metric_without_sentence_ids_counts_every_copy():
    gold = torch.tensor([[IGNORE_INDEX, 9, 10, 0]])
    metric = NERMetrics(WNUT17_LABELS)
    metric.update(torch.zeros_like(gold), gold)
    metric.update(gold.clamp(min=0), gold)
    assert metric.compute()["recall"] == 0.5
    with_ids = NERMetrics(WNUT17_LABELS)
    with_ids.update(torch.zeros_like(gold), gold, torch.tensor([7]))
    with_ids.update(gold.clamp(min=0), gold, torch.tensor([7]))  # the same sentence again
    assert with_ids.compute()["recall"] == 0.0  # the first copy is the one scored


@pytest.mark.parametrize("mode", ["default", "strict"])
def test_surface_scores_equal_entity_scores_when_every_entity_has_its_own_words(mode):
    # With no surface form repeated, the sets of forms are the sets of entities.
    rng = random.Random(7)
    bio = [tag for tag in WNUT17_LABELS]
    for _ in range(200):
        y_true = [random_tags(rng, rng.randint(1, 8), bio) for _ in range(rng.randint(1, 6))]
        y_pred = perturb(y_true, rng, 0.4, bio)
        words = [[f"w{n}.{i}" for i in range(len(s))] for n, s in enumerate(y_true)]
        surface = surface_scores(words, y_true, y_pred, mode)
        report = classification_report(y_true, y_pred, mode)
        for name in ("precision", "recall", "f1"):
            assert surface["overall"][name] == pytest.approx(report["micro avg"][name], abs=1e-12)
        for type_, row in surface["per_type"].items():
            assert row["support"] == report[type_]["support"]
            assert row["f1"] == pytest.approx(report[type_]["f1"], abs=1e-12)


def test_a_surface_form_counts_once_however_often_it_recurs():
    words = [["Paris"], ["Paris"], ["Paris"], ["Lyon"]]
    gold = [["B-location"]] * 3 + [["B-location"]]
    # Found once out of three mentions, Lyon missed: half the forms found, by one right guess.
    pred = [["B-location"], ["O"], ["O"], ["O"]]
    surface = surface_scores(words, gold, pred)["overall"]
    assert surface == {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    assert ner_scores(gold, pred)["recall"] == 0.25
    # A form is right only where a prediction matches a gold entity: a predicted form that exists
    # in gold but never at the predicted place is wrong.
    words = [["Lyon"], ["x"], ["x"], ["Lyon"]]
    gold = [["B-location"], ["O"], ["O"], ["O"]]
    misplaced = [["O"], ["O"], ["O"], ["B-location"]]
    assert surface_scores(words, gold, misplaced)["overall"]["precision"] == 0.0


def test_entity_confusion_diagonal_rows_and_columns_add_up_to_the_report():
    rng = random.Random(8)
    y_true = [random_tags(rng, rng.randint(1, 9), WNUT17_LABELS) for _ in range(300)]
    y_pred = perturb(y_true, rng, 0.3, WNUT17_LABELS)
    types, matrix = entity_confusion(y_true, y_pred)
    report = classification_report(y_true, y_pred)
    assert types == [name for name in report if not name.endswith(" avg")]
    n_predicted = {t: sum(1 for s in y_pred for e in get_entities(s) if e[0] == t) for t in types}
    for i, type_ in enumerate(types):
        assert sum(matrix[i]) == report[type_]["support"]  # every gold entity once: paired or missed
        true_positives = round(report[type_]["recall"] * report[type_]["support"])
        assert matrix[i][i] == true_positives
        assert sum(row[i] for row in matrix) == n_predicted[type_]  # every prediction once
    assert matrix[-1][-1] == 0
