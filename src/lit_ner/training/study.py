"""A `lit_ner search` study on disk: Optuna's journal file, and what a trial's `fit` needs to
report to it (`callbacks.TrialPruning`), shared by the search's workers and their trials' fits.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lit_ner import compat
from lit_ner.errors import LitNerError

JOURNAL = "journal.log"
STUDY_NAME = "lit_ner"
TRIAL_ENV = "LIT_NER_TRIAL"  # set by a search worker for its trial's `fit`: where to report


@dataclass(frozen=True)
class TrialReport:
    """Where and how a trial's `fit` reports: the study's journal, the trial's number, the
    pruner's settings (Optuna does not store them), and the file that says it was pruned."""

    journal: str
    trial: int
    startup_trials: int
    warmup_epochs: int
    pruned_file: str

    def environment(self) -> dict[str, str]:
        return {TRIAL_ENV: json.dumps(asdict(self))}

    @classmethod
    def from_environment(cls) -> TrialReport | None:
        value = os.environ.get(TRIAL_ENV)
        return cls(**json.loads(value)) if value else None


def open_study(journal: Path, startup_trials: int = 3, warmup_epochs: int = 1) -> Any:
    """The study in `journal` (created if new), maximising validation F1, pruning below the
    median of the finished trials at the same epoch."""
    try:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
    except ImportError:
        raise LitNerError("lit_ner search needs Optuna: pip install 'lit-ner[search]'") from None

    compat.require("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(journal), lock_obj=JournalFileOpenLock(str(journal))))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs)
    return optuna.create_study(
        study_name=STUDY_NAME, storage=storage, direction="maximize", pruner=pruner, load_if_exists=True
    )


def trial_of(report: TrialReport) -> Any:
    """The `optuna.Trial` a trial's `fit` reports to."""
    study = open_study(Path(report.journal), report.startup_trials, report.warmup_epochs)
    return compat.optuna_trial(study, report.trial)
