"""Word-level decoding of a text's model outputs, in numpy: how lit_ner reads entities from a model
trained with `--model.decoding valid_bio` or `--model.head crf`.

This file travels inside such a model's export (`lit_ner export`), beside `lit_ner_pipeline.py`,
so that `transformers.pipeline(..., trust_remote_code=True)` decodes exactly as `lit_ner tag`
does on a machine without lit_ner. So it imports nothing but numpy, the standard library and the
modules beside it, nothing of lit_ner. It is the same code that `lit_ner.Tagger` runs, on either
backend.

The words of a text are those `words.text_words` finds (raw text split as NER corpora are
tokenized, or a tokenized text's whitespace-separated pieces); each is scored at its
first subword, as lit_ner trains, from the window that owns it (windows of whole words, as
training cuts them) or, for token windows, the one where that subword has the most context on
both sides; Viterbi then runs over the whole text's words at once, within valid BIO (an `I-X`
only after `B-X` or `I-X`) and, for a CRF, with its learned start, transition and end scores.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np

from .spans import get_entities
from .words import WordSplit, text_words, window_words

# How word labels are read from a model's scores: the classifier's best label per word, the best
# valid BIO sequence (Viterbi), or the best sequence under a trained CRF's scores.
Decoding = Literal["argmax", "valid_bio", "crf"]
DECODINGS: tuple[str, ...] = get_args(Decoding)

# A finite "impossible" (as lit_ner.model.crf's): -inf would turn 0 * -inf into NaN.
IMPOSSIBLE = -1.0e4


def bio_constraints(label_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """`(start, transitions)` penalties for valid BIO: `IMPOSSIBLE` where label `j` may not open a
    text (`I-X`) or may not follow label `i` (`I-X` after anything but `B-X`/`I-X`), else 0."""
    start, transitions = _bio_constraints(tuple(label_names))
    return start.copy(), transitions.copy()


@functools.lru_cache(maxsize=16)
def _bio_constraints(label_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    # Built once per label set: decoding asks for them for every text.
    n = len(label_names)
    start = np.zeros(n, dtype=np.float32)
    transitions = np.zeros((n, n), dtype=np.float32)
    for j, label in enumerate(label_names):
        if label.startswith("I-"):
            start[j] = IMPOSSIBLE
            for i, previous in enumerate(label_names):
                if previous not in (f"B-{label[2:]}", f"I-{label[2:]}"):
                    transitions[i, j] = IMPOSSIBLE
    return start, transitions


def viterbi(
    scores: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray | None = None
) -> list[int]:
    """The label ids that maximise `start[y_0] + sum_t scores[t, y_t] + sum_t transitions[y_{t-1},
    y_t] + end[y_last]` over a `(words, labels)` score matrix."""
    if len(scores) == 0:
        return []
    score = scores[0] + start
    backpointers = []
    for t in range(1, len(scores)):
        total = score[:, None] + transitions  # (previous label, next label)
        backpointers.append(total.argmax(axis=0))
        score = total.max(axis=0) + scores[t]
    if end is not None:
        score = score + end
    label = int(score.argmax())
    path = [label]
    for previous in reversed(backpointers):
        label = int(previous[label])
        path.append(label)
    return path[::-1]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def decode_words(
    text: str,
    windows: Sequence[dict[str, Any]],
    label_names: Sequence[str],
    decoding: str,
    crf: dict[str, Any] | None = None,
    split: WordSplit = "punctuation",
) -> list[dict]:
    """The entities of one text, as the token-classification pipeline's dicts: `entity_group`,
    `score` (see `entity_scores`), `word` (the text's own characters), `start`, `end` (character
    offsets; whole words).

    Args:
        text: the text.
        windows: its windows in order, each with `offsets` (`(tokens, 2)` character offsets),
            `special` (`(tokens,)`, 1 on special and padding tokens) and `logits`
            (`(tokens, labels)`).
        label_names: the labels in id order.
        decoding: `"valid_bio"` (Viterbi over log-probabilities, BIO enforced) or `"crf"`
            (Viterbi over the emissions with the CRF's scores).
        crf: for `"crf"`, the CRF's `start`, `transitions` and `end` scores.
        split: how the text is split into words (`words.WORD_SPLITS`): `"punctuation"` for raw
            text, `"whitespace"` for text already tokenized.
    """
    words = text_words(text, split)
    scores = best_context_scores(words, windows, label_names, decoding)
    start, transitions, end = viterbi_constraints(label_names, decoding, crf)
    labels = viterbi(scores, transitions, start, end)
    tags = [label_names[label] for label in labels]
    found = get_entities(tags)
    confidence = entity_scores(scores, labels, found, label_names, decoding, (start, transitions, end))
    return [
        {
            "entity_group": type_,
            "score": score,
            "word": text[words[first][0] : words[last][1]],
            "start": words[first][0],
            "end": words[last][1],
        }
        for (type_, first, last), score in zip(found, confidence)
    ]


def entity_scores(
    scores: np.ndarray,
    labels: Sequence[int],
    entities: Sequence[tuple[str, int, int]],
    label_names: Sequence[str],
    decoding: str,
    crf: tuple[np.ndarray, np.ndarray, np.ndarray | None],
) -> list[float]:
    """How sure the model is of each entity (`(type, first word, last word)`) of a decoded
    sentence, from its words' `scores` `(words, labels)` and decoded `labels`:

    - `"crf"`: the entity's probability under the CRF (`crf`: its `(start, transitions, end)`,
      constraints included): that its words carry exactly these labels and the entity ends
      there, the next word not continuing it, summed over every labelling of the other words
      (forward-backward). A confident path gets a score near 1, an uncertain entity a low one.
    - otherwise: the mean probability of its words' decoded labels (the classifier's softmax at
      each word's first subword), as the pipeline scores an entity.
    """
    if not entities:
        return []
    if decoding != "crf":
        probabilities = np.exp(log_softmax(scores))
        return [
            float(np.mean([probabilities[i, labels[i]] for i in range(a, b + 1)])) for _, a, b in entities
        ]
    start, transitions, end = crf
    end = np.zeros_like(start) if end is None else end
    alpha, beta = forward_backward(scores, transitions, start, end)
    log_z = logsumexp(alpha[-1] + end)
    continues = [np.asarray([name == f"I-{type_}" for name in label_names]) for type_, _, _ in entities]
    out = []
    for (_, first, last), continuing in zip(entities, continues):
        path = alpha[first, labels[first]]
        for t in range(first + 1, last + 1):
            path += transitions[labels[t - 1], labels[t]] + scores[t, labels[t]]
        if last == len(scores) - 1:
            path += end[labels[last]]
        else:  # the next word takes any label that does not continue the entity
            following = transitions[labels[last]] + scores[last + 1] + beta[last + 1]
            path += logsumexp(following[~continuing])
        out.append(float(np.exp(min(path - log_z, 0.0))))
    return out


def logsumexp(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    top = np.max(values, axis=axis, keepdims=True)
    out = top + np.log(np.exp(values - top).sum(axis=axis, keepdims=True))
    return out.squeeze() if axis is None else np.squeeze(out, axis=axis)


def forward_backward(
    scores: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A linear-chain CRF's log forward and backward scores, `(words, labels)` each: `alpha[t, y]`
    sums the paths of words `0..t` that end in `y` (its emission included), `beta[t, y]` those of
    words `t+1..` that follow `y` (with the end scores)."""
    n = len(scores)
    alpha = np.empty_like(scores, dtype=np.float64)
    beta = np.empty_like(scores, dtype=np.float64)
    alpha[0] = start + scores[0]
    for t in range(1, n):
        alpha[t] = logsumexp(alpha[t - 1][:, None] + transitions, axis=0) + scores[t]
    beta[n - 1] = end
    for t in range(n - 2, -1, -1):
        beta[t] = logsumexp(transitions + (scores[t + 1] + beta[t + 1])[None, :], axis=1)
    return alpha, beta


