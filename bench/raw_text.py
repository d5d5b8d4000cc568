"""Tagging against testing: an export's `Tagger` on WNUT-17's test split, given as people give text,
beside `fit`'s own test predictions of the same model. `make raw-text`; results in
`bench/raw_text.json`.

Usage: python bench/raw_text.py RUN_DIR [--out bench/raw_text.json]

RUN_DIR is a finished `fit` run (its `hf_model/` export and `predictions/test.conll`: word, gold,
predicted, e.g.
`runs/wnut-offline/version_0` after `make train OFFLINE=1`). Three inputs, each sentence one text:

- `tokens`: the sentence's tokens joined by single spaces, tagged with `word_split="whitespace"`
  (the words are the tokens): each sentence's entities are compared with the test predictions'
  (`same_sentences`), and the entity F1 of both against the gold tags is computed by seqeval.
  `tokens_bf16` is the same in bf16 autocast.
- `tokens_split`: the same texts with the default `word_split="punctuation"` (what `lit_ner tag`
  does with text it is not told is tokenized).
- `typed`: the tokens written back as people type them (`portable.words.typed_text`: "York !" ->
  "York!", "( via" -> "(via", "Apple 's" -> "Apple's"), gold entities kept on their characters;
  `typed_whitespace` tags them with `word_split="whitespace"`, as lit_ner split raw text before.

All but `tokens` are scored by exact character spans (type, start, end): precision, recall and
F1, micro over the split, as seqeval counts entities.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(Path(__file__).parent))

from results import machine  # noqa: E402

from lit_ner import Tagger  # noqa: E402
from lit_ner.formats import read_conll  # noqa: E402
from lit_ner.portable.spans import get_entities  # noqa: E402
from lit_ner.portable.words import joined_words, typed_text  # noqa: E402
from lit_ner.scoring import scores_and_report  # noqa: E402


def span_scores(gold: list[set], found: list[set]) -> dict[str, float]:
    """Micro precision, recall and F1 of exact (type, start, end) spans."""
    hits = sum(len(g & f) for g, f in zip(gold, found))
    n_gold, n_found = sum(map(len, gold)), sum(map(len, found))
    precision = hits / n_found if n_found else 0.0
    recall = hits / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "gold": n_gold, "found": n_found}


def char_spans(tags: list[str], words: list[str], starts: list[int]) -> set:
    return {(type_, starts[a], starts[b] + len(words[b])) for type_, a, b in get_entities(tags)}


def tagged_spans(entities: list[dict]) -> set:
    return {(e["entity_group"], e["start"], e["end"]) for e in entities}


def word_tags(entities: list[dict], starts: list[int], words: list[str]) -> list[str]:
    """BIO tags of the words from entities over their joined text (whole words only)."""
    tags = ["O"] * len(words)
    index = {start: i for i, start in enumerate(starts)}
    for e in entities:
        first = index[e["start"]]
        last = max(i for i, start in enumerate(starts) if start < e["end"])
        tags[first : last + 1] = [f"B-{e['entity_group']}"] + [f"I-{e['entity_group']}"] * (last - first)
    return tags


def markdown_table(results: dict) -> str:
    """docs/tagging.md's table (Raw text) of `bench/raw_text.json`."""
    tokens, bf16 = results["tokens"], results["tokens_bf16"]

    def spans(key: str) -> str:
        row = results[key]
        return f"{row['precision']:.4f} | {row['recall']:.4f}"

    same = f"{tokens['same_sentences']:,} of {tokens['sentences']:,}"
    return "\n".join(
        [
            "| input | how it is tagged | entity P | R | F1 | sentences with `fit`'s test entities |",
            "|---|---|---|---|---|---|",
            f'| the tokens joined by spaces | `word_split="whitespace"`, fp32 | {spans("tokens_split")} | '
            f"**{tokens['tag_f1']:.4f}** (`fit`'s test: {tokens['test_f1']:.4f}) | {same} |",
            f'| the tokens joined by spaces | `word_split="whitespace"`, bf16 | | | {bf16["tag_f1"]:.4f} | '
            f"{bf16['same_sentences']:,} of {bf16['sentences']:,} |",
            f"| the tokens joined by spaces | the default | {spans('tokens_split')} | "
            f"{results['tokens_split']['f1']:.4f} | |",
            f"| typed as people type (below) | the default | {spans('typed')} | "
            f"**{results['typed']['f1']:.4f}** | |",
            '| typed as people type | `word_split="whitespace"` (how lit_ner split raw text before) | '
            f"{spans('typed_whitespace')} | {results['typed_whitespace']['f1']:.4f} | |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "raw_text.json")
    parser.add_argument("--precision", default="32")
    args = parser.parse_args()
    predictions = read_conll(args.run_dir / "predictions" / "test.conll", tag_column=1)
    words, gold = predictions["tokens"], predictions["tags"]
    tested = read_conll(args.run_dir / "predictions" / "test.conll", tag_column=2)["tags"]
    results: dict = {"run_dir": str(args.run_dir), "machine": machine(), "precision": args.precision}
    export = args.run_dir / "hf_model"

    started = time.perf_counter()
    joined = [joined_words(sentence) for sentence in words]
    for key, precision in (("tokens", args.precision), ("tokens_bf16", "bf16")):
        tagger = Tagger.from_pretrained(export, precision=precision, word_split="whitespace")
        tagged = tagger.tag([text for text, _ in joined])
        tag_tags = [
            word_tags(found, starts, sentence) for found, (_, starts), sentence in zip(tagged, joined, words)
        ]
        differ = [i for i, (a, b) in enumerate(zip(tag_tags, tested)) if get_entities(a) != get_entities(b)]
        scores = scores_and_report(gold, tag_tags, "default")[0]
        results[key] = {
            "tag_precision": scores["precision"],
            "tag_recall": scores["recall"],
            "tag_f1": scores["f1"],
            "test_f1": scores_and_report(gold, tested, "default")[0]["f1"],
            "same_sentences": len(words) - len(differ),
            "sentences": len(words),
            "differing": [" ".join(words[i]) for i in differ[:10]],
        }
    gold_spans = [char_spans(g, w, s) for g, w, (_, s) in zip(gold, words, joined)]
    split_tagger = Tagger.from_pretrained(export, precision=args.precision)
    whitespace_tagger = Tagger.from_pretrained(export, precision=args.precision, word_split="whitespace")
    results["tokens_split"] = span_scores(
        gold_spans, [tagged_spans(f) for f in split_tagger.tag([t for t, _ in joined])]
    )
    typed = [typed_text(sentence) for sentence in words]
    typed_gold = [char_spans(g, w, s) for g, w, (_, s) in zip(gold, words, typed)]
    for key, tagger in (("typed", split_tagger), ("typed_whitespace", whitespace_tagger)):
        results[key] = span_scores(typed_gold, [tagged_spans(f) for f in tagger.tag([t for t, _ in typed])])
    results["typed_examples"] = [text for text, _ in typed[:5]]
    results["minutes"] = round((time.perf_counter() - started) / 60, 2)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(
        json.dumps({k: v for k, v in results.items() if k != "typed_examples"}, indent=2, ensure_ascii=False)
    )


if __name__ == "__main__":
    main()
