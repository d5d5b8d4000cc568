"""`NERMetrics`: seqeval's entity scores as a torchmetrics `Metric`, for validation and test.

A thin layer over the pure functions of `lit_ner.scoring`: its state is label-id tensors, so that
DDP processes can gather them before the tag strings are made in `compute()`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypedDict

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from lit_ner.scoring import MODES, join_windows, scores_and_report, surface_scores

# The stages a model is scored in, and the split each scores.
STAGE_SPLITS = {"val": "validation", "test": "test"}


class StageResults(TypedDict):
    """A stage's results (`TokenClassifier.reports[stage]`), what the callbacks print, write
    (`ReportWriter`) and log (`WandbReports`)."""

    scores: dict[str, float]  # micro precision/recall/F1, accuracy (and surface_* with words)
    report: dict[str, dict[str, float]]  # per type, and the averages (`scoring.classification_report`)
    surface: dict[str, Any] | None  # WNUT-17's surface-form scores, when the words are known
    sentences: dict[str, list]  # "ids", "y_true", "y_pred" and, when known, "words"


class NERMetrics(Metric):
    """seqeval entity precision/recall/F1 and token accuracy over label-id tensors.

    `update` takes predicted and gold label ids of shape `(batch, seq_len)`; positions whose
    gold id is `ignore_index` (special tokens, continuation subwords, padding) are not scored.
    The states are concatenated across processes under DDP, so `compute()` sees every sentence;
    given each sentence's index in its split (`sentence_ids`), it also scores each sentence once,
    however often a distributed sampler repeated it, and joins the windows of a long sentence
    (`word_offsets`) into one before scoring.

    A long sentence's windows are decoded one by one in `update`; with `decode` set (the model's
    decoder: `(scores (1, words, labels), mask) -> label ids`) and each window's word `scores`
    given, `compute()` decodes such a sentence again whole, its windows' word scores joined, so
    that an entity a window edge cuts is read as one, as tagging reads it.

    `compute()` returns the micro scores and accuracy, plus under `"report"` the per-type
    `classification_report`, under `"sentences"` the scored tag sequences and, when `words`
    holds the split's words (by sentence index; set before scoring), under `"surface"` WNUT-17's
    surface-form scores (else None).

    Args:
        label_names: tag strings in label-id order.
        mode: seqeval's `"default"` (lenient) or `"strict"` (IOB2) entity rules.
        ignore_index: gold id of positions to skip.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self, label_names: Sequence[str], mode: str = "default", ignore_index: int = -100, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.label_names = list(label_names)
        self.mode = mode
        self.ignore_index = ignore_index
        self.words: list[list[str]] | None = None
        self.decode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")
        self.add_state("lengths", default=[], dist_reduce_fx="cat")  # scored positions per sentence
        self.add_state("sentence_ids", default=[], dist_reduce_fx="cat")  # -1: unknown, never merged
        self.add_state("word_offsets", default=[], dist_reduce_fx="cat")  # where a window's words start
        self.add_state("windowed", default=[], dist_reduce_fx="cat")  # 1: a window of a long sentence
        self.add_state("window_scores", default=[], dist_reduce_fx="cat")  # their words' scores

    def update(
        self,
        preds: torch.Tensor,
        target: torch.Tensor,
        sentence_ids: torch.Tensor | None = None,
        word_offsets: torch.Tensor | None = None,
        scores: torch.Tensor | None = None,
        n_windows: torch.Tensor | None = None,
    ) -> None:
        """Adds a batch of sentences, or of windows of sentences: `preds` and `target` are label
        ids `(batch, length)`; `sentence_ids` each row's sentence index (to count a repeated
        sentence once); `word_offsets` where in its sentence each row's words start (to join the
        windows of a long sentence); `scores` `(batch, length, labels)` the word scores `preds`
        were decoded from and `n_windows` each row's sentence's number of windows (to decode a
        long sentence again whole in `compute`)."""
        mask = target != self.ignore_index  # (B, T)
        self.preds.append(preds[mask])
        self.target.append(target[mask])
        self.lengths.append(mask.sum(dim=1))
        if sentence_ids is None:
            sentence_ids = torch.full((target.size(0),), -1, device=target.device)
        if word_offsets is None:
            word_offsets = torch.zeros_like(sentence_ids)
        self.sentence_ids.append(sentence_ids)
        self.word_offsets.append(word_offsets)
        windowed = torch.zeros_like(sentence_ids, dtype=torch.bool)
        if scores is not None and n_windows is not None:
            windowed = (n_windows > 1) & (sentence_ids >= 0)
            self.window_scores.append(scores[windowed][mask[windowed]].float())
        self.windowed.append(windowed.long())  # gathered across processes as integers

    def compute(self) -> dict:
        """Micro scores and accuracy, the per-type `"report"`, and under `"sentences"` the scored
        sentences themselves: `{"ids": [...], "y_true": [[tag]], "y_pred": [[tag]]}`, each once,
        known ids in increasing order (what a predictions file is written from)."""
        # Before a DDP sync the states are lists of per-batch tensors, after it one tensor each.
        ids: list[int] = []
        y_true: list[list[str]] = []
        y_pred: list[list[str]] = []
        if not (isinstance(self.lengths, list) and not self.lengths):
            lengths = dim_zero_cat(self.lengths).tolist()
            names = self.label_names
            rows = list(dim_zero_cat(self.preds).split(lengths))
            self._decode_whole(rows, lengths)
            y_pred = [[names[i] for i in s.tolist()] for s in rows]
            y_true = [[names[i] for i in s.tolist()] for s in dim_zero_cat(self.target).split(lengths)]
            ids, y_true, y_pred = join_windows(
                dim_zero_cat(self.sentence_ids).tolist(),
                dim_zero_cat(self.word_offsets).tolist(),
                y_true,
                y_pred,
            )
        scores, report = scores_and_report(y_true, y_pred, self.mode)
        sentences: dict[str, list] = {"ids": ids, "y_true": y_true, "y_pred": y_pred}
        surface = None
        if self.words is not None and all(i >= 0 for i in ids):
            sentences["words"] = [self.words[i] for i in ids]
            surface = surface_scores(sentences["words"], y_true, y_pred, self.mode)
        return {**scores, "report": report, "surface": surface, "sentences": sentences}

    def _decode_whole(self, rows: list[torch.Tensor], lengths: list[int]) -> None:
        """Replaces, in `rows` (each row's predicted ids), those of every window of a long
        sentence by the sentence's whole decoding (`decode` over its windows' joined scores)."""
        # Before a DDP sync the states are lists of per-batch tensors, after it one tensor each.
        empty = isinstance(self.windowed, list) and not self.windowed
        windowed = [] if empty else dim_zero_cat(self.windowed).tolist()
        if self.decode is None or not any(windowed):
            return
        ids, offsets = dim_zero_cat(self.sentence_ids).tolist(), dim_zero_cat(self.word_offsets).tolist()
        row_scores = iter(dim_zero_cat(self.window_scores).split([n for n, w in zip(lengths, windowed) if w]))
        pieces: dict[int, dict[int, tuple[int, torch.Tensor]]] = {}
        for row, is_windowed in enumerate(windowed):
            if is_windowed:  # a repeated window (DDP's padding) is its first copy
                pieces.setdefault(ids[row], {}).setdefault(offsets[row], (row, next(row_scores)))
        for sentence in pieces.values():
            order = [sentence[offset] for offset in sorted(sentence)]
            joined = torch.cat([scores for _, scores in order])[None]
            labels = self.decode(
                joined, torch.ones(joined.shape[:2], dtype=torch.bool, device=joined.device)
            )[0]
            for row, part in zip([row for row, _ in order], labels.split([lengths[row] for row, _ in order])):
                rows[row] = part
