"""Checkpoints that survive a kill and load safely, and what resuming exactly needs.

- `SafeCheckpointIO` writes each checkpoint beside its destination and renames it into place, so
  a process killed mid-save leaves the previous checkpoint whole; it loads with
  `weights_only=True` (no arbitrary pickled code) and turns a corrupt or truncated file into one
  clear line. (Lightning's `TorchCheckpointIO` writes in place and loads whatever is pickled.)
- `rng_states`/`set_rng_states`: every RNG training draws from, as plain values a weights-only
  load accepts, so a resumed run draws the dropout masks the uninterrupted one drew.
- `find_last_checkpoint` is what `fit --ckpt_path last` resumes from (`callbacks.LastCheckpoint`
  keeps `last.ckpt` current), and `continue_run` makes the resumed fit the same run: the same run
  directory, ModelCheckpoint's best score and path, each step once in the logs.
- `restarted_by` tells a job that its launcher restarted it (SLURM after a requeue, torchrun's
  elastic agent), so that `fit` resumes with no flag changed; `job_id` names the job's run.
- `StopSignals` and `requeue_slurm_job`: what `callbacks.LastCheckpoint` stops and requeues with.
"""

from __future__ import annotations

import csv
import os
import pickle
import re
import signal
import subprocess
import threading
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from lit_ner.errors import LitNerError
from lit_ner.formats import write_atomically
from lit_ner.hub import first_line

LAST = "last.ckpt"


class SafeCheckpointIO(TorchCheckpointIO):
    """Atomic saves, `weights_only` loads, and one-line errors for unreadable checkpoints."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        write_atomically(path, lambda file: torch.save(checkpoint, file))

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


def checkpoint_dir(trainer: Any) -> str:
    """Where the run's checkpoints go: the checkpoint callback's directory."""
    callback = trainer.checkpoint_callback
    if callback is not None and callback.dirpath:
        return callback.dirpath
    return os.path.join(trainer.log_dir or trainer.default_root_dir, "checkpoints")


def find_last_checkpoint(run_root: str | Path, job: str | None = None) -> Path | None:
    """The newest `last.ckpt` in a checkpoint directory or under a logger's run root
    (`save_dir/name`, e.g. `runs/wnut/version_3/checkpoints/last.ckpt`), of the runs job `job`
    started if given (see `job_id`); None when there is none."""
    root = Path(run_root)
    candidates = [*root.glob(LAST), *root.glob(f"checkpoints/{LAST}"), *root.glob(f"*/checkpoints/{LAST}")]
    if job is not None:
        candidates = [path for path in candidates if run_job(path.parent.parent) == job]
    return max(candidates, key=lambda path: path.stat().st_mtime) if candidates else None


JOB_FILE = "job_id"


def job_id() -> str | None:
    """This job's id as its launcher keeps it across restarts: SLURM's job id (`ARRAY_TASK` for
    an array task), or torchrun's rendezvous id when one was given (`--rdzv-id`); None otherwise.
    A restarted job resumes the run its id started, not another job's newer run beside it."""
    job = None
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if slurm_job():
        job = f"slurm:{slurm_job()}"
    elif run_id and run_id != "none":  # torchrun's default when no --rdzv-id is given
        job = f"torchrun:{run_id}"
    # One job may run several fits, one after another (`fit --seeds`): each is a part of it.
    part = os.environ.get("LIT_NER_JOB_PART")
    return f"{job}/{part}" if job and part else job


def slurm_job() -> str | None:
    """SLURM's id of this job, as `scontrol` takes it (`ARRAYJOB_TASK` for an array task)."""
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    return os.environ.get("SLURM_JOB_ID") or None


def requeue_slurm_job() -> str:
    """Asks SLURM to requeue this job (`scontrol requeue`); says what came of it."""
    job = slurm_job()
    if not job:
        return "not a SLURM job: nothing to requeue"
    done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
    if done.returncode:
        return f"scontrol requeue {job} failed: {done.stderr.strip() or done.returncode}"
    return f"SLURM job {job} requeued"


class StopSignals:
    """While installed, SIGUSR1 and SIGTERM only record that the job was asked to stop (`asked`:
    the signal; SIGUSR1, a requeue request, outranks SIGTERM), for the training loop to act on
    between steps. A second SIGTERM stops the process at once (the stop may be stuck in a
    collective or on slow storage)."""

    def __init__(self) -> None:
        self.asked: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        self.asked = None
        if threading.current_thread() is threading.main_thread():  # where handlers can be set
            for signum in (signal.SIGUSR1, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._on_signal)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGTERM and self.asked is not None:
            self.restore()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
        elif self.asked != signal.SIGUSR1:
            self.asked = signum


