"""What a word is, the one definition every part of lit_ner uses: a text's words are its
whitespace-separated pieces (as the words of a CoNLL file), and words become a text joined by
single spaces. Tagging, decoding, word shapes, span annotations and `predict`'s output all find
words here.

Shipped inside exports (module docstring of `lit_ner.portable`): the standard library and numpy
only.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

WORD = re.compile(r"\S+")


def text_words(text: str) -> list[tuple[int, int]]:
    """A text's words as `(start, end)` character offsets.

    >>> text_words("Hi  New York!")
    [(0, 2), (4, 7), (8, 13)]
    """
    return [(match.start(), match.end()) for match in WORD.finditer(text)]


def joined_words(words: Sequence[str]) -> tuple[str, list[int]]:
    """The text of `words` joined by single spaces, and where each word starts in it (so that
    `text_words(text)` gives the words back).

    >>> joined_words(["Hi", "New", "York"])
    ('Hi New York', [0, 3, 7])
    """
    starts, position = [], 0
    for word in words:
        starts.append(position)
        position += len(word) + 1
    return " ".join(words), starts


def token_words(words: Sequence[tuple[int, int]], offsets: Any, special: Any) -> list[int]:
    """Per token of a window (`offsets`: `(tokens, 2)` character offsets; `special`: 1 on special
    and padding tokens), the index in `words` of the word it falls in, or -1."""
    starts = [start for start, _ in words]
    out = []
    for (start, end), is_special in zip(
        np.asarray(offsets).reshape(-1, 2).tolist(), np.asarray(special).tolist()
    ):
        word = bisect.bisect_right(starts, start) - 1
        inside = not is_special and end > start and word >= 0 and start < words[word][1]
        out.append(word if inside else -1)
    return out
