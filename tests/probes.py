"""Probes put into real training runs through `--trainer.callbacks+=tests.probes.X`: they record
what each DDP process did, one JSON file per process, for the test to read afterwards."""

import atexit
import builtins
import json
import os
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class RecordTraining(Callback):
    """Writes `<record_dir>/rank<r>.json` with the sentence ids of each training batch per epoch,
    the batch losses, and every file this process opened for writing or renamed into place
    (recorded until the process exits)."""

    def __init__(self, record_dir: str) -> None:
        self.record_dir = Path(record_dir)
        self.batches: dict[int, list[list[int]]] = {}
        self.losses: dict[int, list[float]] = {}
        self.writes: list[str] = []

    def setup(self, trainer, pl_module, stage) -> None:
        open_, replace, rename = builtins.open, os.replace, os.rename

        def recording_open(file, mode="r", *args, **kwargs):
            if any(flag in mode for flag in "wax+"):
                self.writes.append(os.path.abspath(file))
            return open_(file, mode, *args, **kwargs)

        def recording(move):
            def moved(src, dst, *args, **kwargs):
                self.writes.append(os.path.abspath(dst))
                return move(src, dst, *args, **kwargs)

            return moved

        builtins.open, os.replace, os.rename = recording_open, recording(replace), recording(rename)
        # At exit, so that what the CLI writes after training (reports, the export) is recorded too.
        atexit.register(self._save, trainer.global_rank)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        epoch = trainer.current_epoch
        self.batches.setdefault(epoch, []).append(batch["sentence_id"].tolist())
        self.losses.setdefault(epoch, []).append(float(outputs["loss"]))

    def _save(self, rank: int) -> None:
        self.record_dir.mkdir(parents=True, exist_ok=True)
        record = {"batches": self.batches, "losses": self.losses, "writes": self.writes}
        (self.record_dir / f"rank{rank}.json").write_text(json.dumps(record))
