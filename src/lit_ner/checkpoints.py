"""Checkpoints that survive a kill and load safely, and resuming from the last one.

- `SafeCheckpointIO` writes each checkpoint beside its destination and renames it into place, so
  a process killed mid-save leaves the previous checkpoint whole; it loads with
  `weights_only=True` (no arbitrary pickled code) and turns a corrupt or truncated file into one
  clear line.
- `LastCheckpoint` saves `last.ckpt` every N optimizer steps and each epoch, so a preempted job
  loses at most N steps; the data module's state (shuffling seed, position in the epoch) and the model's RNG
  state ride along, so the resumed run sees the same batches and dropout masks.
- `find_last_checkpoint` is what `fit --ckpt_path last` resumes from.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback

from lit_ner.errors import LitNerError
from lit_ner.hub import first_line

LAST = "last.ckpt"


class SafeCheckpointIO(TorchCheckpointIO):
    """Atomic saves, `weights_only` loads, and one-line errors for unreadable checkpoints."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        with open(partial, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())  # on disk before it replaces the previous checkpoint
        os.replace(partial, path)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> Any:
        return load_checkpoint(path, map_location=map_location, weights_only=weights_only is not False)


def load_checkpoint(path: str | Path, map_location: Any = "cpu", weights_only: bool = True) -> dict[str, Any]:
    """`torch.load` of a Lightning checkpoint, with a `LitNerError` naming the file when it is
    missing, truncated, corrupt, or holds objects that `weights_only` refuses."""
    with checkpoint_errors(path):
        checkpoint = torch.load(path, map_location=map_location, weights_only=weights_only)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise LitNerError(f"{path}: not a Lightning checkpoint (no state_dict)")
    return checkpoint


@contextmanager
def checkpoint_errors(path: str | Path) -> Iterator[None]:
    """Checks that `path` looks like a checkpoint before the body reads it, and turns what a
    `torch.load` of it raises into one `LitNerError` line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise LitNerError(f"{path}: no such checkpoint")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive, its index at the very end
        raise LitNerError(f"{path}: not a checkpoint, or a truncated one (no zip archive index at its end)")
    try:
        yield
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc).lower():
            raise LitNerError(
                f"{path}: the checkpoint holds objects other than tensors and plain values; load it "
                "with --weights_only false only if you trust where it came from"
            ) from None
        raise LitNerError(f"{path}: not a readable checkpoint ({first_line(exc)})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise LitNerError(
            f"{path}: not a readable checkpoint, truncated or corrupt ({first_line(exc)})"
        ) from None


class LastCheckpoint(Callback):
    """Keeps `last.ckpt` (beside the best checkpoints) current: after every training epoch and
    every `every_n_train_steps` optimizer steps, so that a killed job loses at most that many.

    It is the only writer of `last.ckpt`: Lightning's `ModelCheckpoint(save_last=True)` would
    write the same name, so lit_ner leaves that off (and refuses both at once).

    Args:
        every_n_train_steps: steps between saves within an epoch; 0 saves at epoch ends only.
    """

    def __init__(self, every_n_train_steps: int = 50) -> None:
        self.every_n_train_steps = every_n_train_steps
        self._last_saved_step = -1

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        best = trainer.checkpoint_callback
        if best is not None and best.save_last:
            raise LitNerError(
                "checkpoint.save_last and last_checkpoint both write last.ckpt: leave checkpoint.save_last "
                "off (last_checkpoint keeps last.ckpt current)"
            )

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        step = trainer.global_step
        if self.every_n_train_steps and step % self.every_n_train_steps == 0:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After the epoch's validation, so the best-checkpoint state it holds is current.
        self._save(trainer)

    def _save(self, trainer: L.Trainer) -> None:
        # A step spans several batches under gradient accumulation: save it once.
        if trainer.fast_dev_run or trainer.sanity_checking or trainer.global_step == self._last_saved_step:
            return
        self._last_saved_step = trainer.global_step
        # The full state (optimizer, loops, callbacks), not weights only: it is what resumes.
        trainer.save_checkpoint(Path(checkpoint_dir(trainer)) / LAST, weights_only=False)


def checkpoint_dir(trainer: L.Trainer) -> str:
    """Where the run's checkpoints go: the checkpoint callback's directory."""
    callback = trainer.checkpoint_callback
    if callback is not None and callback.dirpath:
        return callback.dirpath
    return os.path.join(trainer.log_dir or trainer.default_root_dir, "checkpoints")


def find_last_checkpoint(run_root: str | Path) -> Path | None:
    """The newest `last.ckpt` in a checkpoint directory or under a logger's run root
    (`save_dir/name`, e.g. `runs/wnut/version_3/checkpoints/last.ckpt`); None when there is none."""
    root = Path(run_root)
    candidates = [*root.glob(LAST), *root.glob(f"checkpoints/{LAST}"), *root.glob(f"*/checkpoints/{LAST}")]
    return max(candidates, key=lambda path: path.stat().st_mtime) if candidates else None
