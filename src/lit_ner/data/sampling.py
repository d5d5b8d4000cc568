"""The order sentences are batched in: length-grouped training batches that are exact under DDP,
and length-sorted evaluation.

Lightning's default `DistributedSampler` pads every process's share by repeating sentences and
does not group by length; transformers' `LengthGroupedSampler` groups but knows nothing of DDP's
processes. `LengthGroupedSampler` here does both, with every sentence exactly once per epoch, and
resumes mid-epoch at the batch where a killed run stopped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DistributedSampler

from lit_ner.errors import LitNerError


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
    """The training batches of one process (yields lists of example indices); why lit_ner has its
    own: see the module's docstring.

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

    With `epoch_indices`, it yields `epoch * len(lengths) + i` for example `i`: the index into a
    training set redrawn every epoch (`augment.MentionReplacedSet`), so that the epoch travels
    with the indices into DataLoader worker processes.
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
        epoch_indices: bool = False,
    ) -> None:
        super().__init__(lengths, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.group_by_length = group_by_length
        self.group_size = group_size
        self.epoch_indices = epoch_indices
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
        if self.epoch_indices:
            offset = self.epoch * len(self.lengths)
            batches = [[offset + i for i in batch] for batch in batches]
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
