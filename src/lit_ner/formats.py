"""Readers and writers of lit_ner's data formats, and the one way lit_ner writes a file.

- word-level NER data: CoNLL (token first, tag last column) and JSONL (`{"tokens", "tags"}`),
  read into a `Split` (words, string tags and each word's line in its file);
- the texts `lit_ner tag` reads (one per line, or JSONL with a text field);
- `write_atomically`, which every file lit_ner writes goes through.

Nothing here imports torch or Lightning: `lit_ner evaluate` reads files with it alone.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from lit_ner.errors import LitNerError

# A split in memory, whatever it was read from: {"tokens": [[word]], "tags": [[tag]], and for
# files "lines": [[line number of each word]]}.
Split = dict[str, list[list[Any]]]
SPLITS = ("train", "validation", "test")

WNUT17_LABELS = [
    "O",
    "B-corporation",
    "I-corporation",
    "B-creative-work",
    "I-creative-work",
    "B-group",
    "I-group",
    "B-location",
    "I-location",
    "B-person",
    "I-person",
    "B-product",
    "I-product",
]
# The official release's file names, per split.
WNUT17_FILES = {
    "train": "wnut17train.conll",
    "validation": "emerging.dev.conll",
    "test": "emerging.test.annotated",
}
# The release shipped inside the package, gzipped, with its licence and citation (README.md).
PACKAGED_WNUT17 = Path(__file__).parent / "wnut17"


def wnut17_files(directory: str | Path = PACKAGED_WNUT17) -> dict[str, Path]:
    """The release's file of each split in `directory`, as released or gzipped (`NAME.gz`); a
    `LitNerError` naming the missing ones."""
    files, missing = {}, []
    for split, name in WNUT17_FILES.items():
        plain, packed = Path(directory) / name, Path(directory) / f"{name}.gz"
        files[split] = plain if plain.is_file() or not packed.is_file() else packed
        if not files[split].is_file():
            missing.append(str(plain))
    if missing:
        raise LitNerError(f"WNUT-17 directory {directory}: missing {', '.join(missing)}")
    return files


def write_atomically(path: str | Path, content: str | bytes | Callable[[IO[bytes]], None]) -> Path:
    """Writes a file so that a kill mid-write leaves the previous one whole: written beside it
    (`.NAME.partial`), flushed to disk, then renamed over it. `content` is text (UTF-8), bytes,
    or a function that writes into the open binary file (`torch.save`, say). Parent folders are
    made as needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as file:
        if callable(content):
            content(file)
        else:
            file.write(content.encode("utf-8") if isinstance(content, str) else content)
        file.flush()
        os.fsync(file.fileno())  # on disk before it replaces the previous file
    os.replace(partial, path)
    return path


def read_text(path: str | Path) -> str:
    """A UTF-8 text file's contents (a BOM dropped; `.gz` files decompressed); a missing file, a
    directory, a broken gzip stream or bytes that are not UTF-8 raise a `LitNerError` naming the
    file (and the line of the first bad byte)."""
    path = Path(path)
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
    except FileNotFoundError:
        raise LitNerError(f"{path}: no such file") from None
    except OSError as exc:  # gzip.BadGzipFile and EOFError's truncated stream included
        raise LitNerError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except EOFError:
        raise LitNerError(f"{path}: cannot read (truncated gzip stream)") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LitNerError(
            f"{path}:{line}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})"
        ) from None


def ill_formed_bio(tags: Sequence[str]) -> list[int]:
    """Positions of I- tags that continue nothing: after `O`, at the start, or after a tag of
    another type. seqeval's default mode (and conlleval) read each as the start of an entity;
    its strict mode as no entity at all.

    >>> ill_formed_bio(["O", "I-person", "I-person", "B-group", "I-person"])
    [1, 4]
    """
    positions, previous = [], "O"
    for position, tag in enumerate(tags):
        if tag.startswith("I-") and (previous[:2] not in {"B-", "I-"} or previous[2:] != tag[2:]):
            positions.append(position)
        previous = tag
    return positions


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
    suffixes = Path(path).suffixes
    last = suffixes[-2] if len(suffixes) > 1 and suffixes[-1] == ".gz" else (suffixes[-1] if suffixes else "")
    return read_jsonl(path) if last in {".jsonl", ".json"} else read_conll(path)


def bio_label_order(tags: set[str]) -> list[str]:
    """A stable label order for tags read from files: `O`, then per type (sorted) B-, I-, E-, S-.

    For WNUT-17's tags this is exactly the Hub data set's ClassLabel order.
    """
    prefix_rank = {"B": 0, "I": 1, "E": 2, "S": 3}

    def key(tag: str) -> tuple[str, int]:
        prefix, _, type_ = tag.partition("-")
        if type_ and prefix in prefix_rank:
            return type_, prefix_rank[prefix]
        return tag, -1  # not BIO: sorts among the types by its own name

    return (["O"] if "O" in tags else []) + sorted(tags - {"O"}, key=key)


def read_texts(
    path: str | Path, text_field: str = "text"
) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """Reads `lit_ner tag`'s input: one text per line, or JSONL (`.jsonl`/`.json`) objects with a
    `text_field`, the other fields passed through.

    Returns:
        The good lines as `(line number, record)` with `record["text"]` the text, and one
        message per bad line (an empty line, a line that is not a JSON object with a string
        `text_field`); a bad line never stops the others.
    """
    path = Path(path)
    lines = read_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    if not lines:
        raise LitNerError(f"{path}: empty file, no texts to tag")
    jsonl = path.suffix in {".jsonl", ".json"}
    records, problems = [], []
    for line_no, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line.strip():
            problems.append(f"{path}:{line_no}: empty line, skipped")
            continue
        if not jsonl:
            records.append((line_no, {"text": line}))
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{line_no}: not valid JSON ({exc.msg}), skipped")
            continue
        if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
            problems.append(f'{path}:{line_no}: expected an object with a string "{text_field}", skipped')
            continue
        text = record.pop(text_field)
        records.append((line_no, {"text": text, **record}))
    return records, problems
