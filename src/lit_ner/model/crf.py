"""From per-word label scores to a label sequence: greedy argmax, Viterbi under valid-BIO
constraints, and a linear-chain CRF.

Everything here works on word-level sequences, `(batch, words, labels)` scores with a
`(batch, words)` mask of the real words (a prefix of each row), which is where lit_ner trains its
labels: each word's first subword.

Valid BIO (IOB2): `I-X` may only follow `B-X` or `I-X`, and may not start a sentence. Argmax
decoding breaks this whenever the classifier's best label for a word is `I-X` after `O` or after
another type; seqeval's default mode then reads the stray `I-X` as an entity of its own, a false
positive. Viterbi over the log-probabilities with those transitions forbidden returns the most
probable sequence that is valid, with no learned weights: it only changes the words where argmax
broke the rules.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lit_ner.data.alignment import IGNORE_INDEX
from lit_ner.portable import word_decoding


def bio_constraints(label_names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """`(start, transitions)` penalties for valid BIO as tensors: `start[j]` is `IMPOSSIBLE` where
    label `j` may not open a sentence (`I-X`), `transitions[i, j]` where `j` may not follow `i`
    (`I-X` after anything but `B-X` or `I-X`), 0 elsewhere (`word_decoding.bio_constraints`, the
    one definition, shared with the numpy decoder that exports ship)."""
    start, transitions = word_decoding.bio_constraints(label_names)
    return torch.from_numpy(start), torch.from_numpy(transitions)


def viterbi_decode(
    scores: torch.Tensor,
    mask: torch.Tensor,
    transitions: torch.Tensor,
    start: torch.Tensor | None = None,
    end: torch.Tensor | None = None,
) -> torch.Tensor:
    """The best label sequence of each row, `(batch, words)`: the argmax over label sequences of
    `start[y_0] + sum_t scores[t, y_t] + sum_t transitions[y_{t-1}, y_t] + end[y_last]`, over
    each row's masked-in prefix (positions past it repeat the row's last label; ignore them).

    Args:
        scores: `(batch, words, labels)` per-word label scores (log-probabilities, or a CRF's
            emissions).
        mask: `(batch, words)` bool, True on each row's real words (a prefix).
        transitions: `(labels, labels)` score of moving from label `i` to label `j`.
        start, end: `(labels,)` scores of opening and closing a sentence with each label.
    """
    batch, length, n = scores.shape
    scores = scores.float()
    transitions = transitions.to(scores)
    if length == 0:
        return torch.zeros(batch, 0, dtype=torch.long, device=scores.device)
    score = scores[:, 0] + (start.to(scores) if start is not None else 0)
    keep = torch.arange(n, device=scores.device).expand(batch, n)
    backpointers = []
    for t in range(1, length):
        best, previous = (score.unsqueeze(2) + transitions).max(dim=1)  # (batch, labels)
        here = mask[:, t].unsqueeze(1)
        score = torch.where(here, best + scores[:, t], score)
        backpointers.append(torch.where(here, previous, keep))  # past a row's end: stay put
    if end is not None:
        score = score + end.to(scores)
    label = score.argmax(dim=1)
    path = [label]
    for previous in reversed(backpointers):
        label = previous.gather(1, label.unsqueeze(1)).squeeze(1)
        path.append(label)
    return torch.stack(path[::-1], dim=1)


class CRF(nn.Module):
    """A linear-chain conditional random field over word-level emissions: learned start, end and
    transition scores, trained by the sequence's negative log-likelihood (forward algorithm) and
    decoded by Viterbi. With `label_names`, transitions that break BIO are fixed at
    `IMPOSSIBLE`, so the CRF learns only among valid sequences and never decodes an invalid one.

    Args:
        num_labels: the number of labels.
        label_names: the labels in id order, to forbid invalid BIO transitions (None: allow all).
    """

    def __init__(self, num_labels: int, label_names: Sequence[str] | None = None) -> None:
        super().__init__()
        self.transitions = nn.Parameter(torch.zeros(num_labels, num_labels))
        self.start = nn.Parameter(torch.zeros(num_labels))
        self.end = nn.Parameter(torch.zeros(num_labels))
        start, transitions = bio_constraints(label_names) if label_names else (None, None)
        # Fixed, not learned, and not saved: rebuilt from the label names.
        self.register_buffer(
            "start_constraint", start if start is not None else torch.zeros(num_labels), persistent=False
        )
        self.register_buffer(
            "transition_constraint",
            transitions if transitions is not None else torch.zeros(num_labels, num_labels),
            persistent=False,
        )

    def scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`(start, transitions, end)` with the constraints applied."""
        return self.start + self.start_constraint, self.transitions + self.transition_constraint, self.end

    def neg_log_likelihood(
        self,
        emissions: torch.Tensor,
        tags: torch.Tensor,
        mask: torch.Tensor,
        opens: torch.Tensor | None = None,
        closes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean over the batch's words of `-log p(tags | emissions)` (per word, so that the loss
        is on the scale of token cross-entropy whatever the sentence lengths). Rows with no word
        count nothing.

        `opens` / `closes` (`(batch,)` bool, default all True) say whether a row's words open /
        close their sentence. A window of a long sentence that starts inside it has no start: its
        first word may be `I-X` (the entity began in the window before), so neither the learned
        start scores nor BIO's start constraint apply to it; one that stops inside it has no
        end scores."""
        emissions = emissions.float()
        start, transitions, end = self.scores()
        mask = mask.bool()
        tags = tags.masked_fill(~mask, 0)
        lengths = mask.sum(dim=1)
        rows = lengths > 0
        emissions, tags, mask, lengths = emissions[rows], tags[rows], mask[rows], lengths[rows]
        if emissions.shape[0] == 0:
            return emissions.sum() * 0.0
        # Per row: the sentence's start and end scores where the row has them, else none.
        start = sentence_edge(start, opens, rows)
        end = sentence_edge(end, closes, rows)
        # The gold sequence's score.
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (batch, words)
        gold = start.gather(1, tags[:, :1]).squeeze(1) + (emitted * mask).sum(dim=1)
        moves = transitions[tags[:, :-1], tags[:, 1:]]  # (batch, words - 1)
        gold = gold + (moves * mask[:, 1:]).sum(dim=1)
        gold = gold + end.gather(1, tags.gather(1, (lengths - 1).unsqueeze(1))).squeeze(1)
        # log Z by the forward algorithm.
        log_z = torch.logsumexp(forward_scores(emissions, mask, start, transitions)[-1] + end, dim=1)
        return (log_z - gold).sum() / lengths.sum()

    def log_marginals(
        self,
        emissions: torch.Tensor,
        mask: torch.Tensor,
        opens: torch.Tensor | None = None,
        closes: torch.Tensor | None = None,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """`(batch, words, labels)`: the log-probability that each word carries each label, every
        labelling of the other words summed over (forward-backward), with every score divided by
        `temperature`; differentiable, for distilling a teacher's word distributions into this
        CRF (`model.teacher`). `opens`/`closes` as in `neg_log_likelihood`; values at masked
        words are meaningless."""
        # fp32 at least (fp64 kept: a long sentence's forward scores grow into the thousands).
        emissions = emissions.to(torch.promote_types(emissions.dtype, torch.float32)) / temperature
        start, transitions, end = (scores.to(emissions.dtype) / temperature for scores in self.scores())
        mask = mask.bool()
        every = torch.ones(emissions.shape[0], dtype=torch.bool, device=emissions.device)
        start, end = sentence_edge(start, opens, every), sentence_edge(end, closes, every)
        alphas = forward_scores(emissions, mask, start, transitions)
        # beta[t]: the paths after word t, from the word after it; a row's last word is followed
        # by its end scores only.
        betas = [end]
        for t in range(emissions.shape[1] - 2, -1, -1):
            step = torch.logsumexp(transitions + (emissions[:, t + 1] + betas[-1]).unsqueeze(1), dim=2)
            betas.append(torch.where(mask[:, t + 1].unsqueeze(1), step, end))
        alpha, beta = torch.stack(alphas, dim=1), torch.stack(betas[::-1], dim=1)
        log_z = torch.logsumexp(alphas[-1] + end, dim=1)
        return alpha + beta - log_z[:, None, None]

    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The most probable label sequence of each row (Viterbi), `(batch, words)`."""
        start, transitions, end = self.scores()
        return viterbi_decode(emissions, mask.bool(), transitions, start, end)