def run_job(run_dir: Path) -> str | None:
    """The job id recorded in a run directory (written when its training started)."""
    path = run_dir / JOB_FILE
    return path.read_text().strip() if path.is_file() else None


def rng_states() -> dict[str, Any]:
    """Every RNG training draws from, as values `torch.load(weights_only=True)` accepts."""
    import random

    import numpy as np

    numpy_state = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    import random

    import numpy as np

    torch.set_rng_state(states["torch"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def restarted_by() -> str | None:
    """The launcher that restarted this job, if one did: `"SLURM"` (a requeued job starts again
    with `SLURM_RESTART_COUNT` >= 1) or `"torchrun"` (its elastic agent's restarts set
    `TORCHELASTIC_RESTART_COUNT` >= 1); None on a first start."""
    for launcher, variable in (("SLURM", "SLURM_RESTART_COUNT"), ("torchrun", "TORCHELASTIC_RESTART_COUNT")):
        count = os.environ.get(variable, "0")
        if count.isdigit() and int(count) > 0:
            return launcher
    return None


def continue_run(trainer: Any, checkpoint: str | Path) -> bool:
    """Makes a fit resumed from `checkpoint` (a `last.ckpt` in `RUN_DIR/checkpoints/`) continue
    that run instead of starting a new one. Called before the fit, it points every logger whose
    runs live beside RUN_DIR at RUN_DIR itself:
    - CSV and TensorBoard loggers take its version, so ModelCheckpoint's directory is the one the
      checkpoint came from, and Lightning then reloads the best score, best path and top-k it holds
      (from a new directory it would drop them, and keep a worse model as the best);
    - metrics.csv keeps the rows of the steps before the checkpoint's (Lightning's CSV writer
      deletes the file of a directory it reopens) and the resumed fit logs the rest, each step once;
    - TensorBoard drops the interrupted run's events from the checkpoint's step on (`purge_step`);
    - W&B resumes the run of that id (the run directory's name is the W&B run id).
    Returns whether it did (False: the checkpoint is not a `last.ckpt` in a run directory of these
    loggers; the fit then logs as a new run).
    """
    checkpoint = Path(checkpoint).resolve()
    run_dir = checkpoint.parent.parent
    if checkpoint.name != LAST or checkpoint.parent.name != "checkpoints":
        return False
    if run_job(run_dir) != job_id():
        # Another job's run (or a run of a job, resumed outside it): it may still be going on, so
        # it is never written into; the fit resumes from its checkpoint as a new run.
        return False
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger

    step = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)["global_step"]
    found = re.fullmatch(r"version_(\d+)", run_dir.name)
    version = int(found[1]) if found else run_dir.name
    continued = False
    for index, logger in enumerate(trainer.loggers):
        root = Path(logger.save_dir or trainer.default_root_dir, str(logger.name)).resolve()
        if root != run_dir.parent:
            continue
        # The first logger names the run directory (ModelCheckpoint's); a CSV or TensorBoard
        # logger beside it in the same root shares its versions. A W&B logger's version is its
        # run id: it is continued only when it is the one that named the directory.
        if isinstance(logger, WandbLogger) and index == 0:
            logger._id = logger._wandb_init["id"] = run_dir.name
            logger._wandb_init["resume"] = "allow"
        elif isinstance(logger, (CSVLogger, TensorBoardLogger)) and (index == 0 or found):
            logger._version = version
            if isinstance(logger, TensorBoardLogger):
                logger._kwargs["purge_step"] = step
            elif trainer.global_rank == 0:
                carry_metrics(logger, step)
        else:
            continue
        continued = continued or index == 0
    return continued


def carry_metrics(logger: Any, step: int) -> None:
    """Keeps the rows of a reopened run's metrics.csv logged before `step`. The file is moved
    aside first (Lightning's CSV writer deletes it) and removed once the rows are written again."""
    path = Path(logger.log_dir) / "metrics.csv"
    aside = path.with_name(".metrics.csv.before-resume")
    rows = []
    if path.is_file():
        with path.open(newline="") as file:
            for row in csv.DictReader(file):
                if row.get("step") and int(float(row["step"])) < step:
                    rows.append({key: value for key, value in row.items() if value != ""})
        path.replace(aside)
    with warnings.catch_warnings():  # "...exists and is not empty...will be deleted": expected
        warnings.simplefilter("ignore")
        writer = logger.experiment
    writer.metrics = rows
    writer.save()
    aside.unlink(missing_ok=True)
