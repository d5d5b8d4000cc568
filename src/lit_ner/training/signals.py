"""Stopping a fit resumably when the job is asked to: the signals schedulers send ahead of a time
limit or a preemption, recorded for `callbacks.LastCheckpoint` to act on between steps, and
SLURM's requeue."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Any

from lit_ner.training.resume import slurm_job


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
    collective or on slow storage), unless it comes within `ECHO_SECONDS` of the first: one
    request delivered twice, as SLURM signals every process of a job and a `lit_ner search`
    worker forwards the same signal to its trial's fit."""

    ECHO_SECONDS = 5.0

    def __init__(self) -> None:
        self.asked: int | None = None
        self._asked_at = 0.0
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
            if time.monotonic() - self._asked_at < self.ECHO_SECONDS:
                return
            self.restore()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
        elif self.asked != signal.SIGUSR1:
            if self.asked is None:
                self._asked_at = time.monotonic()
            self.asked = signum
