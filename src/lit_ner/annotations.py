"""Character-span annotations, as annotation tools export them, to and from lit_ner's words and
BIO tags; and `lit_ner convert`.

Three formats, read and written:
- doccano JSONL: `{"text": ..., "label": [[start, end, "TYPE"], ...]}` per line (older exports
  say `"labels"`);
- Label Studio's JSON export: a list of tasks, each `{"data": {"text": ...}, "annotations":
  [{"result": [{"type": "labels", "value": {"start", "end", "text", "labels": ["TYPE"]}}]}]}`
  (pre-annotations under `"predictions"` are read when a task has no annotation);
- Prodigy/spaCy JSONL: `{"text": ..., "spans": [{"start", "end", "label"}]}` per line (records
  answered `reject` or `ignore` are skipped, and counted).

Words are the text's whitespace-separated pieces, the words `lit_ner tag` decodes; a piece that a
span edge cuts is split at the edge, and whitespace at a span's ends is trimmed, both counted.
Tools written in JavaScript count offsets in UTF-16 units, so after an emoji their offsets drift
from Python's: where a record carries the span's text (Label Studio's `value.text`, a Prodigy
span's `text`), offsets that do not match it in Python's units but do in UTF-16 units are
repaired, and counted; doccano's, which come without text, are read and written as UTF-16
units. A bad record is one line naming the file and the record (its line, or the line where a
Label Studio task starts).
"""

from __future__ import annotations

import json
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from lit_ner.errors import LitNerError
from lit_ner.files import plain_suffix, read_text, write_atomically
from lit_ner.formats import Split, read_split_file, write_conll
from lit_ner.portable.spans import get_entities
from lit_ner.portable.words import WordSplit, joined_words, text_words

Span = tuple[int, int, str]  # [start, end) characters of the text, and the entity type

# --- reading -------------------------------------------------------------------------------------


def detect_format(path: str | Path, text: str) -> str:
    """`label-studio` for a `.json` file holding a JSON list, else the first JSONL record's shape:
    `doccano` (a `label`/`labels` list), `prodigy` (`spans`) or `tokens` (lit_ner's own
    `tokens`/`tags`, and anything else, which its reader then names)."""
    if plain_suffix(path) == ".json" and text.lstrip().startswith("["):
        return "label-studio"
    first = next((line for line in text.split("\n") if line.strip()), "")
    try:
        record = json.loads(first)
    except json.JSONDecodeError:
        return "tokens"  # read_jsonl names the bad line
    if isinstance(record, dict):
        if "spans" in record:  # Prodigy's records may hold a "tokens" list of its own
            return "prodigy"
        if "tokens" not in record and ("label" in record or "labels" in record):
            return "doccano"
    return "tokens"


def json_array_records(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    """The items of a JSON list with the line each starts on (so errors can name it)."""
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text):
            raise LitNerError(f"{path}: the JSON list never ends (no closing ']')")
        if text[position] == "]":
            return
        line = text.count("\n", 0, position) + 1
        try:
            item, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise LitNerError(
                f"{path}:{text.count(chr(10), 0, exc.pos) + 1}: not valid JSON ({exc.msg})"
            ) from None
        yield line, item


