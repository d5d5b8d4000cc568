"""Checkpoints that survive a kill: `SafeCheckpointIO` writes each checkpoint beside its
destination and renames it into place, so a process killed mid-save leaves the previous checkpoint
whole, and loads with `weights_only=True` through `model.checkpoint.load_checkpoint` (no arbitrary
pickled code; a corrupt or truncated file is one clear line). Lightning's `TorchCheckpointIO`
writes in place and loads whatever is pickled."""

from __future__ import annotations

from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from lit_ner.files import write_atomically
from lit_ner.model.checkpoint import load_checkpoint

LAST = "last.ckpt"  # the checkpoint `--ckpt_path last` resumes from (`callbacks.LastCheckpoint`)


class SafeCheckpointIO(TorchCheckpointIO):
    """Atomic saves, `weights_only` loads, and one-line errors for unreadable checkpoints."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        write_atomically(path, lambda file: torch.save(checkpoint, file))

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> Any:
        return load_checkpoint(path, map_location=map_location, weights_only=weights_only is not False)
