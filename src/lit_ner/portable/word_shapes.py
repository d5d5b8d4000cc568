"""Word shapes: what an uncased encoder cannot see of a word (its casing, digits, `@`/`#`, URLs,
emoji), as a small id per word that `--model.word_features` turns into label scores.

An uncased tokenizer lowercases `Apple` and `apple` to the same subwords, yet capitalisation is one
of the strongest signals for WNUT-17's new and rare entities. Each word's shape is computed from
its original characters, before any tokenizer sees it; every subword position of the word gets
the word's shape id (0 on special and padding positions, which add nothing).

The model learns a small embedding per shape and concatenates it to each position's encoder
output before the linear head; since the head is linear, that is the encoder's logits plus a
learned `(shapes, labels)` score table (`shape_scores`), which is how exports carry it
(`lit_ner_word_shape_scores` in config.json) and how every tagging path applies it.

This file travels inside such a model's export (`lit_ner export`), beside `lit_ner_pipeline.py`,
so it imports nothing but numpy, the standard library and `words` beside it.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np

from .words import WordSplit, text_words, window_words

# Id 0 is no word (special tokens, padding): its row of scores is zero. Changing the list or the
# rules of `word_shape` changes every trained model's meaning: bump the version (checkpoints and
# exports record it; the data cache is keyed on it).
WORD_SHAPES_VERSION = 1
SHAPES = (
    "none",
    "lower",  # hello, don't
    "capitalised",  # Hello, I, Paris
    "all_caps",  # NASA, U.S.
    "mixed",  # iPhone, McDonald, eBay
    "digits",  # 2017, 3pm, A380
    "punctuation",  # ! ... :) -
    "mention",  # @username
    "hashtag",  # #topic
    "url",  # http://..., www.example.com
    "emoji",  # a word of emoji or other symbols, no letters or digits
    "other",  # letters without case (CJK, Arabic, ...)
)
SHAPE_IDS = {name: i for i, name in enumerate(SHAPES)}
# config.json's keys: the (shapes, labels) score table, the shapes' names in id order (for a
# reader of config.json) and the rules' version.
SCORES_KEY, NAMES_KEY, VERSION_KEY = (
    "lit_ner_word_shape_scores",
    "lit_ner_word_shapes",
    "lit_ner_word_shapes_version",
)
URL = re.compile(r"^(https?://|www\.)|://", re.IGNORECASE)


def word_shape(word: str) -> int:
    """The shape id of one word (a whitespace-free piece of text)."""
    # Words recur ("the", "I", ...): short ones are remembered, long ones (a server's 10,000
    # characters without a space) would hold memory for nothing.
    return _short_word_shape(word) if len(word) <= 32 else _word_shape(word)


def _word_shape(word: str) -> int:
    if URL.search(word):
        return SHAPE_IDS["url"]
    if len(word) > 1 and word[0] == "@":
        return SHAPE_IDS["mention"]
    if len(word) > 1 and word[0] == "#":
        return SHAPE_IDS["hashtag"]
    if any(c.isdigit() for c in word):
        return SHAPE_IDS["digits"]
    cased = [c for c in word if c.isupper() or c.islower()]
    if not cased:
        if any(c.isalpha() for c in word):
            return SHAPE_IDS["other"]
        if any(unicodedata.category(c) == "So" for c in word):
            return SHAPE_IDS["emoji"]
        return SHAPE_IDS["punctuation"]
    if all(c.islower() for c in cased):
        return SHAPE_IDS["lower"]
    if len(cased) > 1 and all(c.isupper() for c in cased):
        return SHAPE_IDS["all_caps"]
    if cased[0].isupper() and all(c.islower() for c in cased[1:]):
        return SHAPE_IDS["capitalised"]
    return SHAPE_IDS["mixed"]


_short_word_shape = functools.lru_cache(maxsize=1 << 16)(_word_shape)


def text_position_shapes(
    text: str, windows: Any, split: WordSplit = "punctuation", words: Sequence[tuple[int, int]] | None = None
) -> list[np.ndarray]:
    """Per window of `text` (each with `offsets`, `(tokens, 2)` character offsets, and `special`,
    1 on special and padding tokens), the shape id of the word each position falls in, the words
    being the text's words (`words.text_words(text, split)`, unless given as character spans). 0
    where no word."""
    words = text_words(text, split) if words is None else words
    shapes = np.asarray([0] + [word_shape(text[start:end]) for start, end in words], dtype=np.int64)
    return [shapes[np.asarray(window_words(words, window), dtype=np.int64) + 1] for window in windows]


def write_shape_scores(config: Any, table: list[list[float]] | None) -> None:
    """Records in a transformers config the word-shape scores a model adds to its logits (what
    `shape_scores` reads back): the `(shapes, labels)` table as nested lists, or None for a model
    without word features (the keys removed)."""
    if table is None:
        for key in (SCORES_KEY, NAMES_KEY, VERSION_KEY):
            if hasattr(config, key):
                delattr(config, key)
        return
    setattr(config, SCORES_KEY, table)
    setattr(config, NAMES_KEY, list(SHAPES))
    setattr(config, VERSION_KEY, WORD_SHAPES_VERSION)


def has_shape_scores(config: Any) -> bool:
    return getattr(config, SCORES_KEY, None) is not None


def shape_scores(config: Any, num_labels: int) -> np.ndarray | None:
    """The `(shapes, labels)` score table from a model config (an object or a dict) that lit_ner's
    export wrote, or None for a model trained without word features. A `ValueError` when the
    table was made with other shape rules than these (another lit_ner version) or has the wrong
    size."""
    get = config.get if isinstance(config, dict) else lambda key: getattr(config, key, None)
    table = get(SCORES_KEY)
    if table is None:
        return None
    version, names = get(VERSION_KEY), get(NAMES_KEY)
    table = np.asarray(table, dtype=np.float32)
    if version != WORD_SHAPES_VERSION or list(names or []) != list(SHAPES):
        raise ValueError(
            f"the model's word shapes (version {version}: {names}) are not this code's (version "
            f"{WORD_SHAPES_VERSION}: {list(SHAPES)}); tag it with the lit_ner version that trained it"
        )
    if table.shape != (len(SHAPES), num_labels):
        raise ValueError(
            f"lit_ner_word_shape_scores is {table.shape[0]} x {table.shape[1] if table.ndim > 1 else 0}, "
            f"not {len(SHAPES)} shapes x {num_labels} labels"
        )
    return table


def add_shape_scores(
    text: str,
    windows: Any,
    table: np.ndarray,
    split: WordSplit = "punctuation",
    words: Sequence[tuple[int, int]] | None = None,
) -> list[np.ndarray]:
    """Each window's logits (`windows`: the windows of `text`, each with `offsets`, `special` and
    `logits`) with its words' shape scores added (the words: `words.text_words(text, split)`, or
    the character spans given)."""
    shapes = text_position_shapes(text, windows, split, words)
    return [np.asarray(w["logits"], dtype=np.float32) + table[ids] for w, ids in zip(windows, shapes)]
