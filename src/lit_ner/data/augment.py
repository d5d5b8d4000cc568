"""Training-data augmentation, redrawn every epoch: mention replacement.

WNUT-17's validation and test entities are all unseen in train, so a model that memorises the
training names learns little that transfers. Mention replacement (Dai and Adel, "An Analysis of
Simple Data Augmentation for Named Entity Recognition", COLING 2020) swaps, each epoch, each
training mention with probability `p` for another training mention of the same type, its BIO tags
rebuilt for the new length: the same contexts now hold other names, and the model must read the
context. Validation, test and predict data are never touched.

Every epoch's draw is a function of `(seed, epoch)` alone, computed identically in every process
and worker: a resumed run trains on the same sentences as the uninterrupted one.
"""

from __future__ import annotations

import bisect
import dataclasses
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lit_ner.errors import LitNerError
from lit_ner.portable.spans import get_entities


@dataclass(frozen=True)
class Augmentation:
    """Training-data augmentation (`data.augment`), off by default.

    Args:
        mention_replacement: the probability that a training mention is replaced, each epoch, by
            another training mention of the same type (0: off).
    """

    mention_replacement: float = 0.0

    @classmethod
    def checked(cls, augment: Augmentation | dict) -> Augmentation:
        """`augment` (or a dict of its fields, as checkpoints save it) after checking it."""
        if isinstance(augment, dict):
            unknown = set(augment) - {field.name for field in dataclasses.fields(cls)}
            if unknown:
                raise LitNerError(f"data.augment: unknown option(s) {sorted(unknown)}")
            augment = cls(**augment)
        if not 0.0 <= augment.mention_replacement <= 1.0:
            raise LitNerError(
                "data.augment.mention_replacement must be a probability in [0, 1], "
                f"not {augment.mention_replacement}"
            )
        return augment


