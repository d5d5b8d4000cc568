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
so it imports nothing but numpy and the standard library, and nothing of lit_ner.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from typing import Any

import numpy as np

# Id 0 is no word (special tokens, padding): its row of scores is zero. Changing the list changes
# every trained model's meaning: append only.
SHAPES = (
    "none",
    "lower",  # hello, don't
    "capitalised",  # Hello, I, O'Neil
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
URL = re.compile(r"^(https?://|www\.)|://", re.IGNORECASE)


def word_shape(word: str) -> int:
    """The shape id of one word (a whitespace-free piece of text)."""
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


def text_position_shapes(text: str, offsets: Any, special: Any) -> np.ndarray:
    """Per position of a window of `text` (`offsets`: `(tokens, 2)` character offsets, `special`:
    1 on special and padding tokens), the shape id of the whitespace-separated word it falls in,
    as `word_decoding.decode_words` finds a text's words."""
    words = [(match.start(), match.end()) for match in re.finditer(r"\S+", text)]
    starts = [start for start, _ in words]
    shapes = [word_shape(text[start:end]) for start, end in words]
    out = np.zeros(len(offsets), dtype=np.int64)
    for position, ((start, end), is_special) in enumerate(zip(np.asarray(offsets).tolist(), special)):
        word = bisect.bisect_right(starts, start) - 1
        if not is_special and end > start and word >= 0 and start < words[word][1]:
            out[position] = shapes[word]
    return out


def shape_scores(config: Any) -> np.ndarray | None:
    """The `(shapes, labels)` score table from a model config (an object or a dict) that lit_ner's
    export wrote, or None for a model trained without word features."""
    get = config.get if isinstance(config, dict) else lambda key: getattr(config, key, None)
    table = get("lit_ner_word_shape_scores")
    return None if table is None else np.asarray(table, dtype=np.float32)


def add_shape_scores(text: str, window: dict[str, Any], table: np.ndarray) -> np.ndarray:
    """A window's logits with its words' shape scores added (`window`: `offsets`, `special`,
    `logits` of one window of `text`)."""
    shapes = text_position_shapes(text, window["offsets"], np.asarray(window["special"]).tolist())
    return np.asarray(window["logits"], dtype=np.float32) + table[shapes]
