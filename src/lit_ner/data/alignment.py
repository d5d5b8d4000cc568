"""From words and word labels to subword model inputs, and back: the tutorial's label
alignment, windows for sentences longer than the model takes, and dynamic-padding collation.

`TokenClassificationCollator` is lit_ner's own rather than transformers'
`DataCollatorForTokenClassification`, which pads `labels` only: word-level scoring also needs each
word's gold label and where it starts (`word_labels`, `word_index`), and each row's sentence id and
word offset to join a long sentence's windows back together.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lit_ner.portable.windows import sentence_windows
from lit_ner.portable.word_shapes import word_shape

IGNORE_INDEX = -100  # what torch's cross-entropy and seqeval-style scoring skip
# What `tokenize_and_align` makes of each sentence (or window of a long sentence).
EXAMPLE_COLUMNS = (
    "input_ids",
    "attention_mask",
    "labels",
    "shape_ids",
    "word_labels",
    "word_index",
    "sentence_id",
    "word_offset",
    "unlabelled_words",
    "n_windows",
    "closes_sentence",
)


def continuation_label_ids(label_names: Sequence[str]) -> list[int]:
    """For each label id, the id a word's continuation subwords get under `label_all_tokens`:
    B-X becomes I-X (when the label set has it), everything else stays."""
    index = {name: i for i, name in enumerate(label_names)}
    return [
        index.get("I-" + name[2:], i) if name.startswith("B-") else i for i, name in enumerate(label_names)
    ]


def align_labels(
    word_ids: Sequence[int | None],
    word_labels: Sequence[int],
    continuation_ids: Sequence[int] | None = None,
) -> list[int]:
    """Spreads word labels over subword positions, the tutorial's way.

    Special tokens (`word_id is None`) get -100. The first subword of each word gets the word's
    label. Continuation subwords get -100, or with `continuation_ids` (`label_all_tokens`) the
    continuation label of their word (B-X -> I-X).
    """
    labels = []
    previous = None
    for word_id in word_ids:
        if word_id is None:
            labels.append(IGNORE_INDEX)
        elif word_id != previous:
            labels.append(word_labels[word_id])
        elif continuation_ids is not None:
            labels.append(continuation_ids[word_labels[word_id]])
        else:
            labels.append(IGNORE_INDEX)
        previous = word_id
    return labels


def tokenize_and_align(
    batch: dict[str, list],
    tokenizer: Any,
    max_length: int | None,
    continuation_ids: Sequence[int] | None,
    stride: int = 128,
    contexts: Sequence[Sequence[str]] | None = None,
) -> dict[str, list]:
    """`datasets.map(batched=True)` function: sentences -> model inputs with aligned labels.

    A sentence that fits in `max_length` subword positions (special tokens included) becomes one
    example; a longer one becomes overlapping windows of whole words (`windows.sentence_windows`), so
    that no word is lost to truncation. Each example keeps:
    - `labels`: subword-level labels for the loss (the words the example owns, first subwords;
      everything else -100);
    - `shape_ids`: per subword position, the shape of its word from the original characters
      (`word_shapes`; 0 on special tokens), for `--model.word_features`;
    - `word_labels`: the gold label of every word it owns, words without any subword included;
    - `word_index`: per subword position, the index among the owned words of the word it starts,
      else -1;
    - `sentence_id` and `word_offset` (the sentence's index of the first owned word), so that
      scoring can put a sentence's windows back together; `n_windows` (how many the sentence has)
      and `closes_sentence` (1 when the owned words run to the sentence's end): a CRF scores a
      window's start and end as a sentence's only where they are one;
    - `unlabelled_words`: owned words with no subword position (turned into nothing by the
      tokenizer), which are scored as predicted `O`.

    With `contexts` (per sentence id, words: `data.retrieved_context`), a sentence that fits is
    followed by its context as a second segment (`[CLS] sentence [SEP] context [SEP]`), cut to
    `max_length`; context positions carry no label, no word and no shape.
    """
    max_length = max_length or tokenizer.model_max_length
    sentence_ids = batch.get("sentence_id") or [-1] * len(batch["tokens"])
    encoding = tokenizer(batch["tokens"], is_split_into_words=True, truncation=False, verbose=False)
    out: dict[str, list] = {name: [] for name in EXAMPLE_COLUMNS}
    if contexts is not None:  # what a second segment adds: BERT's [SEP], RoBERTa's </s></s>
        separators = tokenizer.num_special_tokens_to_add(pair=True) - tokenizer.num_special_tokens_to_add()
    for i, word_labels in enumerate(batch["tags"]):
        shapes = [word_shape(word) for word in batch["tokens"][i]]
        ids, word_ids = encoding["input_ids"][i], encoding.word_ids(batch_index=i)
        context = contexts[sentence_ids[i]] if contexts is not None else []
        # Room for the pair's separators (one for BERT, two for RoBERTa's </s></s>) and some context.
        if context and len(word_ids) + separators < max_length:
            pair = tokenizer(
                batch["tokens"][i], list(context), is_split_into_words=True, truncation="only_second",
                max_length=max_length, verbose=False,
            )  # fmt: skip
            ids = pair["input_ids"]
            word_ids = [
                w if segment == 0 else None for w, segment in zip(pair.word_ids(), pair.sequence_ids())
            ]
        windows = sentence_windows(word_ids, len(word_labels), max_length, stride)
        for positions, own_first, own_last in windows:
            example = window_example(
                [ids[p] for p in positions],
                [word_ids[p] for p in positions],
                own_first,
                own_last,
                word_labels,
                shapes,
                continuation_ids,
            )
            example.update(sentence_id=sentence_ids[i], n_windows=len(windows))
            for name in EXAMPLE_COLUMNS:
                out[name].append(example[name])
    return out


def window_example(
    window_ids: list[int],
    window_word_ids: list[int | None],
    own_first: int,
    own_last: int,
    word_labels: Sequence[int],
    shapes: Sequence[int],
    continuation_ids: Sequence[int] | None,
) -> dict[str, Any]:
    """One example's columns (all of `EXAMPLE_COLUMNS` but `sentence_id` and `n_windows`), trained
    and scored on the words `[own_first, own_last)` of its sentence."""
    # Context words outside the owned range are seen but neither trained on nor scored.
    owned_ids = [w if w is not None and own_first <= w < own_last else None for w in window_word_ids]
    starts = [
        w - own_first if w is not None and w != previous else -1
        for w, previous in zip(owned_ids, [None, *owned_ids])
    ]
    return {
        "input_ids": window_ids,
        "attention_mask": [1] * len(window_ids),
        "labels": align_labels(owned_ids, word_labels, continuation_ids),
        "shape_ids": [0 if w is None else shapes[w] for w in window_word_ids],
        "word_labels": word_labels[own_first:own_last],
        "word_index": starts,
        "word_offset": own_first,
        "unlabelled_words": own_last - own_first - sum(s >= 0 for s in starts),
        "closes_sentence": int(own_last == len(word_labels)),
    }


@functools.cache
def alignment_code() -> str:
    """The source of the code that shapes an aligned example (this module, the word windows and
    the word shapes): the tokenized-data cache is keyed on it, so that changing any of it
    re-tokenizes, with no version to remember to bump. (Without source files, as in a
    byte-compiled install, the package's version stands in.)"""
    import inspect

    from lit_ner import __version__
    from lit_ner.portable import windows, word_shapes

    try:
        return "".join(inspect.getsource(code) for code in (sys.modules[__name__], windows, word_shapes))
    except OSError:
        return __version__


def alignment_report(
    split: str,
    n_windows: Sequence[int],
    word_offsets: Sequence[int],
    unlabelled_words: Sequence[int],
    max_length: int,
    stride: int,
) -> tuple[str, str | None]:
    """What `tokenize_and_align` did to a split, from its `n_windows`, `word_offset` and
    `unlabelled_words` columns: a line on the sentences and their windows, and a warning when
    some words have no subword position (or None)."""
    # A sentence's first example is the one that starts at its word 0.
    firsts = [n for n, offset in zip(n_windows, word_offsets) if offset == 0]
    message = f"{split}: {len(firsts)} sentences"
    long_sentences = [n for n in firsts if n > 1]
    if long_sentences:
        message += (
            f"; {len(long_sentences)} longer than {max_length} subword positions, each split into "
            f"overlapping windows ({sum(long_sentences)} windows, stride {stride}): "
            "every word is trained on and scored once"
        )
    unlabelled = sum(unlabelled_words)
    warning = None
    if unlabelled:
        warning = (
            f"{split}: {unlabelled} word{'s' * (unlabelled != 1)} without any subword position (the "
            "tokenizer turns them into nothing, e.g. zero-width or control characters); they are "
            "not trained on, and are "
            "scored as predicted 'O' (a miss where they belong to an entity)"
        )
    return message, warning


@dataclass
class TokenClassificationCollator:
    """Pads a list of examples to the longest one in the batch (dynamic padding).

    transformers' `DataCollatorForTokenClassification` pads `input_ids` and `labels` only; this
    one also pads the word-level columns that scoring needs (`word_labels`, `word_index`).

    Args:
        pad_token_id: the tokenizer's padding id for `input_ids`.
        pad_to_multiple_of: round the padded length up to a multiple of this (tensor cores like 8).
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, examples: list[dict[str, Any]] | dict[str, list[Any]]) -> dict[str, torch.Tensor]:
        if isinstance(examples, dict):  # a whole batch fetched at once: columns, not rows
            examples = [dict(zip(examples, row)) for row in zip(*examples.values())]
        length = max(len(example["input_ids"]) for example in examples)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(examples), length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(examples), length), dtype=torch.long)
        labels = torch.full((len(examples), length), IGNORE_INDEX, dtype=torch.long)
        with_shapes = "shape_ids" in examples[0]
        shape_ids = torch.zeros((len(examples), length), dtype=torch.long)
        for row, example in enumerate(examples):
            n = len(example["input_ids"])
            input_ids[row, :n] = torch.tensor(example["input_ids"])
            attention_mask[row, :n] = 1
            labels[row, :n] = torch.tensor(example["labels"])
            if with_shapes:
                shape_ids[row, :n] = torch.tensor(example["shape_ids"])
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        if with_shapes:
            batch["shape_ids"] = shape_ids
        if "word_labels" in examples[0]:
            # Word-level scoring: every word's gold label, and where each word starts.
            n_words = max(len(example["word_labels"]) for example in examples)
            batch["word_labels"] = torch.full((len(examples), n_words), IGNORE_INDEX, dtype=torch.long)
            batch["word_index"] = torch.full((len(examples), length), -1, dtype=torch.long)
            for row, example in enumerate(examples):
                word_labels, word_index = example["word_labels"], example["word_index"]
                batch["word_labels"][row, : len(word_labels)] = torch.tensor(word_labels)
                batch["word_index"][row, : len(word_index)] = torch.tensor(word_index)
        # Where each row sits in its sentence: joining windows back, and the CRF's sentence edges.
        for name in ("sentence_id", "word_offset", "n_windows", "closes_sentence"):
            if name in examples[0]:
                batch[name] = torch.tensor([example[name] for example in examples])
        return batch