def mention_pool(sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> dict[str, list[tuple]]:
    """Each entity type's distinct mentions (word tuples) in `sentences`, sorted so that the draws
    do not depend on the order of a set."""
    pool: dict[str, set[tuple]] = {}
    for words, sentence_tags in zip(sentences, tags):
        for type_, first, last in get_entities(sentence_tags):
            pool.setdefault(type_, set()).add(tuple(words[first : last + 1]))
    return {type_: sorted(mentions) for type_, mentions in sorted(pool.items())}


def replace_mentions(
    words: Sequence[str], tags: Sequence[str], pool: dict[str, list[tuple]], p: float, rng: random.Random
) -> tuple[list[str], list[str], int]:
    """One sentence with each mention replaced, with probability `p`, by another mention of its
    type drawn uniformly from `pool` (never by itself). Returns the words, the tags and the number
    of mentions replaced."""
    out_words: list[str] = []
    out_tags: list[str] = []
    position = replaced = 0
    for type_, first, last in get_entities(tags):
        mention = tuple(words[first : last + 1])
        others = pool.get(type_, [])
        # The mention's own place in its type's sorted list, if there (binary search).
        own = bisect.bisect_left(others, mention)
        present = own < len(others) and others[own] == mention
        if rng.random() >= p or len(others) - present < 1:
            continue
        # Uniform over the type's other mentions: skip the mention's own place in the list.
        k = rng.randrange(len(others) - present)
        new = others[k + 1 if present and k >= own else k]
        out_words += [*words[position:first], *new]
        out_tags += [*tags[position:first], f"B-{type_}", *[f"I-{type_}"] * (len(new) - 1)]
        position = last + 1
        replaced += 1
    return out_words + list(words[position:]), out_tags + list(tags[position:]), replaced


class MentionReplacedSet:
    """The training examples of one epoch with mentions replaced, for the DataLoader.

    Indexed as `LengthGroupedSampler(epoch_indices=True)` yields: `epoch * len(self) + k` is
    example `k` of epoch `epoch`'s draw, so the epoch travels with the indices into worker
    processes. A DataLoader with `batch_size=None` asks for a whole batch at once and gets its
    examples, one dict each, for the collator.

    A sentence keeps its number of examples (windows) whatever replaces its mentions, so that the
    example count, the sampler's batches and the learning-rate schedule stay those of the data:
    a sentence whose draw would need more or fewer windows than the original keeps the original
    (counted as `kept_for_length`).

    Args:
        tokens, tags: the training sentences (words and string tags), in sentence-id order.
        label_names: the label set, in id order.
        align: sentences (`{"tokens", "tags" (ids), "sentence_id"}` columns) to examples
            (`alignment.tokenize_and_align` with its settings).
        p: the replacement probability.
        seed: the run's shuffling seed.
    """

    def __init__(
        self,
        tokens: list[list[str]],
        tags: list[list[str]],
        label_names: Sequence[str],
        align: Callable[[dict[str, list]], dict[str, list]],
        p: float,
        seed: int,
    ) -> None:
        not_bio = [name for name in label_names if name != "O" and not name.startswith(("B-", "I-"))]
        if not_bio:
            # A replaced mention is written back as B-X I-X ...: another scheme's tags would be
            # rebuilt wrong (E-/S-) or not at all (bare types).
            raise LitNerError(
                f"data.augment.mention_replacement rewrites mentions as BIO tags; the label set has "
                f"{len(not_bio)} labels that are neither O nor B-/I- ({', '.join(not_bio[:3])}...): "
                "leave it off for this data"
            )
        self.tokens, self.tags, self.p, self.seed = tokens, tags, p, seed
        self.index = {name: i for i, name in enumerate(label_names)}
        self.align = align
        self.pool = mention_pool(tokens, tags)
        self.original = self._examples(list(range(len(tokens))), tokens, tags)
        self._epoch: tuple[int, list[dict], dict[str, int], list[list[str]]] | None = None

    def _examples(self, ids: list[int], tokens: list[list[str]], tags: list[list[str]]) -> list[list[dict]]:
        """Per sentence, its examples (one dict per window)."""
        columns = self.align(
            {"tokens": tokens, "tags": [[self.index[t] for t in s] for s in tags], "sentence_id": ids}
        )
        rows = [dict(zip(columns, row)) for row in zip(*columns.values())]
        by_sentence: list[list[dict]] = [[] for _ in ids]
        position = {sentence: i for i, sentence in enumerate(ids)}
        for row in rows:
            by_sentence[position[row["sentence_id"]]].append(row)
        return by_sentence

    def draw(self, epoch: int) -> tuple[list[dict], dict[str, int]]:
        """Epoch `epoch`'s examples, and its counts: `mentions`, `replaced`, `sentences` changed,
        `kept_for_length`."""
        if self._epoch is not None and self._epoch[0] == epoch:
            return self._epoch[1], self._epoch[2]
        rng = random.Random(f"mention_replacement:{self.seed}:{epoch}")
        changed, new_tokens, new_tags, replaced = [], [], [], []
        counts = {"mentions": 0, "replaced": 0, "sentences": 0, "kept_for_length": 0}
        for i, (words, tags) in enumerate(zip(self.tokens, self.tags)):
            counts["mentions"] += len(get_entities(tags))
            words, tags, n = replace_mentions(words, tags, self.pool, self.p, rng)
            if n:
                changed.append(i)
                new_tokens.append(words)
                new_tags.append(tags)
                replaced.append(n)
        examples, words = list(self.original), list(self.tokens)
        if changed:
            drawn = self._examples(changed, new_tokens, new_tags)
            for i, sentence, sentence_words, n in zip(changed, drawn, new_tokens, replaced):
                if len(sentence) == len(self.original[i]):
                    examples[i], words[i] = sentence, sentence_words
                    counts["sentences"] += 1
                    counts["replaced"] += n
                else:
                    counts["kept_for_length"] += 1
        flat = [example for sentence in examples for example in sentence]
        self._epoch = (epoch, flat, counts, words)
        return flat, counts

    def words(self, epoch: int) -> list[list[str]]:
        """Epoch `epoch`'s sentences as words, by sentence id (what a teacher reads, `model.teacher`)."""
        self.draw(epoch)
        assert self._epoch is not None
        return self._epoch[3]

    def __len__(self) -> int:
        return sum(map(len, self.original))

    def __getitem__(self, indices: int | list[int]) -> Any:
        if isinstance(indices, int):
            return self[[indices]][0]
        n = len(self)
        rows = []
        for index in indices:
            epoch, k = divmod(index, n)
            rows.append(self.draw(epoch)[0][k])
        return rows
