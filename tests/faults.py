"""Faults injected into real training runs through `--trainer.callbacks+=tests.faults.X`: a
preempted node (SIGKILL, which nothing can catch), a model whose loss goes non-finite, and slow
steps (time for a test to send a signal mid-training)."""

import math
import os
import signal
import time

from lightning.pytorch.callbacks import Callback


class KillAtStep(Callback):
    """SIGKILLs its own training process when training reaches `step` optimizer steps."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            # Once the step's checkpoint, written in the background, is on disk (as it is a moment
            # later): killed mid-write, the previous checkpoint is the one left (test_resume).
            trainer.strategy.checkpoint_io.wait()
            os.kill(os.getpid(), signal.SIGKILL)


class NaNLossAtStep(Callback):
    """Makes the forward pass of the batch at `step` produce NaN logits (once, or from then on
    with `forever`), as a diverging model or a bad fp16 overflow would."""

    def __init__(self, step: int, forever: bool = False) -> None:
        self.step = step
        self.forever = forever
        self._hook = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step and self._hook is None:
            head = pl_module.model.classifier
            self._hook = head.register_forward_hook(lambda module, inputs, output: output * math.nan)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._hook is not None and not self.forever:
            self._hook.remove()
            self._hook = None


class SlowSteps(Callback):
    """Sleeps `seconds` after every training step (changes nothing else)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        time.sleep(self.seconds)


class SignalAtStep(Callback):
    """Sends its own process `signal` (a name: SIGTERM, SIGUSR1) when training reaches `step`
    optimizer steps, as a scheduler stopping the job would; under DDP only in process `rank`
    (None: every process)."""

    def __init__(self, step: int, signal: str = "SIGTERM", rank: int | None = None) -> None:
        self.step = step
        self.signal = signal
        self.rank = rank

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step and self.rank in (None, trainer.global_rank):
            os.kill(os.getpid(), getattr(signal, self.signal))
