"""How lit_ner reads and writes a file: UTF-8 text (gzipped or not) with one-line errors naming
the file, and `write_atomically`, which every file lit_ner writes goes through."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

from lit_ner.errors import LitNerError


def plain_suffix(path: str | Path) -> str:
    """A file's suffix with `.gz` looked through: every reader takes `NAME.gz` for `NAME`.

    >>> plain_suffix("dev.jsonl.gz"), plain_suffix("train.conll"), plain_suffix("README")
    ('.jsonl', '.conll', '')
    """
    path = Path(path)
    return Path(path.stem).suffix if path.suffix == ".gz" else path.suffix


def write_atomically(path: str | Path, content: str | bytes | Callable[[IO[bytes]], None]) -> Path:
    """Writes a file so that a kill mid-write leaves the previous one whole: written beside it
    (`.NAME.PID.partial`), flushed to disk, then renamed over it. `content` is text (UTF-8), bytes,
    or a function that writes into the open binary file (`torch.save`, say). Parent folders are
    made as needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Named by process: two processes writing one file at once (search workers' reports) each
    # replace it whole, never writing into each other's partial file.
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
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
