"""What a word is, the one definition every part of lit_ner uses: raw text is split into words the
way NER corpora are tokenized (CoNLL, WNUT-17, OntoNotes), and words become a text joined by single
spaces. Tagging, decoding, word shapes, span annotations and `predict`'s output all find words here.

Two ways to split a text (`WORD_SPLITS`):
- `"punctuation"` (raw text as people type it): punctuation is split from words ("York!" ->
  "York", "!"), and so is the possessive ("Apple's" -> "Apple", "'s") and the "@" or "#" of a
  mention or hashtag ("@JohnSmith" -> "@", "JohnSmith": the name is what may be an entity, as
  WNUT-17's test split annotates it), while URLs, e-mail addresses, emoticons, HTML entities,
  numbers with separators ("9:30", "$5", "1,000"), abbreviations ("U.S.", "Dr.") and hyphenated
  words stay whole; a run of
  punctuation ("...", "?!") is one word. Scripts written without spaces (Chinese, Japanese, Thai,
  Lao, Khmer, Myanmar) are split per character, as BERT's tokenizer does. Offsets point into the
  original text, so an entity never takes a neighbouring "!" or "(" with it.
- `"whitespace"` (text already tokenized): the whitespace-separated pieces, as the words of a
  CoNLL file, unchanged.

Splitting is stable: the words of a text, joined by single spaces, split into the same words again.

Shipped inside exports (module docstring of `lit_ner.portable`): the standard library and numpy
only.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np

WordSplit = Literal["punctuation", "whitespace"]
WORD_SPLITS: tuple[str, ...] = get_args(WordSplit)

WHITESPACE_WORD = re.compile(r"\S+")

# Scripts written without spaces between words: one word per character.
_UNSPACED = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff\u31f0-\u31ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK ideographs
    "\u3000-\u303f\uff00-\uffef"  # CJK punctuation, full-width forms
)
# Combining marks of those scripts, which belong to the character before them.
_MARKS = (
    "\u0e31\u0e34-\u0e3a\u0e47-\u0e4e\u0eb1\u0eb4-\u0ebc\u0ec8-\u0ecd\u102b-\u103e\u17b4-\u17d3\u3099\u309a"
)
_LETTER = rf"[^\W{_UNSPACED}]"  # a word character (letters, digits, _) of a spaced script
# The clitic split from the word before it: the possessive (or "is") 's, the one that touches
# entities ("Apple's" -> "Apple", "'s"). Other contractions ("don't", "I'm") stay whole, as most
# of WNUT-17's do.
_CLITIC = r"['’]s"
_TITLES = r"(?:Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|Mt|Ft|vs|etc|Inc|Ltd|Corp|Co|No|approx)"
_PARTS = [
    # (name, pattern), tried in this order at each position
    ("url", r"(?:https?:|ftp:|www\.)\S+"),
    ("html_entity", r"&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);"),
    ("email", rf"{_LETTER}(?:[\w.+-]*{_LETTER})?@{_LETTER}+(?:[-.]{_LETTER}+)*\.[A-Za-z]{{2,}}"),
    (
        "domain",
        r"(?:[\w-]+\.)+(?:com|org|net|edu|gov|io|ly|co|uk|de|fr|me|tv|gl|it|us|ca|au)(?:/\S*)?(?![\w.])",
    ),
    ("mention", rf"@{_LETTER}+"),
    ("hashtag", rf"#{_LETTER}+"),
    (
        "emoticon",
        r"(?<![\w])(?:[<>]?[:;=][-o*'^]?(?:[)\](\[}{|\\/@*]+|[dDpPoOxX3](?![\w])))"
        r"|<3+|</3|\^_*\^|-_+-|[oO]_[oO]|(?<![\w])[xX][dD](?![\w])|¯\\_\(ツ\)_/¯",
    ),
    ("abbreviation", rf"(?:[A-Za-z]\.){{2,}}|\b{_TITLES}\.|\b[A-Z]\.(?=\s+[A-Z])|\b[wW]/(?!\w)"),
    ("number", rf"[$€£¥]?\d+(?:[.,:/-]\d+)*(?:%|\+|{_LETTER}+)?"),
    ("clitic", r"(?i:['’](?:s|m|re|ve|ll|d)|n['’]t)(?!\w)"),  # one a corpus split off already
    # Hyphens, slashes and apostrophes inside a word keep it whole ("double-pawed", "and/or",
    # "O'Donoghue"); so does a hyphen at its end ("Sci- and non-fiction").
    ("word", rf"{_LETTER}+(?:(?:[-'’/]|&(?:amp;)?){_LETTER}+)*(?:-(?!\S))?"),
    ("unspaced", f"[{_UNSPACED}][{_MARKS}]*"),
    # A run of punctuation or symbols, stopping before a mention, hashtag or URL.
    (
        "punctuation",
        r"(?:&(?:[A-Za-z]+|#\d+);|(?![@#]\w|https?:|www\.)[^\w\s\u200b-\u200f\u2060\ufeff"
        + _UNSPACED
        + "])+",
    ),
    ("other", r"[^\s\u200b-\u200f\u2060\ufeff]"),  # zero-width characters are no word
]
_SPLITTER = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in _PARTS))
_ENDS_IN_CLITIC = re.compile(rf"(?i){_LETTER}({_CLITIC})$")
_URL_TRAILER = re.compile(r"[.,;:!?'\"’”)\]}>]+$")


def text_words(text: str, split: WordSplit = "punctuation") -> list[tuple[int, int]]:
    """A text's words as `(start, end)` character offsets (see the module docstring for `split`).

    >>> text_words("Hi  New York!")
    [(0, 2), (4, 7), (8, 12), (12, 13)]
    >>> text_words("Hi  New York!", "whitespace")
    [(0, 2), (4, 7), (8, 13)]
    """
    if split == "whitespace":
        return [(match.start(), match.end()) for match in WHITESPACE_WORD.finditer(text)]
    if split != "punctuation":
        raise ValueError(f"split must be one of {WORD_SPLITS}, not {split!r}")
    words = []
    for match in _SPLITTER.finditer(text):
        start, end, kind = match.start(), match.end(), match.lastgroup
        if kind in ("url", "domain"):
            end = _url_end(text, start, end)
        elif kind in ("mention", "hashtag"):  # "@", "name": the name is what may be an entity
            words.append((start, start + 1))
            start += 1
        elif kind == "word":
            clitic = _ENDS_IN_CLITIC.search(match.group())
            if clitic and clitic.start(1) > 0:  # "Apple's" -> "Apple", "'s"
                words.append((start, start + clitic.start(1)))
                start = start + clitic.start(1)
        words.append((start, end))
        if end < match.end():  # the punctuation a URL was followed by
            words.extend((end + a, end + b) for a, b in text_words(text[end : match.end()]))
    return words


def _url_end(text: str, start: int, end: int) -> int:
    """Where a URL ends once the punctuation after it is left out ("(see http://x.org/a)." keeps
    "http://x.org/a"), keeping a closing bracket the URL opened (Wikipedia's "..._(band)")."""
    trailer = _URL_TRAILER.search(text, start, end)
    if not trailer:
        return end
    cut = trailer.start()
    for i in range(trailer.start(), end):
        closing = text[i]
        opening = {")": "(", "]": "[", "}": "{"}.get(closing)
        if opening and text.count(opening, start, i) > text.count(closing, start, i):
            cut = i + 1
        else:
            break
    return max(cut, start + 1)


def split_words(text: str, split: WordSplit = "punctuation") -> list[str]:
    """A text's words as strings.

    >>> split_words("Saw @JohnSmith's talk (via http://t.co/x1)... can't wait!!")
    ['Saw', '@', 'JohnSmith', "'s", 'talk', '(', 'via', 'http://t.co/x1', ')...', "can't", 'wait', '!!']
    """
    return [text[start:end] for start, end in text_words(text, split)]


def joined_words(words: Sequence[str]) -> tuple[str, list[int]]:
    """The text of `words` joined by single spaces, and where each word starts in it.

    >>> joined_words(["Hi", "New", "York"])
    ('Hi New York', [0, 3, 7])
    """
    starts, position = [], 0
    for word in words:
        starts.append(position)
        position += len(word) + 1
    return " ".join(words), starts


# Written back as people type: no space before these words, none after those.
_CLOSES = re.compile(r"(?:[.,!?;:…%)\]}]|['’](?:s|m|re|ve|ll|d)$|n['’]t$)")
_OPENS = {"(", "[", "{", "$", "#", "@", "“", "‘"}
_EMOTICON = re.compile(dict(_PARTS)["emoticon"])


def typed_text(words: Sequence[str]) -> tuple[str, list[int]]:
    """Tokenized words written back as people type them, and where each word starts in that
    text: no space before closing punctuation and clitics ("York !" -> "York!", "Apple 's" ->
    "Apple's", "You ' re" -> "You're"), none after an opening bracket or quote ("( via" ->
    "(via"); a straight double quote opens and closes in turn; emoticons keep their space. How
    lit_ner measures tagging raw text against tagging tokenized words (`bench/raw_text.py`).

    >>> typed_text(["Storm", "in", "New", "York", "!", "(", "via", "@user", ")", ":)"])
    ('Storm in New York! (via @user) :)', [0, 6, 9, 13, 17, 19, 20, 24, 29, 31])
    """
    text, starts = "", []
    glue_next, quote_open = True, False
    for i, word in enumerate(words):
        glue = glue_next
        if word == '"':
            glue, quote_open = glue or quote_open, not quote_open  # a closing quote sticks back
            glue_next = quote_open
        else:
            emoticon = _EMOTICON.fullmatch(word) is not None
            following = words[i + 1] if i + 1 < len(words) else ""
            if not emoticon and _CLOSES.match(word):
                glue = True
            if word in ("'", "’") and following.lower() in ("s", "m", "re", "ve", "ll", "d", "t"):
                glue = True  # a contraction a corpus split at its apostrophe: "You ' re"
            glue_next = word in _OPENS or (word in ("'", "’") and glue)
        if text and not glue:
            text += " "
        starts.append(len(text))
        text += word
    return text, starts


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


def window_words(words: Sequence[tuple[int, int]], window: dict[str, Any]) -> list[int]:
    """Per token of a window, the index in `words` of the word it belongs to, or -1: the window's
    own `word` array where it has one (a window of words, `windows.TokenWindower.encode_words`,
    where a SentencePiece "▁" that opens a word belongs to that word whatever its offsets), else
    read from its character `offsets` and `special` mask (`token_words`)."""
    if "word" in window:
        return np.asarray(window["word"]).tolist()
    return token_words(words, window["offsets"], window["special"])
