"""Windows: how a text longer than the model takes is cut into pieces it does take. Two kinds, for
two jobs, both here so that their one difference is seen at once:

- `word_windows` (training, validation, test and `predict`, over words with gold labels): windows
  of whole words, consecutive ones sharing about `stride` subword positions, each word *owned* by
  exactly one window (the one where it has more context), so every word is trained on and scored
  once and no label is split across windows.
- `TokenWindower` (tagging raw text, `Tagger`): the tokenizer's own overflow, windows of subword
  tokens that share `stride` tokens, as the transformers pipeline cuts a text; a word may be cut
  by a window edge, and overlapping windows' entities are merged afterwards
  (`tagging.aggregation.merge_overlapping`) or, for word-level decoding, each word is read from the
  window where it has the most context (`portable.word_decoding`). Raw text has no words known in
  advance, so tagging cannot plan whole-word windows without tokenizing twice; and its output must
  equal the pipeline's, which windows so.

In both, `stride` is the overlap between consecutive windows in subword positions.

Light to import: numpy, and `tokenizers` when a `TokenWindower` is made.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lit_ner.errors import LitNerError


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
            raise LitNerError("tagging needs a fast tokenizer (for character offsets)")
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
            raise LitNerError(f"{directory}: no tokenizer.json (a fast tokenizer is needed)")
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

    @property
    def budget(self) -> int:
        """The text tokens a window holds."""
        return self.model_max_length - self.num_special_tokens

    def set_stride(self, stride: int) -> None:
        if not 0 <= stride < self.budget:
            raise LitNerError(f"stride {stride} must be below the {self.budget} text positions of a window")
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
