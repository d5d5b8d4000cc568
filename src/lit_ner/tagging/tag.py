"""`lit_ner tag`: a file of texts (one per line, or JSONL with a text field) tagged by a `Tagger`,
written as JSONL with each text's entities, or as pre-annotations for Label Studio or doccano."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from lit_ner.errors import LitNerError
from lit_ner.files import plain_suffix, read_text, write_atomically
from lit_ner.tagging.aggregation import Aggregation
from lit_ner.tagging.tagger import Tagger


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
    jsonl = plain_suffix(path) in {".jsonl", ".json"}
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


def to_json(entities: list[dict]) -> list[dict]:
    """The pipeline's entities with plain Python numbers (its scores are numpy floats)."""
    return [
        {key: value.item() if hasattr(value, "item") else value for key, value in e.items()} for e in entities
    ]


def tag(
    input: str,
    *,
    model: str,
    output: str | None = None,
    aggregation_strategy: Aggregation = "simple",
    text_field: str = "text",
    format: Literal["jsonl", "label-studio", "doccano"] = "jsonl",
    **tagger: Any,
) -> int:
    """Tags each text of a file and writes one JSON object per text, its entities added.

    Args:
        input: a text file (one text per line) or JSONL (`.jsonl`/`.json`) objects with a text field.
        model: an export (hf_model/), a Hub id or a lit_ner .ckpt.
        output: write the JSONL here (atomically) instead of to stdout.
        aggregation_strategy: how subword predictions become entities (the pipeline's; argmax
            decoding only).
        text_field: the JSONL field holding the text; the other fields are passed through.
        format: "jsonl" (each record with its entities, the pipeline's dicts), or pre-annotations
            for an annotation tool to import and a person to correct: "label-studio" (a JSON list
            of tasks, the entities as `predictions`) or "doccano" (JSONL).
        **tagger: `Tagger.from_pretrained`'s options (trust_remote_code, batch_size, device,
            precision, stride, threads, decoding, max_padding, word_split: `punctuation` for raw
            text, `whitespace` for text already tokenized).

    Returns:
        The exit status: 1 when some lines were skipped (each named on stderr), else 0.
    """
    if format != "jsonl" and aggregation_strategy == "none":
        raise LitNerError(
            f"--format {format} writes entity spans: use an aggregation_strategy other than none"
        )
    records, problems = read_texts(input, text_field)
    for problem in problems:
        print(f"lit_ner: warning: {problem}", file=sys.stderr)
    tagger_ = Tagger.from_pretrained(model, **tagger)
    texts = [record["text"] for _, record in records]
    entities = [to_json(found) for found in tagger_.tag(texts, aggregation_strategy)]
    if format == "jsonl":
        lines = [
            json.dumps({**record, "entities": found}, ensure_ascii=False)
            for (_, record), found in zip(records, entities)
        ]
        text = "".join(line + "\n" for line in lines)
    else:
        from lit_ner.annotations import span_records

        spans = [[(e["start"], e["end"], e["entity_group"]) for e in found] for found in entities]
        scores = [[e["score"] for e in found] for found in entities] if format == "label-studio" else None
        extra = [{k: v for k, v in record.items() if k != "text"} for _, record in records]
        text = span_records(texts, spans, format, scores, extra)
    if output:
        write_atomically(output, text)
    else:
        sys.stdout.write(text)
    return 1 if problems else 0
