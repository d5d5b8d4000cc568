"""WNUT-17 (or any word-level BIO data) as a LightningDataModule.

Sources, in the order they are looked for:
1. per-split files (`train_file`, `validation_file`, `test_file`): CoNLL (token first, tag last
   column) or JSONL (`{"tokens": [...], "tags": [...]}` per line);
2. a directory holding the official WNUT-17 release (`data_dir`, or `$WNUT17_DIR` when the
   configured data set is WNUT-17);
3. a Hugging Face Hub data set with a tokens column and a `Sequence(ClassLabel)` tags column.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader, DistributedSampler

from lit_ner.errors import LitNerError
from lit_ner.hub import hub_errors, resolve_name_or_path

IGNORE_INDEX = -100  # what torch's cross-entropy and seqeval-style scoring skip

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
WNUT17_FILES = {
    "train": "wnut17train.conll",
    "validation": "emerging.dev.conll",
    "test": "emerging.test.annotated",
}
WNUT17_HUB_NAMES = {"leondz/wnut_17", "wnut_17"}
SPLITS = ("train", "validation", "test")
# What `tokenize_and_align` makes of each sentence (or window of a long sentence).
EXAMPLE_COLUMNS = (
    "input_ids",
    "attention_mask",
    "labels",
    "word_labels",
    "word_index",
    "sentence_id",
    "word_offset",
    "unlabelled_words",
    "n_windows",
)

Split = dict[str, list[list[Any]]]  # {"tokens": [[word]], "tags": [[tag]], "lines": [[line number]]}


# --- reading files ---------------------------------------------------------------------------


def read_text(path: str | Path) -> str:
    """A UTF-8 text file's contents (a BOM dropped); a missing file, a directory or bytes that
    are not UTF-8 raise a `LitNerError` naming the file (and the line of the first bad byte)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LitNerError(f"{path}: no such file") from None
    except OSError as exc:
        raise LitNerError(f"{path}: cannot read ({exc.strerror})") from None
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, "\n".join(lines) + "\n")
    return path


