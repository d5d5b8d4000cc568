"""Knowledge distillation's teacher: a finished model's word-level label distributions over the
training sentences, the soft labels a student learns from beside the gold ones (`model.teacher`).

The teacher is any model `lit_ner export` (or `fit`) wrote, whatever its tokenizer: a base-size
MPNet teaches a MiniLM although their vocabularies differ, because teacher and student meet at
the word, not at the subword. Each sentence's words are encoded with the teacher's own tokenizer,
in whole-word windows, and each word is read from the window that owns it at its first subword,
as the teacher was trained and tested (`portable.windows`, `portable.word_decoding`); its word
shapes are added when it has them. The distribution of a word follows the teacher's own
decoding: a CRF's marginal (the probability of the label at that word, every labelling of the
other words summed over, by forward-backward), valid-BIO decoding's marginal over its
log-probabilities under BIO's constraints, an argmax model's softmax. A temperature above 1
flattens them, dividing every score before normalising.

Sentences repeat from epoch to epoch (mention replacement redraws a sixth of them), so each
distinct sentence is run once and its distributions cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lit_ner.errors import LitNerError
from lit_ner.hub import load_token_classifier_model, load_tokenizer
from lit_ner.portable.windows import TokenWindower, default_stride
from lit_ner.portable.word_decoding import (
    best_context_scores,
    crf_scores,
    forward_backward,
    log_softmax,
    logsumexp,
    viterbi_constraints,
)
from lit_ner.portable.word_shapes import add_shape_scores, shape_scores
from lit_ner.portable.words import joined_words


class Teacher:
    """Word-level label distributions of a finished token-classification model.

    Args:
        name_or_path: an export folder (`runs/.../hf_model`), a `pkg://` model or a Hub id.
        label_names: the student's labels in id order; the teacher must have exactly these.
        temperature: every score is divided by it before normalising (1: the model's own).
        batch_size: windows per forward pass.
        trust_remote_code: run modelling code that a Hub model ships.
    """

    def __init__(
        self,
        name_or_path: str,
        label_names: Sequence[str],
        temperature: float = 1.0,
        batch_size: int = 32,
        trust_remote_code: bool = False,
    ) -> None:
        if temperature <= 0:
            raise LitNerError(f"model.distill_temperature must be > 0, not {temperature}")
        if str(name_or_path).endswith(".ckpt"):
            raise LitNerError(
                f"teacher '{name_or_path}': a checkpoint; give its export (`lit_ner export CKPT DIR`, or the "
                "hf_model/ folder its fit wrote)"
            )
        model = load_token_classifier_model(name_or_path, trust_remote_code)
        config = model.config
        names = [config.id2label[i] for i in range(config.num_labels)]
        if names != list(label_names):
            raise LitNerError(
                f"teacher '{name_or_path}' has the labels {names}, the student {list(label_names)}: "
                "distillation needs the same labels in the same order"
            )
        self.model = model.eval().requires_grad_(False)
        self.label_names = names
        self.temperature = temperature
        self.batch_size = batch_size
        tokenizer = load_tokenizer(name_or_path, trust_remote_code, mark_word_starts=False)
        self.windower = TokenWindower.from_tokenizer(tokenizer)
        self.stride = default_stride(config, self.windower.budget)  # training's, as the export records
        self.decoding = getattr(config, "lit_ner_decoding", None) or "argmax"
        try:
            self.shape_scores = shape_scores(config, len(names))
        except ValueError as error:
            raise LitNerError(f"teacher '{name_or_path}': word-shape features: {error}") from None
        # The chain a word-level teacher decodes with: a CRF's learned scores within valid BIO, or
        # valid BIO alone over log-probabilities; its marginals are then the distributions.
        self.chain = None
        if self.decoding in ("crf", "valid_bio"):
            try:
                start, transitions, end = viterbi_constraints(names, self.decoding, crf_scores(config))
            except ValueError as error:
                raise LitNerError(f"teacher '{name_or_path}': {error} (its config has none)") from None
            self.chain = (start, transitions, np.zeros_like(start) if end is None else end)
        self._cache: dict[tuple[str, ...], np.ndarray] = {}

    def to(self, device: torch.device | str) -> Teacher:
        self.model.to(device)
        return self

    def distributions(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Per sentence, `(words, labels)`: each word's label distribution (rows sum to 1)."""
        keys = [tuple(words) for words in sentences]
        new = list(dict.fromkeys(key for key in keys if key not in self._cache))
        if new:
            for key, distribution in zip(new, self._compute(new)):
                self._cache[key] = distribution
        return [self._cache[key] for key in keys]

    def _compute(self, sentences: list[tuple[str, ...]]) -> list[np.ndarray]:
        encoded = []
        for words in sentences:
            text, starts = joined_words(words)
            spans = [(start, start + len(word)) for start, word in zip(starts, words)]
            encoded.append((text, spans, self.windower.encode_words(text, spans, self.stride)))
        self._run([window for _, _, windows in encoded for window in windows])
        out = []
        for text, spans, windows in encoded:
            if self.shape_scores is not None:
                shaped = add_shape_scores(text, windows, self.shape_scores, words=spans)
                for window, logits in zip(windows, shaped):
                    window["logits"] = logits
            scores = best_context_scores(spans, windows, self.label_names, self.decoding)
            out.append(self._distribution(scores))
        return out

    def _distribution(self, scores: np.ndarray) -> np.ndarray:
        """A sentence's word distributions from its word scores (log-probabilities, or a CRF's
        emissions) at the temperature."""
        scores = scores.astype(np.float64) / self.temperature
        if self.chain is None:
            return np.exp(log_softmax(scores)).astype(np.float32)
        if len(scores) == 0:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        start, transitions, end = (np.asarray(s, dtype=np.float64) / self.temperature for s in self.chain)
        alpha, beta = forward_backward(scores, transitions, start, end)
        log_z = logsumexp(alpha[-1] + end)
        return np.exp(alpha + beta - log_z).astype(np.float32)

    @torch.inference_mode()
    def _run(self, windows: list[dict[str, Any]]) -> None:
        """Sets each window's `logits`, running them longest first in padded batches, in fp32
        whatever the student's autocast (the distributions must not depend on the student)."""
        device = next(self.model.parameters()).device
        order = sorted(windows, key=lambda window: -len(window["input_ids"]))
        for first in range(0, len(order), self.batch_size):
            batch = order[first : first + self.batch_size]
            inputs = {k: torch.from_numpy(v).to(device) for k, v in self.windower.batch(batch).items()}
            with torch.autocast(device.type, enabled=False):
                logits = self.model(**inputs).logits.float().cpu().numpy()
            for row, window in enumerate(batch):
                window["logits"] = logits[row, : len(window["input_ids"])]
