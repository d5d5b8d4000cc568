"""A CRF model's entity score is the entity's probability under the CRF, in every tagging path."""

import itertools

import numpy as np
import pytest

from lit_ner.portable.spans import get_entities
from lit_ner.portable.word_decoding import entity_scores, viterbi, viterbi_constraints

LABELS = ["O", "B-X", "I-X", "B-Y", "I-Y"]


def brute_force(scores, start, transitions, end, entity_labels, first, last, continuing):
    """P(words first..last labelled `entity_labels`, word last+1 not `continuing`) by summing every
    labelling of the sentence."""
    n, k = scores.shape
    total = hit = 0.0
    for path in itertools.product(range(k), repeat=n):
        score = start[path[0]] + end[path[-1]] + sum(scores[t, y] for t, y in enumerate(path))
        score += sum(transitions[a, b] for a, b in zip(path, path[1:]))
        weight = np.exp(score)
        total += weight
        inside = list(path[first : last + 1]) == list(entity_labels)
        if inside and (last + 1 == n or path[last + 1] != continuing):
            hit += weight
    return hit / total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_crf_entitys_score_is_its_probability_under_the_crf(seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(0, 2, (5, len(LABELS))).astype(np.float32)
    scores[1, 1] += 4  # an entity to find: B-X I-X at words 1-2
    scores[2, 2] += 4
    learned = {
        "start": rng.normal(0, 1, len(LABELS)),
        "transitions": rng.normal(0, 1, (len(LABELS), len(LABELS))),
        "end": rng.normal(0, 1, len(LABELS)),
    }
    start, transitions, end = viterbi_constraints(LABELS, "crf", learned)
    labels = viterbi(scores, transitions, start, end)
    entities = get_entities([LABELS[y] for y in labels])
    assert entities
    found = entity_scores(scores, labels, entities, LABELS, "crf", (start, transitions, end))
    for (type_, first, last), score in zip(entities, found):
        expected = brute_force(
            scores, start, transitions, end, labels[first : last + 1], first, last, LABELS.index(f"I-{type_}")
        )
        assert score == pytest.approx(expected, rel=1e-4)
        assert 0 < score <= 1


def test_a_confident_crf_path_scores_near_one_where_the_emissions_softmax_does_not():
    # Emissions are a CRF's raw scores, not probabilities: their softmax can be low on a path the
    # CRF is sure of (here the transitions carry the I-X).
    scores = np.array([[3.0, 0, 0, 0, 0], [0, 2.0, 0, 0, 0], [0, 0, 0.5, 0.4, 0.4], [3.0, 0, 0, 0, 0]])
    learned = {"start": np.zeros(5), "transitions": np.zeros((5, 5)), "end": np.zeros(5)}
    learned["transitions"][1, 2] = 6.0
    start, transitions, end = viterbi_constraints(LABELS, "crf", learned)
    labels = viterbi(scores, transitions, start, end)
    entities = get_entities([LABELS[y] for y in labels])
    assert entities == [("X", 1, 2)]
    (crf_score,) = entity_scores(scores, labels, entities, LABELS, "crf", (start, transitions, end))
    (mean_softmax,) = entity_scores(scores, labels, entities, LABELS, "valid_bio", (start, transitions, None))
    assert crf_score > 0.6 and mean_softmax < 0.45
