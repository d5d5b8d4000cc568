"""Where a run lives, and resuming it as the same run. The one resolver of run directories:

    RUNS_ROOT/RUN/               `run_directory`: config.yaml, reports, predictions, hf_model/,
                                 fit_summary.json, the logger's files, `job_id`
    RUNS_ROOT/RUN/checkpoints/   `checkpoint_dir`: the best checkpoints and last.ckpt

RUNS_ROOT (`runs_root`) is a logger's `save_dir/name` (RUN its version, or W&B's run id), or with
no logger `default_root_dir`; a configured `checkpoint.dirpath` replaces the checkpoint folder.

- `find_last_checkpoint` is what `fit --ckpt_path last` resumes from (`callbacks.LastCheckpoint`
  keeps `last.ckpt` current), and `continue_run` makes the resumed fit the same run: the same run
  directory, ModelCheckpoint's best score and path, each step once in the logs.
- `restarted_by` tells a job that its launcher restarted it (SLURM after a requeue, torchrun's
  elastic agent), so that `fit` resumes with no flag changed; `job_id` names the job's run.
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from lit_ner import compat
from lit_ner.model.checkpoint import checkpoint_run_dir
from lit_ner.training.checkpoints import LAST


def logger_root(trainer: Any, logger: Any) -> Path:
    """The folder a logger keeps its runs in, as Lightning resolves it: `save_dir/name`."""
    return Path(logger.save_dir or trainer.default_root_dir, str(logger.name))


def run_directory(trainer: Any) -> Path:
    """Where a run's config, reports, predictions and export go (a DDP collective): the logger's
    version directory, `trainer.default_root_dir` without a logger. W&B's logger gives its shared
    `save_dir` as log directory, so there it is `save_dir/<project>/<run id>`, the folder that
    Lightning keeps the run's checkpoints in."""
    from lightning.pytorch.loggers import WandbLogger

    log_dir = trainer.log_dir  # broadcast from rank 0
    logger = trainer.logger
    if isinstance(logger, WandbLogger):
        directory = str(logger_root(trainer, logger) / str(logger.version))
        return Path(trainer.strategy.broadcast(directory))
    return Path(log_dir or trainer.default_root_dir)


def checkpoint_dir(trainer: Any) -> str:
    """Where the run's checkpoints go: the checkpoint callback's directory."""
    callback = trainer.checkpoint_callback
    if callback is not None and callback.dirpath:
        return callback.dirpath
    return os.path.join(trainer.log_dir or trainer.default_root_dir, "checkpoints")


def runs_root(trainer: Any) -> str:
    """The folder whose runs `--ckpt_path last` looks in: a configured checkpoint directory, else
    the logger's `save_dir/name` (as ModelCheckpoint resolves it), else `default_root_dir`."""
    callback = trainer.checkpoint_callback
    if callback is not None and callback.dirpath:
        return callback.dirpath
    if trainer.logger is not None:
        return str(logger_root(trainer, trainer.logger))
    return trainer.default_root_dir


def find_last_checkpoint(run_root: str | Path, job: str | None = None) -> Path | None:
    """The newest `last.ckpt` in a checkpoint directory or under a logger's run root
    (`save_dir/name`, e.g. `runs/wnut/version_3/checkpoints/last.ckpt`), of the runs job `job`
    started if given (see `job_id`); None when there is none."""
    root = Path(run_root)
    candidates = [*root.glob(LAST), *root.glob(f"checkpoints/{LAST}"), *root.glob(f"*/checkpoints/{LAST}")]
    if job is not None:
        candidates = [path for path in candidates if run_job(checkpoint_run_dir(path)) == job]
    return max(candidates, key=lambda path: path.stat().st_mtime) if candidates else None


JOB_FILE = "job_id"


def job_id() -> str | None:
    """This job's id as its launcher keeps it across restarts: SLURM's job id (`ARRAY_TASK` for
    an array task), or torchrun's rendezvous id when one was given (`--rdzv-id`); None otherwise.
    A restarted job resumes the run its id started, not another job's newer run beside it.
    `LIT_NER_JOB`, when a caller sets it, is the id: a `lit_ner search` worker gives each trial's
    fit its own (`search:STUDY/trial-N`), so that whichever worker resumes the trial, on whichever
    array task, continues its run."""
    if os.environ.get("LIT_NER_JOB"):
        return os.environ["LIT_NER_JOB"]
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


def run_job(run_dir: Path) -> str | None:
    """The job id recorded in a run directory (written when its training started)."""
    path = run_dir / JOB_FILE
    return path.read_text().strip() if path.is_file() else None


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
    run_dir = checkpoint_run_dir(checkpoint)
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
        root = logger_root(trainer, logger).resolve()
        if root != run_dir.parent:
            continue
        # The first logger names the run directory (ModelCheckpoint's); a CSV or TensorBoard
        # logger beside it in the same root shares its versions. A W&B logger's version is its
        # run id: it is continued only when it is the one that named the directory.
        if isinstance(logger, WandbLogger) and index == 0:
            compat.resume_wandb_run(logger, run_dir.name)
        elif isinstance(logger, (CSVLogger, TensorBoardLogger)) and (index == 0 or found):
            compat.reuse_version(logger, version)
            if isinstance(logger, TensorBoardLogger):
                compat.purge_tensorboard_from(logger, step)
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
