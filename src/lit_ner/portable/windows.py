"""Windows: how a text longer than the model takes is cut into pieces it does take. Two kinds, both
here so that their one difference is seen at once:

- whole-word windows (`word_windows`, `sentence_windows`): training, validation, test and
  `predict` cut a sentence of words so, and so does tagging with a word-level decoding
  (`TokenWindower.encode_words`), so that the model sees the same subwords in the same windows and
  tags exactly as the test scored. Consecutive windows share about `stride` subword positions;
  each word is *owned* by exactly one window (the one where it has more context), so every word
  is trained on and scored once and no label is split across windows.
- token windows (`TokenWindower.__call__`): the tokenizer's own overflow on the text itself,
  windows of subword tokens that share `stride` tokens, as the transformers pipeline cuts a text;
  a word may be cut by a window edge, and overlapping windows' entities are merged afterwards
  (`tagging.aggregation.merge_overlapping`). Tagging by argmax uses them, so that its entities
  are the pipeline's.

In both, `stride` sets the overlap between consecutive windows in subword positions: token windows
share exactly `stride` tokens; whole-word windows share about `min(stride, budget // 2)`
positions, rounded to whole words.

This file travels inside exports (beside `lit_ner_pipeline.py`): it imports numpy, the standard
library and, when a `TokenWindower` is made, `tokenizers`; nothing of lit_ner.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# config.json's record of the stride training cut long sentences with (`export.hf.record_windows`;
# training's max_length goes into the saved tokenizer's model_max_length), so that tagging cuts the
# same windows.
STRIDE_KEY = "lit_ner_stride"
DEFAULT_STRIDE = 128


def default_stride(config: Any, budget: int) -> int:
    """The stride tagging uses unless told: training's (recorded in the model's config), else
    128; at most half a window of `budget` text positions."""
    return min(int(getattr(config, STRIDE_KEY, None) or DEFAULT_STRIDE), budget // 2)


def word_windows(
    word_spans: Sequence[tuple[int, int]], budget: int, stride: int
) -> list[tuple[int, int, int, int]]:
    """Splits a sentence too long for the model into overlapping windows of whole words.

    (A fast tokenizer's `return_overflowing_tokens` windows subwords, cutting through words and
    scoring overlapping words twice; these windows own each word exactly once.)

    Args:
        word_spans: per word, its `[start, end)` subword positions (without special tokens); a
            word that tokenizes to nothing has `start == end`.
        budget: subword positions a window may hold (the model's maximum minus special tokens).
        stride: subword positions consecutive windows share, so that words near a window's edge
            still see context.

    Returns:
        Per window `(first, last, own_first, own_last)`: the words `[first, last)` it holds and
        the words `[own_first, own_last)` it is trained and scored on. The owned ranges cover
        every word exactly once; an overlap is shared at its middle, so each owned word keeps
        about `stride / 2` positions of context on either side. A single word longer than
        `budget` gets a window of its own, cut to its first `budget` subwords (its label sits on
        the first one).

    >>> word_windows([(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)], budget=3, stride=1)
    [(0, 3, 0, 2), (2, 5, 2, 5)]
    """
    n = len(word_spans)
    windows: list[list[int]] = []
    first = 0
    while True:
        last = first + 1
        while last < n and word_spans[last][1] - word_spans[first][0] <= budget:
            last += 1
        windows.append([first, last, first, last])
        if last == n:
            break
        # The next window starts at the first word of this one's last `stride` positions, later
        # than this one starts and early enough to reach past where this one ends.
        following = last
        while (
            following - 1 > first
            and word_spans[last - 1][1] - word_spans[following - 1][0] <= stride
            and word_spans[last][1] - word_spans[following - 1][0] <= budget
        ):
            following -= 1
        first = following
    for previous, window in zip(windows, windows[1:]):
        middle = (window[0] + previous[1]) // 2
        previous[3] = window[2] = middle
    return [tuple(window) for window in windows]  # type: ignore[misc]


def sentence_windows(
    word_ids: Sequence[int | None], n_words: int, max_length: int, stride: int
) -> list[tuple[list[int], int, int]]:
    """A sentence's windows, as training and word-level tagging cut it: per window `(positions,
    own_first, own_last)`, the positions of the sentence's encoding (its `word_ids`: the word of
    each position, None on special tokens) that the window holds and the words `[own_first,
    own_last)` it owns. The sentence itself when it fits in `max_length` positions, else its
    windows of whole words (`word_windows`), each with the sentence's special tokens around it
    and cut to `max_length`.

    >>> sentence_windows([None, 0, 1, 1, 2, None], 3, max_length=5, stride=1)
    [([0, 1, 2, 3, 5], 0, 2), ([0, 4, 5], 2, 3)]
    """
    every = list(range(len(word_ids)))
    content = [p for p in every if word_ids[p] is not None]
    if len(word_ids) <= max_length or not content:
        return [(every, 0, n_words)]
    # Specials (e.g. [CLS] ... [SEP]) surround the content: keep them around every window.
    prefix, suffix = every[: content[0]], every[content[-1] + 1 :]
    spans = word_subword_spans(word_ids, content, n_words)
    budget = max_length - len(prefix) - len(suffix)
    windows = []
    for first, last, own_first, own_last in word_windows(spans, budget, min(stride, budget // 2)):
        start = spans[first][0]
        end = min(spans[last - 1][1], start + budget)
        windows.append((prefix + every[content[0] + start : content[0] + end] + suffix, own_first, own_last))
    return windows


def word_subword_spans(
    word_ids: Sequence[int | None], content: Sequence[int], n_words: int
) -> list[tuple[int, int]]:
    """Per word, its `[start, end)` subword positions counted from the first content position; a
    word the tokenizer turned into nothing gets an empty span where the previous word ends."""
    spans, position, by_word = [], 0, {}
    for p in content:
        by_word.setdefault(word_ids[p], [p - content[0], 0])[1] = p - content[0] + 1
    for w in range(n_words):
        start, position = by_word.get(w, (position, position))
        spans.append((start, position))
    return spans


class TokenWindower:
    """A text as the model's windows: the tokenizer's encoding, cut at the model's maximum length
    into windows that share `stride` tokens (as the pipeline's `stride` option does), with the
    character offsets and the special-token mask of each.

    Args:
        tokenizer: a `tokenizers.Tokenizer` (a fast tokenizer's `backend_tokenizer`); a copy is
            configured, the original is left as it is.
        model_max_length: the positions of a window, special tokens included.
        unk_token_id, pad_token_id: the tokenizer's unknown and padding tokens.
        input_names: the model inputs to build (`input_ids`, `attention_mask` and, for BERT,
            `token_type_ids`).
    """

    def __init__(
        self,
        tokenizer: Any,
        model_max_length: int,
        unk_token_id: int | None,
        pad_token_id: int | None,
        input_names: list[str],
    ) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self.tokenizer.no_padding()
        self.model_max_length = model_max_length
        self.unk_token_id = unk_token_id
        self.pad_token_id = pad_token_id or 0
        self.input_names = input_names
        self.stride = 0
        self.num_special_tokens = self.tokenizer.post_processor.num_special_tokens_to_add(False)

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> TokenWindower:
        """From a transformers fast tokenizer."""
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("tagging needs a fast tokenizer (for character offsets)")
        return cls(
            tokenizer.backend_tokenizer,
            tokenizer.model_max_length,
            tokenizer.unk_token_id,
            tokenizer.pad_token_id,
            list(tokenizer.model_input_names),
        )

    @classmethod
    def from_directory(cls, directory: str | Path, input_names: list[str]) -> TokenWindower:
        """From a model folder's `tokenizer.json` and `tokenizer_config.json`, without transformers."""
        from tokenizers import Tokenizer

        directory = Path(directory)
        if not (directory / "tokenizer.json").is_file():
            raise ValueError(f"{directory}: no tokenizer.json (a fast tokenizer is needed)")
        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        config_file = directory / "tokenizer_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}

        def token_id(name: str) -> int | None:
            token = config.get(name)
            token = token.get("content") if isinstance(token, dict) else token
            return tokenizer.token_to_id(token) if token else None

        return cls(
            tokenizer, int(config.get("model_max_length", 512)), token_id("unk_token"), token_id("pad_token"),
            input_names,
        )  # fmt: skip

    @functools.cached_property
    def word_tokenizer(self) -> Any:
        """The copy that `encode_words` encodes with, made on first use (an argmax tagger never
        needs it, and a copy of a large vocabulary is not free): it never truncates (words are
        cut into windows here), and it marks every word as a word start, as training's tokenizer
        does (`hub.load_tokenizer`)."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(with_word_starts(self.tokenizer.to_str()))
        tokenizer.no_truncation()
        return tokenizer

    @property
    def budget(self) -> int:
        """The text tokens a window holds."""
        return self.model_max_length - self.num_special_tokens

    def set_stride(self, stride: int) -> None:
        if not 0 <= stride < self.budget:
            raise ValueError(f"stride {stride} must be below the {self.budget} text positions of a window")
        self.stride = stride
        self.tokenizer.enable_truncation(self.model_max_length, stride=stride)

    def __call__(self, text: str) -> list[dict[str, np.ndarray]]:
        """The windows of a text (none for an empty one), each with `input_ids`,
        `attention_mask`, `token_type_ids`, `offsets` and `special` (1 on special tokens)."""
        if not text:
            return []
        encoding = self.tokenizer.encode(text)
        return [
            {
                "input_ids": np.asarray(window.ids, dtype=np.int64),
                "attention_mask": np.asarray(window.attention_mask, dtype=np.int64),
                "token_type_ids": np.asarray(window.type_ids, dtype=np.int64),
                "offsets": np.asarray(window.offsets, dtype=np.int64).reshape(-1, 2),
                "special": np.asarray(window.special_tokens_mask, dtype=np.int64),
            }
            for window in [encoding, *encoding.overflowing]
        ]

    def encode_words(
        self, text: str, words: Sequence[tuple[int, int]], stride: int | None = None
    ) -> list[dict[str, np.ndarray]]:
        """The windows of a text's words (`words`: their `[start, end)` character spans), as
        training encodes and cuts a sentence of words: each word encoded on its own
        (`is_split_into_words`: a byte-level BPE or SentencePiece tokenizer marks each as a word
        start, as it does every word of a training sentence), a text longer than the model takes
        cut into windows of whole words (`sentence_windows`; `stride`: this windower's unless
        given, which lets callers on several threads share one windower).
        Besides `__call__`'s arrays (`offsets` into `text`), each window has `word` (per token,
        the index in `words` of its word, -1 on special tokens) and `owned` (1 on the tokens of
        the words the window is scored on: every word is owned by exactly one window)."""
        # A text without words is one window of special tokens (so that a batch of texts is
        # alike), which the decoding reads as no entities.
        encoding = self.word_tokenizer.encode([text[start:end] for start, end in words], is_pretokenized=True)
        word_ids = encoding.word_ids
        # A pre-split word's offsets count from the word's own start.
        offsets = [
            (0, 0) if word is None else (words[word][0] + start, words[word][0] + end)
            for word, (start, end) in zip(word_ids, encoding.offsets)
        ]
        whole = {
            "input_ids": np.asarray(encoding.ids, dtype=np.int64),
            "attention_mask": np.asarray(encoding.attention_mask, dtype=np.int64),
            "token_type_ids": np.asarray(encoding.type_ids, dtype=np.int64),
            "offsets": np.asarray(offsets, dtype=np.int64).reshape(-1, 2),
            "special": np.asarray(encoding.special_tokens_mask, dtype=np.int64),
            "word": np.asarray([-1 if word is None else word for word in word_ids], dtype=np.int64),
        }
        windows = []
        for positions, own_first, own_last in sentence_windows(
            word_ids, len(words), self.model_max_length, self.stride if stride is None else stride
        ):
            window = {name: values[positions] for name, values in whole.items()}
            window["owned"] = ((window["word"] >= own_first) & (window["word"] < own_last)).astype(np.int64)
            windows.append(window)
        return windows

    def batch(self, windows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The model inputs of windows, padded on the right to the longest."""
        width = max(len(window["input_ids"]) for window in windows)
        pad = {"input_ids": self.pad_token_id, "attention_mask": 0, "token_type_ids": 0}
        inputs = {
            name: np.full((len(windows), width), pad[name], dtype=np.int64) for name in self.input_names
        }
        for row, window in enumerate(windows):
            for name in self.input_names:
                inputs[name][row, : len(window[name])] = window[name]
        return inputs


def with_word_starts(tokenizer_json: str) -> str:
    """A tokenizer (its `tokenizer.json` text) that marks each pre-split word as a word start:
    a byte-level BPE pre-tokenizer with `add_prefix_space` on, as transformers sets it when
    training's tokenizer is loaded with `add_prefix_space=True`; anything else unchanged."""
    config = json.loads(tokenizer_json)
    pre_tokenizer = config.get("pre_tokenizer") or {}
    parts = (
        pre_tokenizer.get("pretokenizers", [pre_tokenizer])
        if pre_tokenizer.get("type") == "Sequence"
        else [pre_tokenizer]
    )
    byte_level = [
        part for part in parts if part.get("type") == "ByteLevel" and not part.get("add_prefix_space")
    ]
    for part in byte_level:
        part["add_prefix_space"] = True
    return json.dumps(config) if byte_level else tokenizer_json
