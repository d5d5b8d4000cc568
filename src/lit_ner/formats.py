"""Word-level NER data files: CoNLL (token first, tag last column) and JSONL (`{"tokens",
"tags"}`), read into a `Split` (words, string tags and each word's line in its file) and written
back. (Span annotations, doccano, Label Studio and Prodigy, are `lit_ner.annotations`'.)

Nothing here imports torch or Lightning: `lit_ner evaluate` reads files with it alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lit_ner.errors import LitNerError
from lit_ner.files import plain_suffix, read_text, write_atomically

# A split in memory, whatever it was read from: {"tokens": [[word]], "tags": [[tag]], and for
# files "lines": [[line number of each word]]}.
Split = dict[str, list[list[Any]]]
SPLITS = ("train", "validation", "test")


def read_conll(path: str | Path, tag_column: int = -1) -> Split:
    """Reads a CoNLL-style file: one word per line, the token first and the tag last.

    Columns are tab-separated when the line has a tab, else whitespace-separated. Sentences end at
    an empty or whitespace-only line; CRLF endings, a UTF-8 BOM, trailing blank lines and
    CoNLL-2003's `-DOCSTART-` lines are accepted. Anything else malformed raises a `LitNerError`
    naming the file and line.

    Args:
        path: the file.
        tag_column: the column holding the tag, counted from the end: -1 the last (default), -2
            the one before it (the gold tags of a token/gold/prediction file).
    """
    path = Path(path)
    split: Split = {"tokens": [], "tags": [], "lines": []}
    sentence: Split = {"tokens": [], "tags": [], "lines": []}
    n_columns = None

    def end_sentence() -> None:
        if sentence["tokens"]:
            for key in split:
                split[key].append(sentence[key])
                sentence[key] = []

    text = read_text(path)
    # splitlines() would also split on \x1c-\x1e, \x85, \u2028, which tweets contain inside tokens.
    for line_no, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            end_sentence()
            continue
        columns = line.split("\t") if "\t" in line else line.split()
        if columns[0] == "-DOCSTART-":
            end_sentence()
            continue
        if len(columns) < 1 - tag_column:
            wanted = "a token and a tag" if tag_column == -1 else f"at least {1 - tag_column} columns"
            raise LitNerError(f"{path}:{line_no}: expected {wanted}, got {line!r}")
        if n_columns is None:
            n_columns = len(columns)
        elif len(columns) != n_columns:
            raise LitNerError(f"{path}:{line_no}: expected {n_columns} columns, got {len(columns)}: {line!r}")
        token, tag = columns[0], columns[tag_column].strip()
        if not token.strip():
            raise LitNerError(f"{path}:{line_no}: empty token")
        if not tag:
            raise LitNerError(f"{path}:{line_no}: empty tag")
        sentence["tokens"].append(token)
        sentence["tags"].append(tag)
        sentence["lines"].append(line_no)
    end_sentence()
    if not split["tokens"]:
        raise LitNerError(f"{path}: no sentences")
    return split


def write_conll(
    path: str | Path, words: Sequence[Sequence[str]], *tag_columns: Sequence[Sequence[str]]
) -> Path:
    """Writes `token<TAB>tag...` lines, a blank line after each sentence, as `read_conll` reads
    them; atomically (written aside, then renamed over `path`), so a kill mid-write leaves any
    previous file whole. A token or tag that the format cannot hold (a tab or line break in it,
    or nothing but whitespace) raises a `ValueError`."""
    lines = []
    for sentence, *tags in zip(words, *tag_columns):
        for word, *word_tags in zip(sentence, *tags):
            for field in (word, *word_tags):
                if not field.strip() or "\t" in field or "\n" in field:
                    raise ValueError(f"{field!r} cannot be written as a CoNLL column")
            lines.append("\t".join((word, *word_tags)))
        lines.append("")
    return write_atomically(path, "\n".join(lines) + "\n")


def read_jsonl(path: str | Path) -> Split:
    """Reads JSON lines, one sentence each: `{"tokens": [str, ...], "tags": [str, ...]}`."""
    path = Path(path)
    split: Split = {"tokens": [], "tags": [], "lines": []}
    lines = read_text(path).split("\n")
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LitNerError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or "tokens" not in record or "tags" not in record:
            raise LitNerError(f'{path}:{line_no}: expected an object with "tokens" and "tags"')
        words, word_tags = record["tokens"], record["tags"]
        if not all(isinstance(x, list) and all(isinstance(s, str) for s in x) for x in (words, word_tags)):
            raise LitNerError(f'{path}:{line_no}: "tokens" and "tags" must be lists of strings')
        if len(words) != len(word_tags):
            raise LitNerError(
                f'{path}:{line_no}: "tokens" has {len(words)} items but "tags" has {len(word_tags)}'
            )
        for i, (word, tag) in enumerate(zip(words, word_tags)):
            if not word.strip() or not tag.strip():
                raise LitNerError(
                    f"{path}:{line_no}: empty {'token' if not word.strip() else 'tag'} (item {i})"
                )
            if any(c in field for field in (word, tag) for c in "\t\n\r"):
                raise LitNerError(
                    f"{path}:{line_no}: item {i} holds a tab or line break, which no CoNLL column can"
                )
        if words:
            split["tokens"].append(words)
            split["tags"].append(word_tags)
            split["lines"].append([line_no] * len(words))
    if not split["tokens"]:
        raise LitNerError(f"{path}: no sentences")
    return split


def read_split_file(path: str | Path) -> Split:
    """Reads a split from a `.jsonl`/`.json` file or, for any other suffix, a CoNLL file (either
    gzipped as `NAME.gz`)."""
    return read_jsonl(path) if plain_suffix(path) in {".jsonl", ".json"} else read_conll(path)