def best_context_scores(
    words: Sequence[tuple[int, int]],
    windows: Sequence[dict[str, Any]],
    label_names: Sequence[str],
    decoding: str,
) -> np.ndarray:
    """`(words, labels)`: each word's scores at its first subword, from the window where that
    subword has the most context on both sides (log-probabilities, or a CRF's raw emissions).
    Windows of words (with `owned`, `windows.TokenWindower.encode_words`) are read as training
    reads them: each word from the one window that owns it, at its first position there."""
    positions = [window_words(words, window) for window in windows]
    firsts: list[list[tuple[int, int]]] = []  # per window: (position, word) of each word's first subword
    if all("owned" in window for window in windows):
        for window, words_at in zip(windows, positions):
            owned = np.asarray(window["owned"]).tolist()
            firsts.append(
                [
                    (p, word)
                    for p, word in enumerate(words_at)
                    if word >= 0 and owned[p] and (p == 0 or words_at[p - 1] != word)
                ]
            )
    else:
        # A word's first subword is its token that starts first (a window may begin mid-word,
        # and characters the tokenizer drops may open the word).
        starts = [np.asarray(w["offsets"]).reshape(-1, 2)[:, 0].tolist() for w in windows]
        first_char: dict[int, int] = {}
        for words_at, window_starts in zip(positions, starts):
            for word, start in zip(words_at, window_starts):
                if word >= 0:
                    first_char[word] = min(start, first_char.get(word, start))
        firsts = [
            [
                (p, word)
                for p, (word, start) in enumerate(zip(words_at, window_starts))
                if word >= 0 and start == first_char[word]
            ]
            for words_at, window_starts in zip(positions, starts)
        ]
    scores = np.full((len(words), len(label_names)), IMPOSSIBLE, dtype=np.float32)
    if "O" in label_names:  # a word no subword reached (zero-width characters) is O
        scores[:, list(label_names).index("O")] = 0.0
    context = [-1] * len(words)
    for window, window_firsts in zip(windows, firsts):
        logits = np.asarray(window["logits"], dtype=np.float32)
        token_scores = logits if decoding == "crf" else log_softmax(logits)
        for rank, (position, word) in enumerate(window_firsts):
            margin = min(rank, len(window_firsts) - 1 - rank)  # context on both sides in this window
            if margin > context[word]:
                context[word], scores[word] = margin, token_scores[position]
    return scores


