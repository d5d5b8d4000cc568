"""`lit_ner debug-data`: what a configured data set holds, and what training will make of it.

Run it with the same configs as `fit` (`lit_ner debug-data --config configs/wnut.yaml --config
configs/offline.yaml`); it reads the data and the tokenizer only, never the model. Per split:
sentences, words, entities per type, ill-formed BIO, sentences longer than the model takes (and
the windows they become), words the tokenizer turns into nothing; then the share of validation
and test entities never seen in training (WNUT-17's point: emerging entities). It prints a
report and writes `debug_data.json` and `debug_data.png` (length histogram, label counts).
"""

from __future__ import annotations

import json
import sys
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lit_ner.data.alignment import tokenize_and_align
from lit_ner.errors import LitNerError, exit_with
from lit_ner.files import write_atomically
from lit_ner.formats import SPLITS
from lit_ner.portable.spans import get_entities
from lit_ner.tag_schemes import ill_formed_bio

EXAMPLES = 5  # problem cases quoted per kind


def split_report(
    words: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    tokenizer: Any,
    max_length: int,
    stride: int,
    lines: Sequence[Sequence[int]] | None = None,
) -> dict[str, Any]:
    """One split's numbers. `lines` (each word's line in its file) lets problems be quoted as
    `line N`; without it they are quoted as `sentence S, word W` (0-based)."""

    def where(sentence: int, word: int) -> str:
        return f"line {lines[sentence][word]}" if lines else f"sentence {sentence}, word {word}"

    entities = [get_entities(list(sentence)) for sentence in tags]
    per_type = Counter(type_ for sentence in entities for type_, _, _ in sentence)
    ill_formed = [(n, i) for n, sentence in enumerate(tags) for i in ill_formed_bio(sentence)]
    encoding = tokenizer([list(s) for s in words], is_split_into_words=True, truncation=False, verbose=False)
    lengths = [len(ids) for ids in encoding["input_ids"]]
    long_sentences = [n for n, length in enumerate(lengths) if length > max_length]
    windows = window_counts(words, long_sentences, tokenizer, max_length, stride)
    empty_words = words_without_subword(words, encoding)
    return {
        "sentences": len(words),
        "words": sum(len(sentence) for sentence in words),
        "entities": sum(per_type.values()),
        "entities_per_type": dict(sorted(per_type.items())),
        "labels": dict(sorted(Counter(tag for sentence in tags for tag in sentence).items())),
        "ill_formed_bio": len(ill_formed),
        "ill_formed_bio_sentences": len({n for n, _ in ill_formed}),
        "ill_formed_bio_examples": [
            f"{where(n, i)}: {tags[n][i]!r} after {tags[n][i - 1] if i else 'the sentence start'!r}"
            for n, i in ill_formed[:EXAMPLES]
        ],
        "subword_lengths": lengths,
        "max_length": max_length,
        "longer_than_max_length": len(long_sentences),
        "windows_of_long_sentences": sum(windows[n] for n in long_sentences),
        "long_sentence_examples": [
            f"{where(n, 0)}: {lengths[n]} subword positions -> {windows[n]} windows"
            for n in long_sentences[:EXAMPLES]
        ],
        "words_without_subword": len(empty_words),
        "words_without_subword_examples": [
            f"{where(n, i)}: {words[n][i]!r}" for n, i in empty_words[:EXAMPLES]
        ],
    }


def window_counts(
    words: Sequence[Sequence[str]], long_sentences: list[int], tokenizer: Any, max_length: int, stride: int
) -> Counter:
    """How many windows each long sentence becomes, by sentence index: the same alignment and
    windowing as `fit`."""
    examples = tokenize_and_align(
        {
            "tokens": [list(words[n]) for n in long_sentences],
            "tags": [[0] * len(words[n]) for n in long_sentences],
            "sentence_id": long_sentences,
        },
        tokenizer=tokenizer,
        max_length=max_length,
        continuation_ids=None,
        stride=stride,
    )
    return Counter(examples["sentence_id"])


def words_without_subword(words: Sequence[Sequence[str]], encoding: Any) -> list[tuple[int, int]]:
    """`(sentence, word)` of every word the tokenizer turned into nothing (no subword position)."""
    empty_words = []
    for n in range(len(words)):
        reached = {w for w in encoding.word_ids(batch_index=n) if w is not None}
        empty_words += [(n, i) for i in range(len(words[n])) if i not in reached]
    return empty_words


