"""Checkpoints that survive a kill and cost training little: `SafeCheckpointIO` writes each
checkpoint beside its destination and renames it into place, so a process killed mid-save leaves
the previous checkpoint whole; it writes on a background thread, so training goes on while the
file is serialised and flushed; and it loads with `weights_only=True` through
`model.checkpoint.load_checkpoint` (no arbitrary pickled code; a corrupt or truncated file is one
clear line). Lightning's `TorchCheckpointIO` writes in place, in the training thread, and loads
whatever is pickled."""

from __future__ import annotations

import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning_utilities.core.apply_func import apply_to_collection

from lit_ner import compat
from lit_ner.files import write_atomically
from lit_ner.model.checkpoint import load_checkpoint

LAST = "last.ckpt"  # the checkpoint `--ckpt_path last` resumes from (`callbacks.LastCheckpoint`)


def snapshot(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint as it is now, in CPU memory: every tensor copied (views of one tensor stay
    one tensor) and every container rebuilt, so that training may change the originals while the
    copy is written."""
    copies: dict[tuple, torch.Tensor] = {}

    def copy(tensor: torch.Tensor) -> torch.Tensor:
        key = (tensor.data_ptr(), tensor.dtype, tuple(tensor.shape), tensor.stride(), tensor.device)
        if key not in copies:
            copies[key] = tensor.detach().to("cpu", copy=True)
        return copies[key]

    copied = apply_to_collection(checkpoint, torch.Tensor, copy)
    compat.copy_state_dict_metadata(checkpoint, copied)
    return copied


class SafeCheckpointIO(TorchCheckpointIO):
    """Atomic saves written in the background, `weights_only` loads, and one-line errors for
    unreadable checkpoints.

    A save copies the checkpoint's tensors to CPU memory on the caller's thread (a memory copy)
    and leaves `torch.save`, the write and the flush (most of a save's time) to one background
    thread; training goes on meanwhile. At most one write is in flight: the next save, a
    load, a removal (Lightning's `ModelCheckpoint` replacing its best) and the strategy's teardown
    (the end of `fit`, or an exception or a stop signal ending it) all wait for it, so nothing reads
    a file before it is whole, and a failed write raises there. The copy costs one more checkpoint's
    worth of host memory while it is written. `fit` writes in the foreground when a W&B logger
    uploads checkpoints (`log_model`): it looks for each file as soon as it is saved.

    Args:
        background: write on a background thread; `False` writes in the caller's thread, with no
            copy (`--trainer.plugins lit_ner.training.checkpoints.SafeCheckpointIO
            --trainer.plugins.background false` where host memory is tight).
    """

    def __init__(self, background: bool = True) -> None:
        self.background = background
        self._writer: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        self.wait()
        if not self.background:
            write_atomically(path, lambda file: torch.save(checkpoint, file))
            return
        copied = snapshot(checkpoint)
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lit_ner-checkpoint")
        self._pending = self._writer.submit(write_atomically, path, lambda file: torch.save(copied, file))

    def wait(self) -> None:
        """Returns once the last save is on disk; raises what its write raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> Any:
        self.wait()
        return load_checkpoint(path, map_location=map_location, weights_only=weights_only is not False)

    def remove_checkpoint(self, path: Any) -> None:
        self.wait()
        super().remove_checkpoint(path)

    def teardown(self) -> None:
        # Lightning tears down inside its `except` when a fit ends on an exception (a stop's
        # SystemExit(75) included): that one is what the run ends with, and a failed write raised
        # here would replace it, so it is printed instead.
        ending_on = sys.exc_info()[1]
        try:
            self.wait()
        except Exception as error:
            if ending_on is None:
                raise
            print(f"lit_ner: writing a checkpoint failed: {error}", file=sys.stderr)
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None
