"""A sentence longer than the model takes is trained and scored in windows: a window that starts
inside an entity is no sentence start, and an entity a window edge cuts is decoded whole."""

import torch

from lit_ner.model.crf import CRF, viterbi_decode
from lit_ner.model.metrics import NERMetrics

LABELS = ["O", "B-X", "I-X"]


def test_a_window_that_starts_inside_an_entity_gives_its_gold_path_a_possible_score():
    crf = CRF(len(LABELS), LABELS)
    emissions = torch.zeros(1, 3, 3)
    tags = torch.tensor([[2, 2, 0]])  # I-X I-X O: the entity began in the window before
    mask = torch.ones(1, 3, dtype=torch.bool)
    as_sentence = crf.neg_log_likelihood(emissions, tags, mask)
    as_window = crf.neg_log_likelihood(emissions, tags, mask, opens=torch.tensor([False]))
    assert as_sentence.item() > 1_000  # BIO's start constraint: I-X cannot open a sentence
    assert 0 < as_window.item() < 2  # -log p of one path among 3 x 3 x 3, less the invalid ones


def test_sentence_start_and_end_scores_count_only_on_windows_that_hold_the_sentences_edges():
    crf = CRF(len(LABELS), LABELS)
    emissions, tags, mask = (
        torch.randn(1, 4, 3),
        torch.tensor([[1, 2, 0, 0]]),
        torch.ones(1, 4, dtype=torch.bool),
    )
    inner = {"opens": torch.tensor([False]), "closes": torch.tensor([False])}
    before = crf.neg_log_likelihood(emissions, tags, mask, **inner)
    sentence_before = crf.neg_log_likelihood(emissions, tags, mask)
    with torch.no_grad():
        crf.start.copy_(torch.tensor([3.0, -2.0, 0.0]))
        crf.end.copy_(torch.tensor([-1.0, 4.0, 2.0]))
    assert crf.neg_log_likelihood(emissions, tags, mask, **inner).item() == before.item()
    assert crf.neg_log_likelihood(emissions, tags, mask).item() != sentence_before.item()


def two_windows(scores_a, scores_b):
    """One sentence of 5 words scored as two windows (words 0-2 and 3-4), gold `O O B-X I-X O`."""
    metrics = NERMetrics(LABELS)
    gold = torch.tensor([[0, 0, 1, -100], [2, 0, -100, -100]])
    scores = torch.full((2, 4, 3), -1e4)
    scores[0, :3], scores[1, :2] = torch.tensor(scores_a), torch.tensor(scores_b)
    mask = gold != -100
    start, transitions = CRF(3, LABELS).scores()[:2]

    def decode(word_scores, word_mask):
        return viterbi_decode(word_scores, word_mask, transitions, start)

    return metrics, gold, scores, mask, decode


def test_an_entity_a_window_edge_cuts_is_decoded_whole():
    # The second window alone cannot open with I-X, so on its own it reads the entity's second
    # word as an entity of its own; the sentence decoded whole reads one entity.
    scores_a = [[0.0, -5, -5], [0.0, -5, -5], [-5, 0.0, -5]]
    scores_b = [[-5, -1.0, 0.0], [0.0, -5, -5]]
    metrics, gold, scores, mask, decode = two_windows(scores_a, scores_b)
    update = dict(sentence_ids=torch.tensor([7, 7]), word_offsets=torch.tensor([0, 3]))
    per_window = decode(scores, mask)
    assert per_window[1, 0].item() == 1  # B-X: the cut entity's second word opens an entity
    metrics.update(per_window, gold, **update, scores=scores, n_windows=torch.tensor([2, 2]))
    alone = metrics.compute()
    assert alone["sentences"]["y_pred"] == [["O", "O", "B-X", "B-X", "O"]] and alone["f1"] == 0.0
    metrics.reset()
    metrics.decode = decode
    metrics.update(per_window, gold, **update, scores=scores, n_windows=torch.tensor([2, 2]))
    whole = metrics.compute()
    assert whole["sentences"]["y_pred"] == [["O", "O", "B-X", "I-X", "O"]] and whole["f1"] == 1.0