def surface_forms(words: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    """Every entity mention as `(type, text)`, the words joined by spaces."""
    return [
        (type_, " ".join(sentence_words[start : end + 1]))
        for sentence_words, sentence_tags in zip(words, tags)
        for type_, start, end in get_entities(list(sentence_tags))
    ]


def novelty(train: list[tuple[str, str]], other: list[tuple[str, str]]) -> dict[str, float | int]:
    """How many of `other`'s entities never occur in `train`, the text compared exactly (as
    WNUT-17's scorer does) and lowercased, of the unique surface forms and of the mentions."""
    seen = {text for _, text in train}
    seen_lower = {text.lower() for text in seen}
    unique = {text for _, text in other}

    def share(count: int, total: int) -> float:
        return count / total if total else 0.0

    return {
        "unique_forms": len(unique),
        "unseen_forms": share(sum(text not in seen for text in unique), len(unique)),
        "unseen_forms_lowercased": share(sum(text.lower() not in seen_lower for text in unique), len(unique)),
        "mentions": len(other),
        "unseen_mentions": share(sum(text not in seen for _, text in other), len(other)),
    }


def data_report(datamodule: Any) -> dict[str, Any]:
    """`split_report` of every split the data module has, and the novelty of validation and
    test entities against train."""
    report: dict[str, Any] = {
        "label_names": list(datamodule.label_names),
        "tag_scheme": datamodule.tag_scheme,
        "splits": {},
        "unseen_in_train": {},
    }
    tokenizer, max_length, stride = datamodule.tokenizer, datamodule.max_length, datamodule.hparams.stride
    forms = {}
    for split in SPLITS:
        if not datamodule.has_split(split):
            continue
        words, tags = datamodule.words(split), datamodule.tags(split)
        lines = datamodule.get_split(split).get("lines")
        report["splits"][split] = split_report(words, tags, tokenizer, max_length, stride, lines)
        forms[split] = surface_forms(words, tags)
    if "train" in forms:
        for split in forms.keys() - {"train"}:
            report["unseen_in_train"][split] = novelty(forms["train"], forms[split])
    return report


def format_data_report(report: dict[str, Any]) -> str:
    scheme = report.get("tag_scheme", "IOB2")
    lines = [
        f"tags: {scheme}" + ("" if scheme == "IOB2" else ", read as BIO (the counts below are of BIO tags)")
    ]
    for split, numbers in report["splits"].items():
        lengths = sorted(numbers["subword_lengths"])
        percentile = lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))] if lengths else 0
        lines += [
            f"{split}: {numbers['sentences']:,} sentences, {numbers['words']:,} words, "
            f"{numbers['entities']:,} entities",
            "  entities per type: "
            + (
                ", ".join(f"{type_} {count}" for type_, count in numbers["entities_per_type"].items())
                or "none"
            ),
            f"  subword positions per sentence: median {lengths[len(lengths) // 2] if lengths else 0}, "
            f"95th percentile {percentile}, max {lengths[-1] if lengths else 0} (model maximum "
            f"{numbers['max_length']})",
            f"  ill-formed BIO: {numbers['ill_formed_bio']} I- tags continuing no entity, in "
            f"{numbers['ill_formed_bio_sentences']} sentences (read as entity starts, as seqeval's "
            "default mode)",
            *(f"    {example}" for example in numbers["ill_formed_bio_examples"]),
            f"  longer than {numbers['max_length']} subword positions: {numbers['longer_than_max_length']} "
            f"sentences, split into {numbers['windows_of_long_sentences']} overlapping windows "
            "(every word trained on and scored once)",
            *(f"    {example}" for example in numbers["long_sentence_examples"]),
            f"  words without any subword: {numbers['words_without_subword']} (scored as predicted O)",
            *(f"    {example}" for example in numbers["words_without_subword_examples"]),
        ]
    for split, numbers in report["unseen_in_train"].items():
        lines.append(
            f"{split} entities never seen in train: {numbers['unseen_forms']:.1%} of its "
            f"{numbers['unique_forms']} unique surface forms ({numbers['unseen_forms_lowercased']:.1%} "
            f"ignoring case), {numbers['unseen_mentions']:.1%} of its {numbers['mentions']} mentions"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """`lit_ner debug-data [--config ...] [--data.* ...] [--output DIR]`: parses `fit`'s configs as
    `fit` does (so `--help` lists every option with its type and default) and builds the data
    module alone; returns the report."""
    from lightning.pytorch.cli import LightningArgumentParser

    from lit_ner.data.datamodule import NERDataModule
    from lit_ner.model.module import TokenClassifier
    from lit_ner.plots import plot_data_report
    from lit_ner.training.cli import LitNerCLI

    class DataOnlyCLI(LitNerCLI):
        """The fit configuration, parsed as `fit` parses it; only the data module is built."""

        def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
            super().add_arguments_to_parser(parser)
            parser.add_argument("--output", default="runs/debug_data", help="where the JSON and PNG go")

        def instantiate_classes(self) -> None:
            self.datamodule = NERDataModule(**self.config["data"].as_dict())

    argv = sys.argv[2:] if argv is None else argv
    try:
        with warnings.catch_warnings():  # args given while sys.argv also has them: meant here
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
            cli = DataOnlyCLI(
                TokenClassifier, NERDataModule, run=False, args=argv, save_config_callback=None,
                parser_kwargs={"prog": "lit_ner debug-data", "description": __doc__.split("\n\n")[0]},
            )  # fmt: skip
        report = data_report(cli.datamodule)
    except LitNerError as exc:
        exit_with(exc)
    output = Path(cli.config["output"])
    write_atomically(output / "debug_data.json", json.dumps(report, indent=2) + "\n")
    plot_data_report(report, output / "debug_data.png")
    print(format_data_report(report))
    print(f"report: {output / 'debug_data.json'}, plots: {output / 'debug_data.png'}")
    return report