def viterbi_constraints(
    label_names: Sequence[str], decoding: str, crf: dict[str, Any] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Viterbi's `(start, transitions, end)`: valid BIO's penalties, plus for `"crf"` the CRF's
    learned scores (`end` is None without a CRF)."""
    start, transitions = bio_constraints(label_names)
    end = None
    if decoding == "crf":  # the CRF's learned scores, within the same constraints
        if crf is None:
            raise ValueError("decoding 'crf' needs the CRF's start, transitions and end scores")
        start = start + np.asarray(crf["start"], dtype=np.float32)
        transitions = transitions + np.asarray(crf["transitions"], dtype=np.float32)
        end = np.asarray(crf["end"], dtype=np.float32)
    return start, transitions, end


def write_decoding(config: Any, decoding: str, crf: dict[str, Any] | None = None) -> None:
    """Records in a transformers config how lit_ner decodes the model (what `crf_scores` and the
    `Tagger` read back): `lit_ner_decoding` (`argmax`, `valid_bio`, or `crf` when `crf` holds a
    CRF's `start`, `transitions` and `end` scores, as nested lists) and the CRF's scores as
    `crf_start`, `crf_transitions`, `crf_end`."""
    config.lit_ner_decoding = "crf" if crf else decoding
    if crf:
        for name in ("start", "transitions", "end"):
            setattr(config, f"crf_{name}", crf[name])


def crf_scores(config: Any) -> dict[str, Any] | None:
    """A CRF's `start`, `transitions` and `end` from a model config (an object or a dict) that
    lit_ner's export wrote, or None."""
    get = config.get if isinstance(config, dict) else lambda key: getattr(config, key, None)
    if get("crf_transitions") is None:
        return None
    names = ("start", "transitions", "end")
    return {name: np.asarray(get(f"crf_{name}"), dtype=np.float32) for name in names}