def forward_scores(
    emissions: torch.Tensor, mask: torch.Tensor, start: torch.Tensor, transitions: torch.Tensor
) -> list[torch.Tensor]:
    """The forward algorithm's log scores, one `(batch, labels)` per word: the paths of words
    `0..t` that end in each label (a row's masked words carry its last real word's on)."""
    alphas = [start + emissions[:, 0]]
    for t in range(1, emissions.shape[1]):
        step = torch.logsumexp(alphas[-1].unsqueeze(2) + transitions, dim=1) + emissions[:, t]
        alphas.append(torch.where(mask[:, t].unsqueeze(1), step, alphas[-1]))
    return alphas


def sentence_edge(scores: torch.Tensor, present: torch.Tensor | None, rows: torch.Tensor) -> torch.Tensor:
    """`(rows, labels)`: a sentence edge's `scores` (start or end) on the rows (of those `rows`
    keeps) that have that edge (`present`, None: all), zeros on those that continue past it."""
    n = int(rows.sum())
    if present is None:
        return scores.expand(n, -1)
    return torch.where(present[rows].bool().unsqueeze(1), scores, torch.zeros_like(scores))


def labelled_positions(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The positions that carry a label (each word's first subword), packed to the left of each
    row: `(emissions (batch, words, labels), tags (batch, words), mask (batch, words))`."""
    labelled = labels != ignore_index
    # A stable sort puts each row's labelled positions first, in their order.
    order = torch.sort(labelled.int(), dim=1, descending=True, stable=True).indices
    width = max(int(labelled.sum(dim=1).max()), 1) if labels.numel() else 1
    order = order[:, :width]
    mask = labelled.gather(1, order)
    emissions = logits.float().gather(1, order.unsqueeze(2).expand(-1, -1, logits.shape[-1]))
    return emissions, labels.gather(1, order).clamp_min(0), mask