def write_atomically(path: Path, text: str) -> None:
    """Writes a text file so that a kill mid-write leaves the previous file whole: written
    beside it first, then renamed over it."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


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
    """Reads a split from a `.jsonl`/`.json` file or, for any other suffix, a CoNLL file."""
    return read_jsonl(path) if Path(path).suffix in {".jsonl", ".json"} else read_conll(path)


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


# --- alignment and collation -----------------------------------------------------------------


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


def plan_windows(
    word_spans: Sequence[tuple[int, int]], budget: int, stride: int
) -> list[tuple[int, int, int, int]]:
    """Splits a sentence too long for the model into overlapping windows of whole words.

    Args:
        word_spans: per word, its `[start, end)` subword positions (without special tokens); a
            word that tokenizes to nothing has `start == end`.
        budget: subword positions a window may hold (the model's maximum minus special tokens).
        stride: subword positions consecutive windows share, so that words near a window's edge
            still see context.

    Returns:
        Per window `(first, last, own_first, own_last)`: the words `[first, last)` it holds and
        the words `[own_first, own_last)` it is trained and scored on. The owned ranges cover
        every word exactly once; an overlap is shared at its middle, so each owned word keeps
        about `stride / 2` positions of context on either side. A single word longer than
        `budget` gets a window of its own, cut to its first `budget` subwords (its label sits on
        the first one).

    >>> plan_windows([(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)], budget=3, stride=1)
    [(0, 3, 0, 2), (2, 5, 2, 5)]
    """
    n = len(word_spans)
    windows: list[list[int]] = []
    first = 0
    while True:
        last = first + 1
        while last < n and word_spans[last][1] - word_spans[first][0] <= budget:
            last += 1
        windows.append([first, last, first, last])
        if last == n:
            break
        # The next window starts at the first word of this one's last `stride` positions, later
        # than this one starts and early enough to reach past where this one ends.
        following = last
        while (
            following - 1 > first
            and word_spans[last - 1][1] - word_spans[following - 1][0] <= stride
            and word_spans[last][1] - word_spans[following - 1][0] <= budget
        ):
            following -= 1
        first = following
    for previous, window in zip(windows, windows[1:]):
        middle = (window[0] + previous[1]) // 2
        previous[3] = window[2] = middle
    return [tuple(window) for window in windows]  # type: ignore[misc]


def tokenize_and_align(
    batch: dict[str, list],
    tokenizer: Any,
    max_length: int | None,
    continuation_ids: Sequence[int] | None,
    stride: int = 128,
) -> dict[str, list]:
    """`datasets.map(batched=True)` function: sentences -> model inputs with aligned labels.

    A sentence that fits in `max_length` subword positions (special tokens included) becomes one
    example; a longer one becomes overlapping windows (`plan_windows`), so that no word is lost to
    truncation. Each example keeps:
    - `labels`: subword-level labels for the loss (the words the example owns, first subwords;
      everything else -100);
    - `word_labels`: the gold label of every word it owns, words without any subword included;
    - `word_index`: per subword position, the index among the owned words of the word it starts,
      else -1;
    - `sentence_id` and `word_offset` (the sentence's index of the first owned word), so that
      scoring can put a sentence's windows back together;
    - `unlabelled_words`: owned words with no subword position (turned into nothing by the
      tokenizer), which are scored as predicted `O`.
    """
    max_length = max_length or tokenizer.model_max_length
    sentence_ids = batch.get("sentence_id") or [-1] * len(batch["tokens"])
    encoding = tokenizer(batch["tokens"], is_split_into_words=True, truncation=False, verbose=False)
    out: dict[str, list] = {name: [] for name in EXAMPLE_COLUMNS}
    for i, word_labels in enumerate(batch["tags"]):
        ids = encoding["input_ids"][i]
        word_ids = encoding.word_ids(batch_index=i)
        content = [p for p, w in enumerate(word_ids) if w is not None]
        fits = len(ids) <= max_length
        if fits:
            windows = [(0, len(word_labels), 0, len(word_labels))]
            prefix, suffix = [], []
        else:
            # Specials (e.g. [CLS] ... [SEP]) surround the content: keep them around every window.
            prefix, suffix = ids[: content[0]], ids[content[-1] + 1 :]
            spans, position, by_word = [], 0, {}
            for p in content:
                by_word.setdefault(word_ids[p], [p - content[0], 0])[1] = p - content[0] + 1
            for w in range(len(word_labels)):
                start, position = by_word.get(w, (position, position))
                spans.append((start, position))
            budget = max_length - len(prefix) - len(suffix)
            windows = plan_windows(spans, budget, min(stride, budget // 2))
        for first, last, own_first, own_last in windows:
            if fits:
                window_ids, window_word_ids = ids, word_ids
            else:
                start = spans[first][0]
                end = min(spans[last - 1][1], start + budget)
                window_ids = prefix + ids[content[0] + start : content[0] + end] + suffix
                window_word_ids = (
                    [None] * len(prefix)
                    + word_ids[content[0] + start : content[0] + end]
                    + [None] * len(suffix)
                )
            # Context words outside the owned range are seen but neither trained on nor scored.
            owned_ids = [w if w is not None and own_first <= w < own_last else None for w in window_word_ids]
            labels = align_labels(owned_ids, word_labels, continuation_ids)
            starts = [
                w - own_first if w is not None and w != previous else -1
                for w, previous in zip(owned_ids, [None, *owned_ids])
            ]
            out["input_ids"].append(window_ids)
            out["attention_mask"].append([1] * len(window_ids))
            out["labels"].append(labels)
            out["word_labels"].append(word_labels[own_first:own_last])
            out["word_index"].append(starts)
            out["sentence_id"].append(sentence_ids[i])
            out["word_offset"].append(own_first)
            out["unlabelled_words"].append(own_last - own_first - sum(s >= 0 for s in starts))
            out["n_windows"].append(len(windows))
    return out


@dataclass
class TokenClassificationCollator:
    """Pads a list of examples to the longest one in the batch (dynamic padding).

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
        for row, example in enumerate(examples):
            n = len(example["input_ids"])
            input_ids[row, :n] = torch.tensor(example["input_ids"])
            attention_mask[row, :n] = 1
            labels[row, :n] = torch.tensor(example["labels"])
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        if "word_labels" in examples[0]:
            # Word-level scoring: every word's gold label, and where each word starts.
            n_words = max(len(example["word_labels"]) for example in examples)
            batch["word_labels"] = torch.full((len(examples), n_words), IGNORE_INDEX, dtype=torch.long)
            batch["word_index"] = torch.full((len(examples), length), -1, dtype=torch.long)
            for row, example in enumerate(examples):
                word_labels, word_index = example["word_labels"], example["word_index"]
                batch["word_labels"][row, : len(word_labels)] = torch.tensor(word_labels)
                batch["word_index"][row, : len(word_index)] = torch.tensor(word_index)
        for name in ("sentence_id", "word_offset"):
            if name in examples[0]:
                batch[name] = torch.tensor([example[name] for example in examples])
        return batch


# --- sampling -------------------------------------------------------------------------------


def batch_sizes(n_sentences: int, n_batches: int, batch_size: int) -> list[int]:
    """Sizes of `n_batches` batches that hold `n_sentences` exactly once: as many full batches as
    possible, the rest shared evenly (each at least 1). With one process this is the usual
    `batch_size`-sized batches and a smaller last one; under DDP it fills the few extra batches
    that give every process as many, instead of repeating sentences. (Only with `batch_size` 1
    can the sentences outnumber the places: then some batches hold 2.)"""
    if n_sentences < n_batches:
        raise ValueError(f"{n_sentences} sentences cannot fill {n_batches} batches")
    if n_sentences >= n_batches * batch_size:
        return [n_sentences // n_batches + (i < n_sentences % n_batches) for i in range(n_batches)]
    full = min(n_batches, (n_sentences - n_batches) // (batch_size - 1))
    rest, n_rest = n_sentences - full * batch_size, n_batches - full
    return [batch_size] * full + [rest // n_rest + (i < rest % n_rest) for i in range(n_rest)]


class LengthGroupedSampler(DistributedSampler):
    """The training batches of one process (yields lists of example indices).

    Every epoch: shuffle by `(seed, epoch)`; with `group_by_length`, cut the order into chunks of
    `group_size` optimizer steps and sort each chunk by length, so a batch holds sentences of
    similar length and pads little; cut into batches (every sentence exactly once across all
    processes: no sentence repeated, none dropped); give each process one batch of every step
    (neighbours in length, so no process waits on a longer batch), and shuffle the steps, the
    longest first so that running out of memory shows at once. Every process gets the same number
    of batches. It is a `DistributedSampler`, so Lightning keeps it under DDP.

    Lightning's checkpoints keep the loop's position but not the sampler's, so a run resumed
    mid-epoch would otherwise see a fresh order; `resume_at(epoch, n)` makes the next pass over
    `epoch` skip the `n` batches the interrupted run had already trained on.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        group_by_length: bool = True,
        group_size: int = 50,
    ) -> None:
        super().__init__(lengths, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.group_by_length = group_by_length
        self.group_size = group_size
        if len(self.lengths) < num_replicas:
            raise LitNerError(
                f"{len(self.lengths)} training sentences cannot give each of {num_replicas} processes a batch"
            )
        self.steps = -(-len(self.lengths) // (batch_size * num_replicas))
        if self.steps * num_replicas > len(self.lengths):  # only with batch_size 1: fewer, fuller steps
            self.steps = len(self.lengths) // num_replicas
        self._resume: tuple[int, int] | None = None

    def resume_at(self, epoch: int, batches_done: int) -> None:
        self._resume = (epoch, batches_done)

    def steps_of_epoch(self, epoch: int) -> list[list[list[int]]]:
        """All processes' batches of an epoch, by optimizer step: `[step][rank] -> indices`."""
        generator = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        width = self.num_replicas
        if self.group_by_length:
            chunk = self.group_size * self.batch_size * width
            order = [
                i
                for start in range(0, len(order), chunk)
                for i in sorted(order[start : start + chunk], key=lambda i: -self.lengths[i])
            ]
        batches, position = [], 0
        for size in batch_sizes(len(order), self.steps * width, self.batch_size):
            batches.append(order[position : position + size])
            position += size
        steps = [batches[k * width : (k + 1) * width] for k in range(self.steps)]
        steps = [steps[k] for k in torch.randperm(len(steps), generator=generator).tolist()]
        if self.group_by_length:
            longest = max(range(len(steps)), key=lambda k: max(self.lengths[i] for i in steps[k][0]))
            steps.insert(0, steps.pop(longest))
        return steps

    def __iter__(self) -> Iterator[list[int]]:
        # A generator: the order is drawn at the first batch, not when the DataLoader makes its
        # iterator. Lightning may make that iterator before `set_epoch` (a mid-epoch resume does).
        batches = [step[self.rank] for step in self.steps_of_epoch(self.epoch)]
        if self._resume is not None and self._resume[0] == self.epoch:
            batches = batches[self._resume[1] :]
        self._resume = None
        yield from batches

    def __len__(self) -> int:
        return self.steps


class SortedSampler(DistributedSampler):
    """Validation, test and predict order: longest first, so that each batch pads little. Under
    DDP each process takes every `num_replicas`-th sentence of that order; the few repeated to
    give every process as many (the shortest) are scored and written once, by sentence id."""

    def __init__(self, lengths: Sequence[int], num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(lengths, num_replicas=num_replicas, rank=rank, shuffle=False)
        self.lengths = list(lengths)

    def __iter__(self) -> Iterator[int]:
        order = sorted(range(len(self.lengths)), key=lambda i: -self.lengths[i])
        # The shortest sentences repeated, to give every process as many.
        order += [order[-1 - k % len(order)] for k in range(self.total_size - len(order))]
        return iter(order[self.rank : self.total_size : self.num_replicas])


# --- the DataModule --------------------------------------------------------------------------


class NERDataModule(L.LightningDataModule):
    """Word-level NER data, tokenized and aligned for a transformer token classifier.

    Args:
        dataset_name: Hub data set id; used when no files and no WNUT-17 directory are given.
        dataset_revision: Hub revision. WNUT-17's loading script is gone from the Hub since
            datasets 4; its parquet conversion at `refs/convert/parquet` is what loads.
        dataset_config_name: Hub data set configuration, if it has several.
        data_dir: directory with the official WNUT-17 release files. Defaults to `$WNUT17_DIR`
            when `dataset_name` is WNUT-17 (or unset).
        train_file: a CoNLL or JSONL file for the train split (overrides the other sources).
        validation_file: the same for the validation split.
        test_file: the same for the test split.
        tokens_column: the Hub data set's column of word lists.
        tags_column: the Hub data set's column of `ClassLabel` tag ids.
        label_names: the label set, in id order. By default it comes from the data: the Hub
            data set's ClassLabel names, WNUT-17's order for the WNUT-17 files, and otherwise
            `O` followed by the file tags sorted by type then B-/I-. Linked to the model.
        tokenizer_name_or_path: linked from `model.model_name_or_path`.
        max_length: subword positions per example, special tokens included; defaults to the
            tokenizer's maximum. A longer sentence is split into overlapping windows (counted and
            reported), never truncated.
        stride: subword positions that consecutive windows of a long sentence share; each word
            is trained on and scored in the window where it sits farther from the edge.
        strict_bio: refuse files with ill-formed BIO (an I- tag after `O` or after another type)
            instead of reading it as seqeval's default mode does (counted and reported).
        label_all_tokens: label continuation subwords with their word's I- tag instead of -100.
        batch_size: training sentences per batch (per device under DDP).
        group_by_length: batch training sentences of similar length together (shuffled chunks
            sorted by length, batches shuffled; see `LengthGroupedSampler`), which cuts padding;
            off: random batches. Validation, test and predict batches are always sorted by length.
        group_size: optimizer steps per length-sorted chunk; larger pads less but makes the
            batches of a chunk less random.
        eval_batch_size: sentences per batch for validation, test and predict (default:
            `batch_size`).
        pad_to_multiple_of: round each batch's padded length up to a multiple of this.
        num_workers: DataLoader worker processes.
        predict_split: the split `predict` runs over.
        cache_dir: where tokenized file splits are cached (default: the datasets cache).
        trust_remote_code: linked from `model.trust_remote_code`: run code a Hub tokenizer ships.
    """

    def __init__(
        self,
        dataset_name: str | None = "leondz/wnut_17",
        dataset_revision: str | None = "refs/convert/parquet",
        dataset_config_name: str | None = None,
        data_dir: str | None = None,
        train_file: str | None = None,
        validation_file: str | None = None,
        test_file: str | None = None,
        tokens_column: str = "tokens",
        tags_column: str = "ner_tags",
        label_names: list[str] | None = None,
        tokenizer_name_or_path: str = "distilbert/distilbert-base-uncased",
        max_length: int | None = None,
        stride: int = 128,
        strict_bio: bool = False,
        label_all_tokens: bool = False,
        batch_size: int = 16,
        group_by_length: bool = True,
        group_size: int = 50,
        eval_batch_size: int | None = None,
        pad_to_multiple_of: int | None = None,
        num_workers: int = 0,
        predict_split: str = "test",
        cache_dir: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        super().__init__()
        # label_names is resolved from the data and recorded once, in the model's hparams (the
        # linked copy); Lightning refuses to log two different values under one key.
        self.save_hyperparameters(ignore=["label_names"])
        self._tokenizer = None
        self._hub_dataset = None
        self._seed: int | None = None
        # (epoch, batches done, processes) from a checkpoint
        self._resume: tuple[int, int, int] | None = None
        self.datasets: dict[str, Any] = {}
        self._example_lengths: dict[str, list[int]] = {}
        self.files = self._resolve_files()
        # Files are small and their label set is needed before the model exists, so read now.
        self.raw: dict[str, Split] = {split: read_split_file(path) for split, path in self.files.items()}
        self._label_names = list(label_names) if label_names else None
        self._labels_from_files = not label_names
        if self.files:
            self._check_tags()

    # Where the data comes from.

    def _resolve_files(self) -> dict[str, Path]:
        hp = self.hparams
        files = {s: f for s, f in zip(SPLITS, (hp.train_file, hp.validation_file, hp.test_file)) if f}
        if files:
            return {split: Path(path) for split, path in files.items()}
        data_dir = hp.data_dir
        if data_dir is None and (hp.dataset_name is None or hp.dataset_name in WNUT17_HUB_NAMES):
            data_dir = os.environ.get("WNUT17_DIR") or None
        if data_dir is None:
            if hp.dataset_name is None:
                raise LitNerError(
                    "no data: set --data.data_dir (or WNUT17_DIR) to the WNUT-17 release, "
                    "--data.train_file etc., or --data.dataset_name"
                )
            return {}
        files = {split: Path(data_dir) / name for split, name in WNUT17_FILES.items()}
        missing = [str(path) for path in files.values() if not path.is_file()]
        if missing:
            raise LitNerError(f"WNUT-17 directory {data_dir}: missing {', '.join(missing)}")
        return files

    @property
    def is_wnut17_release(self) -> bool:
        return bool(self.files) and all(self.files.get(s, Path()).name == n for s, n in WNUT17_FILES.items())

    @property
    def label_names(self) -> list[str]:
        """The label set in id order (linked to `model.label_names`)."""
        if self._label_names is None:
            if self.files:
                all_tags = {
                    tag for split in self.raw.values() for sentence in split["tags"] for tag in sentence
                }
                self._label_names = WNUT17_LABELS if self.is_wnut17_release else bio_label_order(all_tags)
            else:
                self._label_names = self._hub_label_names()
        return self._label_names

    def _hub_label_names(self) -> list[str]:
        hp = self.hparams
        features = next(iter(self._load_hub().values())).features
        for column in (hp.tokens_column, hp.tags_column):
            if column not in features:
                raise LitNerError(
                    f"data set '{hp.dataset_name}' has no column '{column}' (it has {list(features)})"
                )
        names = getattr(getattr(features[hp.tags_column], "feature", None), "names", None)
        if not names:
            raise LitNerError(
                f"data set '{hp.dataset_name}': column '{hp.tags_column}' is not a sequence of ClassLabel; "
                "set --data.label_names to the tag names in id order"
            )
        return list(names)

    def _check_tags(self) -> None:
        """Every tag must be a label; with labels read from the files, the evaluation splits may
        hold no tag that train lacks (the model could never predict it); ill-formed BIO is
        counted and reported, or refused with `strict_bio`."""
        known = set(self.label_names)
        train_tags = None
        if self._labels_from_files and "train" in self.raw:
            train_tags = {tag for sentence in self.raw["train"]["tags"] for tag in sentence}
        for split, path in self.files.items():
            raw = self.raw[split]
            ill_formed, first = 0, None
            for tags, lines in zip(raw["tags"], raw["lines"]):
                for tag, line_no in zip(tags, lines):
                    if tag not in known:
                        raise LitNerError(
                            f"{path}:{line_no}: tag {tag!r} is not in the label set {self.label_names}"
                        )
                    if train_tags is not None and tag not in train_tags:
                        raise LitNerError(
                            f"{path}:{line_no}: tag {tag!r} never occurs in the train split "
                            f"({self.files['train']}), so the model could never predict it; "
                            "set --data.label_names to train with it anyway"
                        )
                positions = ill_formed_bio(tags)
                if positions and first is None:
                    first = (lines[positions[0]], tags[positions[0]])
                ill_formed += len(positions)
            if not ill_formed:
                continue
            where = f"{path}:{first[0]}: {first[1]!r} continues no entity"
            if self.hparams.strict_bio:
                raise LitNerError(f"{where} (ill-formed BIO, refused by --data.strict_bio)")
            rank_zero_warn(
                f"{where}: {ill_formed} such I- tags in {split}, read as the start of an entity "
                "(seqeval's default mode and conlleval); --data.strict_bio refuses them"
            )

    def _load_hub(self) -> Any:
        if self._hub_dataset is None:
            import datasets

            hp = self.hparams
            with hub_errors(f"data set '{hp.dataset_name}'"):
                self._hub_dataset = datasets.load_dataset(
                    hp.dataset_name, hp.dataset_config_name, revision=hp.dataset_revision
                )
        return self._hub_dataset

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            name = self.hparams.tokenizer_name_or_path
            with hub_errors(f"tokenizer '{name}'"):
                self._tokenizer = AutoTokenizer.from_pretrained(
                    resolve_name_or_path(name), trust_remote_code=self.hparams.trust_remote_code
                )
            if not self._tokenizer.is_fast:
                raise LitNerError(f"tokenizer '{name}' has no fast version; word alignment needs word_ids()")
        return self._tokenizer

    @property
    def max_length(self) -> int:
        """Subword positions per example: `max_length`, else the tokenizer's maximum."""
        max_length = self.hparams.max_length or self.tokenizer.model_max_length
        if max_length > 100_000:  # a tokenizer that does not know its model's limit
            raise LitNerError(
                f"tokenizer '{self.hparams.tokenizer_name_or_path}' states no maximum length; "
                "set --data.max_length to the model's position limit"
            )
        if max_length < 3 or self.hparams.stride < 0:
            raise LitNerError(f"max_length {max_length} and stride {self.hparams.stride}: too small to tag")
        return max_length

    # Lightning hooks.

    def prepare_data(self) -> None:
        # Runs on one process per node: the place for downloads.
        if not self.files:
            self._load_hub()
        self.tokenizer  # noqa: B018 - downloads and caches the tokenizer files

    def setup(self, stage: str | None = None) -> None:
        needed = {
            "fit": ("train", "validation"),
            "validate": ("validation",),
            "test": ("test",),
            "predict": (self.hparams.predict_split,),
        }.get(stage or "", SPLITS)
        for split in needed:
            if split not in self.datasets:
                self.datasets[split] = self._tokenized(split)

    def _raw_split(self, split: str) -> Any:
        import datasets

        if self.files:
            if split not in self.raw:
                raise LitNerError(f"no {split} split: set --data.{split}_file")
            index = {name: i for i, name in enumerate(self.label_names)}
            raw = self.raw[split]
            tags = [[index[tag] for tag in sentence] for sentence in raw["tags"]]
            return datasets.Dataset.from_dict(
                {"tokens": raw["tokens"], "tags": tags, "sentence_id": list(range(len(tags)))}
            )
        hub = self._load_hub()
        if split not in hub:
            raise LitNerError(
                f"data set '{self.hparams.dataset_name}' has no {split} split (it has {list(hub)})"
            )
        columns = {self.hparams.tokens_column: "tokens", self.hparams.tags_column: "tags"}
        dataset = hub[split].select_columns(list(columns)).rename_columns(columns)
        # Each sentence's index rides along with it (and with its windows) into every batch: under
        # DDP the sampler repeats sentences to give every process as many, and scoring counts
        # each index once and joins a long sentence's windows back together.
        return dataset.add_column("sentence_id", list(range(len(dataset))))

    def _tokenized(self, split: str) -> Any:
        from datasets.fingerprint import Hasher

        hp = self.hparams
        raw = self._raw_split(split)
        continuation = continuation_label_ids(self.label_names) if hp.label_all_tokens else None
        max_length = self.max_length
        align = partial(
            tokenize_and_align,
            tokenizer=self.tokenizer,
            max_length=max_length,
            continuation_ids=continuation,
            stride=hp.stride,
        )
        cache_kwargs: dict[str, Any] = {}
        if self.files:
            # In-memory data sets are not cached by `datasets`; key the cache on the data and on
            # everything that shapes the encoding, so any change re-tokenizes.
            fingerprint = Hasher.hash(
                [raw["tokens"], raw["tags"], self.tokenizer, max_length, hp.stride, continuation, "align-v3"]
            )
            import datasets

            cache_dir = Path(hp.cache_dir or datasets.config.HF_DATASETS_CACHE) / "lit_ner"
            cache_dir.mkdir(parents=True, exist_ok=True)
            cache_kwargs = {
                "cache_file_name": str(cache_dir / f"{split}-{fingerprint}.arrow"),
                "new_fingerprint": fingerprint,
            }
        tokenized = raw.map(align, batched=True, remove_columns=raw.column_names, **cache_kwargs)
        self._report_alignment(split, tokenized, max_length)
        return tokenized.remove_columns(["unlabelled_words", "n_windows"])

    def _report_alignment(self, split: str, tokenized: Any, max_length: int) -> None:
        """Says how many sentences were windowed and how many words have no subword: nothing is
        cut or dropped silently."""
        # A sentence's first example is the one that starts at its word 0.
        firsts = [n for n, offset in zip(tokenized["n_windows"], tokenized["word_offset"]) if offset == 0]
        message = f"{split}: {len(firsts)} sentences"
        long_sentences = [n for n in firsts if n > 1]
        if long_sentences:
            message += (
                f"; {len(long_sentences)} longer than {max_length} subword positions, each split into "
                f"overlapping windows ({sum(long_sentences)} windows, stride {self.hparams.stride}): "
                "every word is trained on and scored once"
            )
        rank_zero_info(message)
        unlabelled = sum(tokenized["unlabelled_words"])
        if unlabelled:
            rank_zero_warn(
                f"{split}: {unlabelled} word{'s' * (unlabelled != 1)} without any subword position (the "
                "tokenizer turns them into nothing, e.g. zero-width or control characters); they are "
                "not trained on, and are "
                "scored as predicted 'O' (a miss where they belong to an entity)"
            )

    def _lengths(self, split: str) -> list[int]:
        """Each example's number of subword positions (for grouping and sorting by length)."""
        import pyarrow.compute as pc

        if split not in self._example_lengths:
            input_ids = self.datasets[split].with_format("arrow")["input_ids"]
            self._example_lengths[split] = pc.list_value_length(input_ids).to_pylist()
        return self._example_lengths[split]

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer else (1, 0)

    def _dataloader(self, split: str, **loader: Any) -> DataLoader:
        hp = self.hparams
        return DataLoader(
            self.datasets[split],
            collate_fn=TokenClassificationCollator(self.tokenizer.pad_token_id, hp.pad_to_multiple_of),
            num_workers=hp.num_workers,
            persistent_workers=hp.num_workers > 0,
            # Its own generator (for worker seeds): creating an iterator then draws nothing from
            # torch's global RNG, which stays dropout's alone and resumes exactly.
            generator=torch.Generator().manual_seed(self.seed),
            **loader,
        )

    @property
    def seed(self) -> int:
        """The shuffling seed: the run's (`seed_everything`), kept in checkpoints for resuming."""
        if self._seed is None:
            self._seed = torch.initial_seed() % 2**63
        return self._seed

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        world_size, rank = self._world()
        sampler = LengthGroupedSampler(
            self._lengths("train"),
            hp.batch_size,
            world_size,
            rank,
            self.seed,
            group_by_length=hp.group_by_length,
            group_size=hp.group_size,
        )
        if world_size > 1:
            rank_zero_info(
                f"effective batch: {hp.batch_size} sentences x {world_size} processes = "
                f"{hp.batch_size * world_size} per optimizer step ({len(sampler)} steps per epoch)"
            )
        if self._resume is not None:
            epoch, batches_done, saved_world_size = self._resume
            if saved_world_size == world_size:
                sampler.resume_at(epoch, batches_done)
            else:
                # The batches were cut for another number of processes: which sentences the
                # interrupted run trained on cannot be told apart in the new layout.
                rank_zero_warn(
                    f"resumed with {world_size} processes where the checkpoint had {saved_world_size}: "
                    f"the rest of epoch {epoch} is drawn from the new batch layout, so some of its "
                    "sentences may be trained on twice or not at all in this epoch"
                )
            self._resume = None
        # The sampler yields whole batches (batch_size=None): the DataLoader fetches each with one
        # `dataset[indices]` and hands its columns to the collator.
        return self._dataloader("train", sampler=sampler, batch_size=None)

    def _eval_dataloader(self, split: str) -> DataLoader:
        hp = self.hparams
        sampler = SortedSampler(self._lengths(split), *self._world())
        return self._dataloader(split, sampler=sampler, batch_size=hp.eval_batch_size or hp.batch_size)

    def state_dict(self) -> dict[str, Any]:
        """Where training stands in the data, saved in every checkpoint: the shuffling seed, and
        the epoch and number of batches (per process) trained on in it."""
        state: dict[str, Any] = {"seed": self.seed}
        trainer = self.trainer
        if trainer is not None and trainer.state.fn == "fit":
            state["epoch"] = trainer.current_epoch
            state["batches_done"] = trainer.fit_loop.epoch_loop.batch_progress.current.processed
            state["world_size"] = trainer.world_size
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._seed = state_dict.get("seed", self._seed)
        if "epoch" in state_dict:
            self._resume = (state_dict["epoch"], state_dict["batches_done"], state_dict.get("world_size", 1))

    def val_dataloader(self) -> DataLoader:
        return self._eval_dataloader("validation")

    def test_dataloader(self) -> DataLoader:
        return self._eval_dataloader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._eval_dataloader(self.hparams.predict_split)

    def words(self, split: str) -> list[list[str]]:
        """The words of each sentence of a split, in sentence-id order."""
        return self._column(split, "tokens")

    def tags(self, split: str) -> list[list[str]]:
        """The gold tags of each sentence of a split, in sentence-id order."""
        return self._column(split, "tags")

    def _column(self, split: str, name: str) -> list[list[str]]:
        if self.files:
            if split not in self.raw:
                raise LitNerError(f"no {split} split: set --data.{split}_file")
            return self.raw[split][name]
        column = self._raw_split(split)[name]
        if name == "tags":  # the Hub stores ClassLabel ids
            return [[self.label_names[i] for i in sentence] for sentence in column]
        return list(column)

    def has_split(self, split: str) -> bool:
        return split in self.raw if self.files else split in self._load_hub()