def jsonl_records(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as exc:
            raise LitNerError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None


def utf16_to_python(text: str) -> list[int]:
    """`index[u]`: the Python (code point) offset of UTF-16 offset `u` (-1 inside a surrogate pair)."""
    index = []
    for i, char in enumerate(text):
        index.append(i)
        if ord(char) > 0xFFFF:
            index.append(-1)
    index.append(len(text))
    return index


def record_spans(
    fmt: str, record: Any, where: str, counts: Counter
) -> tuple[str, list[tuple[int, int, str, str | None]]] | None:
    """A record's text and its spans as `(start, end, type, span text or None)`, or None for a
    record to skip (counted)."""
    if not isinstance(record, dict):
        raise LitNerError(f"{where}: expected a JSON object")
    if fmt == "label-studio":
        read = label_studio_spans(record, where, counts)
    elif fmt == "doccano":
        read = doccano_spans(record, where, counts)
    else:
        read = prodigy_spans(record, where, counts)
    if read is None:
        return None
    text, spans = read
    # Checked after the tool's own shape: a skipped record needs no text, and a bad span says so first.
    if not isinstance(text, str):
        raise LitNerError(f"{where}: the record has no text")
    return text, spans


def label_studio_spans(
    record: dict, where: str, counts: Counter
) -> tuple[Any, list[tuple[int, int, str, str | None]]] | None:
    """A Label Studio task's text and the spans of its first annotation not cancelled (else of its
    first prediction), or None for a task to skip (counted)."""
    data = record.get("data")
    text = data.get("text") if isinstance(data, dict) else None
    annotations = [a for a in record.get("annotations") or [] if isinstance(a, dict)]
    chosen = [a for a in annotations if not a.get("was_cancelled")]
    if annotations and not chosen:
        counts["tasks whose annotations were all cancelled, skipped"] += 1
        return None
    if not chosen:
        chosen = [p for p in record.get("predictions") or [] if isinstance(p, dict)]
        if chosen:
            counts["tasks read from their predictions (no annotation)"] += 1
    if not chosen:
        counts["tasks without annotations or predictions, skipped"] += 1
        return None
    if len(chosen) > 1:
        counts["tasks with several annotations (the first one read)"] += 1
    spans = []
    for result in chosen[0].get("result") or []:
        value = result.get("value") if isinstance(result, dict) else None
        if not isinstance(value, dict) or "start" not in value or "labels" not in value:
            counts["results that are not text spans (relations, choices ...), skipped"] += 1
            continue
        labels = value["labels"]
        label = labels[0] if isinstance(labels, list) and len(labels) == 1 else None
        if not isinstance(label, str):
            raise LitNerError(f"{where}: a span must have exactly one label, got {labels!r}")
        spans.append((value["start"], value.get("end"), label, value.get("text")))
    return text, spans


def doccano_spans(
    record: dict, where: str, counts: Counter
) -> tuple[Any, list[tuple[int, int, str, str | None]]]:
    """A doccano record's text and its `[start, end, type]` spans, offsets turned from UTF-16 units
    into Python's."""
    text = record.get("text")
    raw = record.get("label", record.get("labels"))
    if not isinstance(raw, list):
        raise LitNerError(f'{where}: expected a "label" list of [start, end, type]')
    spans = []
    # doccano counts offsets in UTF-16 units, as JavaScript does, and stores no span text.
    utf16 = utf16_to_python(text) if isinstance(text, str) else []
    for item in raw:
        if not (isinstance(item, (list, tuple)) and len(item) == 3):
            raise LitNerError(f"{where}: expected [start, end, type], got {item!r}")
        start, end = item[0], item[1]
        if isinstance(start, int) and isinstance(end, int) and 0 <= start < end < len(utf16):
            if utf16[start] < 0 or utf16[end] < 0:
                raise LitNerError(f"{where}: span [{start}, {end}) cuts a character in two (UTF-16 offsets)")
            if (utf16[start], utf16[end]) != (start, end):
                counts["doccano spans read from UTF-16 offsets"] += 1
            start, end = utf16[start], utf16[end]
        spans.append((start, end, item[2], None))
    return text, spans


def prodigy_spans(
    record: dict, where: str, counts: Counter
) -> tuple[Any, list[tuple[int, int, str, str | None]]] | None:
    """A Prodigy record's text and spans, or None for one answered other than `accept` (counted)."""
    text = record.get("text")
    if record.get("answer", "accept") != "accept":
        counts[f"records answered {record.get('answer')!r}, skipped"] += 1
        return None
    raw = record.get("spans") or []
    if not isinstance(raw, list) or not all(isinstance(span, dict) for span in raw):
        raise LitNerError(f'{where}: expected "spans" as a list of objects')
    return text, [(span.get("start"), span.get("end"), span.get("label"), span.get("text")) for span in raw]


def check_spans(
    text: str, spans: Sequence[tuple[Any, Any, Any, Any]], where: str, counts: Counter
) -> list[Span]:
    """Spans checked against the text, repaired from UTF-16 offsets where their text says so,
    trimmed of whitespace at their ends, sorted; overlaps refused."""
    checked: list[Span] = []
    utf16 = None
    for start, end, label, span_text in spans:
        if not isinstance(label, str) or not label.strip():
            raise LitNerError(f"{where}: a span at [{start}, {end}) has an empty label")
        if not (isinstance(start, int) and isinstance(end, int)) or not 0 <= start < end:
            raise LitNerError(f"{where}: span [{start}, {end}) {label!r} is outside the text")
        if span_text is not None and text[start:end] != span_text:
            utf16 = utf16 or utf16_to_python(text)
            fits = end < len(utf16) and utf16[start] >= 0 and utf16[end] >= 0
            if not fits or text[utf16[start] : utf16[end]] != span_text:
                raise LitNerError(
                    f"{where}: span [{start}, {end}) {label!r} says its text is {span_text!r}, but the text "
                    f"holds {text[start:end]!r} there, in Python's and in UTF-16 offsets alike"
                )
            start, end = utf16[start], utf16[end]
            counts["spans repaired from UTF-16 offsets"] += 1
        if end > len(text):
            raise LitNerError(
                f"{where}: span [{start}, {end}) {label!r} is outside the text ({len(text)} characters)"
            )
        inner = text[start:end]
        if not inner.strip():
            raise LitNerError(f"{where}: span [{start}, {end}) {label!r} holds no word, only whitespace")
        trimmed_start = start + len(inner) - len(inner.lstrip())
        trimmed_end = end - (len(inner) - len(inner.rstrip()))
        if (trimmed_start, trimmed_end) != (start, end):
            counts["spans trimmed of whitespace at their ends"] += 1
        checked.append((trimmed_start, trimmed_end, label.strip()))
    checked.sort()
    for (start, end, label), (next_start, next_end, next_label) in zip(checked, checked[1:]):
        if next_start < end:
            second = f"[{next_start}, {next_end}) {next_label!r}"
            raise LitNerError(f"{where}: spans [{start}, {end}) {label!r} and {second} overlap")
    return checked


def spans_to_words(
    text: str, spans: Sequence[Span], counts: Counter, split: WordSplit = "punctuation"
) -> tuple[list[str], list[str]]:
    """The text's words (`words.text_words(text, split)`: as tagging splits raw text), split
    where a span edge cuts one, and their BIO tags."""
    edges = {edge for start, end, _ in spans for edge in (start, end)}
    words, starts = [], []
    for word_start, word_end in text_words(text, split):
        cuts = sorted(edge for edge in edges if word_start < edge < word_end)
        if cuts:
            counts["words split at a span edge"] += 1
        for piece_start, piece_end in zip([word_start, *cuts], [*cuts, word_end]):
            words.append(text[piece_start:piece_end])
            starts.append(piece_start)
    tags = ["O"] * len(words)
    position = 0
    for start, end, label in spans:
        while position < len(words) and starts[position] < start:
            position += 1
        first = True
        while position < len(words) and starts[position] < end:
            tags[position] = f"{'B' if first else 'I'}-{label}"
            first = False
            position += 1
    return words, tags


def read_spans(
    path: str | Path, fmt: str | None = None, text: str | None = None, split_words: WordSplit = "punctuation"
) -> tuple[Split, Counter]:
    """A span-annotated file as words and BIO tags (a `Split`), and the count of each repair or
    skip. `fmt` (`doccano`, `label-studio`, `prodigy`) is detected from the file when None;
    `text` is the file's contents when the caller has read them already; `split_words` is how
    its texts are split into words (`words.WORD_SPLITS`)."""
    path = Path(path)
    text = read_text(path) if text is None else text
    fmt = fmt or detect_format(path, text)
    records = json_array_records(path, text) if fmt == "label-studio" else jsonl_records(path, text)
    split: Split = {"tokens": [], "tags": [], "lines": []}
    counts: Counter = Counter()
    for line, record in records:
        kind = "task" if fmt == "label-studio" else "record"
        where = f"{path}:{line} ({kind})"
        found = record_spans(fmt, record, where, counts)
        if found is None:
            continue
        record_text, spans = found
        checked = check_spans(record_text, spans, where, counts)
        words, tags = spans_to_words(record_text, checked, counts, split_words)
        if not words:
            counts["records with an empty text, skipped"] += 1
            continue
        split["tokens"].append(words)
        split["tags"].append(tags)
        split["lines"].append([line] * len(words))
    if not split["tokens"]:
        raise LitNerError(f"{path}: no annotated texts")
    return split, counts


def describe(counts: Counter) -> str:
    return ", ".join(f"{count} {what}" for what, count in sorted(counts.items()))


def read_annotations(
    path: str | Path, report: Callable[[str], None] | None = None, word_split: WordSplit = "punctuation"
) -> Split:
    """Any file lit_ner trains from: span formats (detected) or CoNLL/JSONL words and tags. The
    repairs and skips a span file needed are reported in one line (`report`, default a warning).
    A span file's texts are split into words by `word_split` (`words.WORD_SPLITS`)."""
    path = Path(path)
    if plain_suffix(path) not in {".json", ".jsonl"}:
        return read_split_file(path)
    text = read_text(path)
    fmt = detect_format(path, text)
    if fmt == "tokens":
        return read_split_file(path)
    split, counts = read_spans(path, fmt, text, word_split)
    if counts:
        (report or warnings.warn)(f"{path} ({fmt}): {describe(counts)}")
    return split


# --- writing -------------------------------------------------------------------------------------


def words_to_spans(words: Sequence[str], tags: Sequence[str]) -> tuple[str, list[Span]]:
    """The words joined by single spaces, and their entities as character spans."""
    text, starts = joined_words(words)
    spans = [
        (starts[first], starts[last] + len(words[last]), type_)
        for type_, first, last in get_entities(list(tags))
    ]
    return text, sorted(spans)


def python_to_utf16(text: str) -> list[int]:
    """`index[i]`: the UTF-16 offset of Python offset `i`."""
    index, position = [], 0
    for char in text:
        index.append(position)
        position += 2 if ord(char) > 0xFFFF else 1
    index.append(position)
    return index


def span_records(
    texts: Sequence[str],
    spans: Sequence[Sequence[Span]],
    fmt: str,
    scores: Sequence[Sequence[float]] | None = None,
    extra: Sequence[dict] | None = None,
) -> str:
    """Texts and their spans in a tool's format, as the file's contents: Label Studio tasks with
    the spans as pre-annotations (`predictions`, UTF-16 offsets as Label Studio counts them, each
    with its text), doccano or Prodigy JSONL. `scores` (per span) go into Label Studio's results;
    `extra` fields are passed through (Label Studio: into `data`)."""
    extra = extra or [{} for _ in texts]
    if fmt == "label-studio":
        tasks = []
        for n, (text, text_spans) in enumerate(zip(texts, spans)):
            utf16 = python_to_utf16(text)
            results = []
            for k, (start, end, label) in enumerate(text_spans):
                result = {
                    "id": f"t{n}e{k}",
                    "from_name": "label",
                    "to_name": "text",
                    "type": "labels",
                    "value": {
                        "start": utf16[start],
                        "end": utf16[end],
                        "text": text[start:end],
                        "labels": [label],
                    },
                }
                if scores is not None:
                    result["score"] = scores[n][k]
                results.append(result)
            prediction: dict[str, Any] = {"model_version": "lit_ner", "result": results}
            if scores is not None and scores[n]:
                prediction["score"] = sum(scores[n]) / len(scores[n])
            tasks.append({"data": {"text": text, **extra[n]}, "predictions": [prediction]})
        return json.dumps(tasks, ensure_ascii=False, indent=1) + "\n"
    lines = []
    for n, (text, text_spans) in enumerate(zip(texts, spans)):
        if fmt == "doccano":  # UTF-16 offsets, as doccano counts them
            utf16 = python_to_utf16(text)
            record = {
                "text": text,
                "label": [[utf16[start], utf16[end], label] for start, end, label in text_spans],
            }
        else:
            record = {
                "text": text,
                "spans": [{"start": s, "end": e, "label": label} for s, e, label in text_spans],
            }
        # The spans written win over an input field of the same name (a doccano file tagged again).
        lines.append(json.dumps({**extra[n], **record}, ensure_ascii=False))
    return "".join(line + "\n" for line in lines)


def convert(
    input: str,
    output: str,
    *,
    to: Literal["auto", "conll", "jsonl", "doccano", "label-studio", "prodigy"] = "auto",
    word_split: WordSplit = "punctuation",
) -> Path:
    """Converts NER data between annotation tools' span exports and word-level CoNLL or JSONL.

    The span formats are doccano's JSONL, Label Studio's JSON export and Prodigy's JSONL; either
    side can be the input.

    Args:
        input: a CoNLL file, a JSONL file of tokens and tags, doccano or Prodigy JSONL, or a Label
            Studio JSON export (detected from the file).
        output: the file to write (atomically).
        to: the output format; "auto" goes by OUTPUT's suffix: .jsonl for tokens and tags, .json
            for Label Studio, anything else CoNLL.
        word_split: how a span file's texts become words: "punctuation" (raw text, split as
            NER corpora are tokenized: "York!" is "York" and "!") or "whitespace" (texts that
            are tokenized words joined by spaces, kept as they are).

    Returns:
        The file written.
    """
    path = Path(output)
    if to == "auto":
        to = {".jsonl": "jsonl", ".json": "label-studio"}.get(path.suffix, "conll")
    split = read_annotations(
        input, report=lambda line: print(f"lit_ner: note: {line}", file=sys.stderr), word_split=word_split
    )
    words, tags = split["tokens"], split["tags"]
    if to == "conll":
        written = write_conll(path, words, tags)
    elif to == "jsonl":
        lines = [json.dumps({"tokens": w, "tags": t}, ensure_ascii=False) for w, t in zip(words, tags)]
        written = write_atomically(path, "".join(line + "\n" for line in lines))
    else:
        texts, spans = zip(*(words_to_spans(w, t) for w, t in zip(words, tags))) if words else ((), ())
        written = write_atomically(path, span_records(texts, spans, to))
    entities = sum(len(get_entities(list(t))) for t in tags)
    print(f"{written}: {len(words)} texts, {sum(map(len, words))} words, {entities} entities ({to})")
    return written
