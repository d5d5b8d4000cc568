"""`lit_ner search`: a hyper-parameter search on Optuna over `fit`'s own options, each trial a
normal `fit` run, pruned on validation F1, resumable and parallel without a server.

    lit_ner search --config configs/wnut.yaml --config configs/offline.yaml \\
        --space configs/search.yaml --trials 20 --study runs/search-wnut

- The configs and overrides are `fit`'s; `--space` (`search_space`) says which options vary and
  how. Every trial is `lit_ner fit` in a process of its own, from the configs resolved once
  (`STUDY/fit.yaml`) plus its sampled options, in its run directory `STUDY/trial-N/version_0`
  (config.yaml, metrics, checkpoints, export; its summary in `STUDY/trial-N/fit_summary.json`,
  its output in `STUDY/trial-N/fit.log`). Its value is its best validation entity F1; test is
  never run. Once the study has a trial's result its `.ckpt` files are deleted (only a running
  trial resumes from them; a failed trial keeps them), unless `--keep_checkpoints true`.
- Sampling: Optuna's TPE, multivariate, after `--random_trials` drawn at random (`tpe_sampler`).
- Pruning: at each epoch's end the trial's `fit` reports that epoch's validation F1 to the study
  (`callbacks.TrialPruning`); below the median of the finished trials at that epoch (Optuna's
  `MedianPruner`, once `--startup_trials` have finished, never before epoch `--warmup_epochs`
  + 1), it stops there and is marked pruned.
- The study lives in `STUDY/journal.log` (Optuna's journal file, no database server), so that a
  killed search resumes with the same command, and several `lit_ner search` processes pointed at
  one `--study` (a SLURM array) share its trials, each worker one trial at a time. A trial's
  worker holds `STUDY/trial-N/trial.lock` while it runs (its `fit` holds it too); a trial whose
  lock is free is an orphan (its worker was killed) and the next worker to start resumes it from
  its `last.ckpt`, as the same trial (or records it, if its fit finished): a trial is never
  counted twice. Workers take `STUDY/study.lock` to claim or ask for a trial and to write the
  results, one at a time. SIGTERM, SIGUSR1 or SIGINT stops the trial's `fit` at a checkpoint and
  the worker with exit status 75, to be started again. The study's folder must be on a file
  system with working `flock` (local disks, NFSv4, Lustre mounted with `flock`).
- The end: `STUDY/best.yaml` (the best trial's full `fit` config: `lit_ner fit --config
  STUDY/best.yaml --seeds 3` scores it on test over seeds), `STUDY/trials.csv` (settings,
  validation F1 per epoch, state, minutes) and plots (`history.png`, `importances.png`,
  `slices.png`: validation F1 against each searched option). With a `WandbLogger` in the configs,
  each trial is a W&B run in the group named after the study.

Every trial fits with the configs' seed, so that trials differ by their settings alone; one
worker with `--sampler_seed S` proposes the same trials again, several workers do not (which
trials have finished when one asks decides what it is given).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lit_ner.errors import EXIT_RESUMABLE, LitNerError, exit_with
from lit_ner.files import write_atomically
from lit_ner.training.search_report import (
    FIT_CONFIG,
    SUMMARY,
    option_arg,
    report,
    trial_dir,
    trial_summary,
)
from lit_ner.training.search_space import SearchSpace, read_search_space
from lit_ner.training.study import JOURNAL, TrialReport, open_study

LOCK = "trial.lock"
STUDY_LOCK = "study.lock"
PRUNED = "pruned.json"
FAILURES_IN_A_ROW = 3
SEARCH_OPTIONS = (
    "space", "trials", "hours", "study", "startup_trials", "warmup_epochs", "random_trials",
    "sampler_seed", "keep_checkpoints",
)  # fmt: skip
# `fit` options a search sets itself or cannot run with: option -> why.
REFUSED = {
    "seeds": "a trial is one fit at the configs' seed; refit the best config over seeds after the search",
    "data.train_with_validation": "a search chooses on validation, which this trains on",
    "checkpoint.dirpath": "each trial keeps its checkpoints in its own run directory",
    "summary_file": "the search writes each trial's summary beside it",
}


def search(argv: list[str] | None = None) -> dict[str, Any]:
    """`lit_ner search [--config ...] [fit overrides] --space SPACE (--trials N | --hours H)
    [--study DIR]`: parses `fit`'s configs as `fit` does (`--help` lists every option), then runs
    trials until the study has `--trials` of them or this worker has run `--hours`; returns the
    study's summary."""
    cli = search_cli(sys.argv[2:] if argv is None else argv)
    config = cli.config
    try:
        if config.space is None:
            raise LitNerError("lit_ner search: give --space, a search space file (see configs/search.yaml)")
        if config.trials is None and config.hours is None:
            raise LitNerError("lit_ner search: give --trials N, --hours H or both")
        space = read_search_space(config.space)
        study_dir = Path(config.study).resolve()
        fit_yaml = fit_config(cli)
        check_space(cli, space, fit_yaml)
        study_dir.mkdir(parents=True, exist_ok=True)
        with study_lock(study_dir):
            study = open_study(study_dir / JOURNAL, config.startup_trials, config.warmup_epochs)
            check_same_study(study, study_dir, fit_yaml, space, config)
        study.sampler = tpe_sampler(config.random_trials, config.sampler_seed)
        Worker(study, study_dir, space, config).run()
        with study_lock(study_dir):  # one worker at a time writes the results, from the study as it is
            return report(study, study_dir, space, cli.parser, SEARCH_OPTIONS)
    except LitNerError as exc:
        exit_with(exc)


def search_cli(argv: list[str]) -> Any:
    """`fit`'s LightningCLI, parsing only, with the search's own options added."""
    from lightning.pytorch.cli import LightningArgumentParser

    from lit_ner.data.datamodule import NERDataModule
    from lit_ner.model.module import TokenClassifier
    from lit_ner.training.cli import LitNerCLI

    class SearchCLI(LitNerCLI):
        """The fit configuration, parsed as `fit` parses it; nothing is built."""

        def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
            super().add_arguments_to_parser(parser)
            group = parser.add_argument_group("search")
            group.add_argument(
                "--space",
                type=str | None,
                default=None,
                help="the search space: a YAML file (see configs/search.yaml)",
            )
            group.add_argument(
                "--trials", type=int | None, default=None, help="trials in the study, all workers together"
            )
            group.add_argument(
                "--hours",
                type=float | None,
                default=None,
                help="this worker starts no trial after these hours",
            )
            group.add_argument(
                "--study", default="runs/search", help="the study's folder: its journal, trials and results"
            )
            group.add_argument(
                "--startup_trials", type=int, default=3, help="finished trials before any is pruned"
            )
            group.add_argument(
                "--warmup_epochs", type=int, default=1, help="epochs a trial always runs before pruning"
            )
            group.add_argument(
                "--random_trials",
                type=int,
                default=10,
                help="trials drawn at random before TPE models the finished ones (Optuna's default: 10)",
            )
            group.add_argument("--sampler_seed", type=int | None, default=None, help="the TPE sampler's seed")
            group.add_argument(
                "--keep_checkpoints",
                type=bool,
                default=False,
                help="keep a finished trial's .ckpt files (by default deleted once the study has its "
                "result: its metrics, config, summary and export stay)",
            )

        def before_instantiate_classes(self) -> None:
            pass

        def instantiate_classes(self) -> None:
            pass

    with warnings.catch_warnings():  # args given while sys.argv also has them: meant here
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        return SearchCLI(
            TokenClassifier, NERDataModule, run=False, args=argv, save_config_callback=None,
            parser_kwargs={"prog": "lit_ner search", "description": __doc__.split("\n\n")[0]},
        )  # fmt: skip


def tpe_sampler(random_trials: int, seed: int | None) -> Any:
    """Optuna's TPE, multivariate: the options of a recipe act together (a long schedule wants
    another learning rate than a short one), and TPE drawing each on its own misses that. With
    several workers, a running trial counts as a poor result (the constant liar), so that they do
    not all propose the same settings."""
    import optuna

    with warnings.catch_warnings():  # multivariate and constant_liar are "experimental" since 2.2
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            n_startup_trials=random_trials, multivariate=True, constant_liar=True, seed=seed
        )


def fit_config(cli: Any) -> str:
    """The `fit` configuration every trial starts from, resolved (as `fit --print_config` shows
    it); options a search cannot run with are refused."""
    config = cli.config.clone()
    for option in SEARCH_OPTIONS:
        del config[option]
    for option, why in REFUSED.items():
        if config.get(option):
            raise LitNerError(f"lit_ner search: {option} is set ({config.get(option)}); {why}")
    return cli.parser.dump(config, skip_none=False, skip_check=True)


def check_same_study(study: Any, study_dir: Path, fit_yaml: str, space: SearchSpace, config: Any) -> None:
    """A study's trials are comparable only under one fit config, one space and one pruner: the
    first worker records them, and a worker started with others is refused. A new study in a
    folder that holds another's trials is refused too (its trials would resume them)."""
    recorded = {
        "fit_config": fit_yaml,
        "space": {option: repr(dist) for option, dist in space.distributions.items()},
        "pruner": {"startup_trials": config.startup_trials, "warmup_epochs": config.warmup_epochs},
    }
    if not study.user_attrs:
        if any(study_dir.glob("trial-*")):
            raise LitNerError(
                f"{study_dir}: trials of another study are there (no journal of them): give another --study"
            )
        for key, value in recorded.items():
            study.set_user_attr(key, value)
    else:
        differs = [key for key, value in recorded.items() if study.user_attrs.get(key) != value]
        if differs:
            what = {
                "fit_config": "configs and overrides",
                "space": "search space",
                "pruner": "pruner settings",
            }
            raise LitNerError(
                f"{study_dir}: a study started with other {' and '.join(what[key] for key in differs)}; "
                "resume it with the same command, or give another --study"
            )
    write_atomically(study_dir / FIT_CONFIG, fit_yaml)


def check_space(cli: Any, space: SearchSpace, fit_yaml: str) -> None:
    """Each searched option is a `fit` option that takes each end of its range, each choice: a
    typo is one line naming the space file's line, before any trial runs."""
    import difflib
    import tempfile

    import yaml
    from optuna.distributions import CategoricalDistribution

    options = set(dotted_keys(yaml.safe_load(fit_yaml)))
    with tempfile.TemporaryDirectory(prefix="lit_ner_search_") as scratch:
        base = write_atomically(Path(scratch) / FIT_CONFIG, fit_yaml)
        for option, dist in space.distributions.items():
            if option not in options:
                near = difflib.get_close_matches(option, options, n=1)
                hint = f" (did you mean {near[0]}?)" if near else " (see lit_ner fit --help)"
                raise LitNerError(f"{space.where(option)} is not a fit option{hint}")
            values = dist.choices if isinstance(dist, CategoricalDistribution) else (dist.low, dist.high)
            for value in values:
                check_value(cli.parser, base, space, option, value)


def check_value(parser: Any, base: Path, space: SearchSpace, option: str, value: Any) -> None:
    import contextlib
    import io

    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            parser.parse_args(["--config", str(base), option_arg(option, value)])
    except SystemExit:
        said = [line for line in errors.getvalue().splitlines() if line.strip()]
        reason = said[-1].split("error:", 1)[-1].strip() if said else "refused"
        raise LitNerError(f"{space.where(option)}: fit does not take {value!r} ({reason})") from None


def dotted_keys(config: Any, prefix: str = "") -> list[str]:
    if not isinstance(config, dict):
        return []
    keys = []
    for key, value in config.items():
        keys.append(prefix + str(key))
        keys += dotted_keys(value, f"{prefix}{key}.")
    return keys


def try_lock(path: Path) -> Any:
    """`path` opened and locked (flock, exclusive; held until the file is closed, and by any
    process given its descriptor), or None when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    file = open(path, "a+")  # noqa: SIM115 (a lock file: its content is nothing, its lock everything)
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        return None
    except OSError as exc:
        file.close()
        raise no_flock(path, exc) from None
    return file


def no_flock(path: Path, exc: OSError) -> Exception:
    if exc.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP):
        return LitNerError(
            f"{path}: this file system does not lock files (flock); put --study on one that does"
        )
    return exc


@contextmanager
def study_lock(study_dir: Path) -> Iterator[None]:
    """The study's lock, waited for: claiming or asking for a trial, and writing the results."""
    path = study_dir / STUDY_LOCK
    with open(path, "a+") as file:  # a lock file, as above
        try:
            fcntl.flock(file, fcntl.LOCK_EX)
        except OSError as exc:
            raise no_flock(path, exc) from None
        yield


class Worker:
    """One `lit_ner search` process: resumes orphaned trials, then asks for new ones until the
    budget is spent, one `fit` at a time."""

    def __init__(self, study: Any, study_dir: Path, space: SearchSpace, config: Any) -> None:
        self.study, self.study_dir, self.space = study, study_dir, space
        self.trials, self.hours = config.trials, config.hours
        self.startup_trials, self.warmup_epochs = config.startup_trials, config.warmup_epochs
        self.keep_checkpoints = config.keep_checkpoints
        self.started = time.monotonic()
        self.failures_in_a_row = 0
        self._child: subprocess.Popen | None = None
        self._stopping = False

    def run(self) -> None:
        stops = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
        handlers = {signum: signal.signal(signum, self._stop) for signum in stops}
        try:
            while not self._stopping:
                claimed = self.next_trial()
                if claimed is None:
                    return
                number, params, lock, resumed = claimed
                try:
                    self.run_trial(number, params, lock, resumed)
                finally:
                    lock.close()
            raise SystemExit(EXIT_RESUMABLE)
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)

    def next_trial(self) -> tuple[int, dict[str, Any], Any, bool] | None:
        """Under the study's lock: an orphan to resume, else a new trial while the budget
        lasts, with its lock held (the caller closes it)."""
        from optuna.trial import TrialState

        with study_lock(self.study_dir):
            for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                lock = try_lock(trial_dir(self.study_dir, trial.number) / LOCK)
                if lock is None:
                    continue  # its worker runs it
                if self.state(trial.number) != TrialState.RUNNING or self.record_finished(trial.number):
                    lock.close()  # finished between the listing and the lock, or its fit had
                    continue
                print(f"lit_ner search: trial {trial.number} was left running; resuming it", flush=True)
                return trial.number, trial.params, lock, True
            if self.budget_spent():
                return None
            trial = self.study.ask(self.space.distributions)
            lock = try_lock(trial_dir(self.study_dir, trial.number) / LOCK)
            assert lock is not None, "a trial just asked for, under the study's lock, is no one else's"
            return trial.number, trial.params, lock, False

    def state(self, number: int) -> Any:
        return self.study.get_trials(deepcopy=False)[number].state

    def budget_spent(self) -> bool:
        from optuna.trial import TrialState

        # Trials run or running, by any worker; failed ones are not counted (nor those waiting
        # in the queue, `study.enqueue_trial`: they are the next asked for).
        counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        if (
            self.trials is not None
            and len(self.study.get_trials(deepcopy=False, states=counted)) >= self.trials
        ):
            return True
        return self.hours is not None and time.monotonic() - self.started >= self.hours * 3600

    def record_finished(self, number: int) -> bool:
        """Tells the study how trial `number` ended when its fit finished (its summary written
        after its last checkpoint) but its worker did not live to say; False if it did not."""
        summary_file = trial_dir(self.study_dir, number) / SUMMARY
        checkpoints = list(trial_dir(self.study_dir, number).glob("**/checkpoints/last.ckpt"))
        last = max((path.stat().st_mtime for path in checkpoints), default=0.0)
        if not summary_file.is_file() or summary_file.stat().st_mtime < last:
            return False
        self.tell(number, trial_summary(self.study_dir, number) or {})
        return True

    def run_trial(self, number: int, params: dict[str, Any], lock: Any, resumed: bool) -> None:
        from optuna.trial import TrialState

        root = trial_dir(self.study_dir, number)
        write_atomically(
            root / "trial.yaml",
            trial_config((self.study_dir / FIT_CONFIG).read_text(), self.study_dir, number),
        )
        command = [
            sys.executable, "-m", "lit_ner", "fit", "--config", str(root / "trial.yaml"),
            *(option_arg(option, value) for option, value in params.items()),
            # A search chooses on validation; test is for the chosen recipe, after the search.
            "--test_after_fit=false", "--trainer.enable_progress_bar=false",
            f"--summary_file={root / SUMMARY}", *(["--ckpt_path", "last"] if resumed else []),
        ]  # fmt: skip
        report = TrialReport(
            str(self.study_dir / JOURNAL), number, self.startup_trials, self.warmup_epochs, str(root / PRUNED)
        )
        # Its own job id, whichever worker runs it: a resumed trial continues its run directory.
        env = {**os.environ, **report.environment(), "LIT_NER_JOB": f"search:{self.study_dir}/trial-{number}"}
        if not resumed:
            print(
                f"lit_ner search: trial {number}: " + ", ".join(f"{k}={v}" for k, v in params.items()),
                flush=True,
            )
        with open(root / "fit.log", "a") as log:  # a log, appended to by a resumed trial's fit
            # In a session of its own: a signal to this worker's group (a terminal's Ctrl-C, a
            # scheduler's SIGTERM) reaches the fit once, forwarded by `_stop`, not twice.
            self._child = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, pass_fds=(lock.fileno(),),
                start_new_session=True,
            )  # fmt: skip
            status = self._child.wait()
            self._child = None
        if status == EXIT_RESUMABLE or self._stopping:
            print(f"lit_ner search: trial {number} stopped to be resumed (its last.ckpt kept)", flush=True)
            raise SystemExit(EXIT_RESUMABLE)
        summary = trial_summary(self.study_dir, number)
        if status != 0 or summary is None:
            self.failures_in_a_row += 1
            self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
            tail = (root / "fit.log").read_text().strip().splitlines()[-1:] or ["(no output)"]
            print(f"lit_ner search: trial {number} failed (exit status {status}): {tail[0]}", flush=True)
            if self.failures_in_a_row >= FAILURES_IN_A_ROW:
                raise LitNerError(f"{FAILURES_IN_A_ROW} trials failed in a row; see {root / 'fit.log'}")
            return
        self.failures_in_a_row = 0
        self.tell(number, summary)

    def tell(self, number: int, summary: dict[str, Any]) -> None:
        """The study told how trial `number` ended: pruned (its `pruned.json`), or its best
        validation F1."""
        from optuna.trial import TrialState

        pruned_file = trial_dir(self.study_dir, number) / PRUNED
        if pruned_file.is_file():
            pruned = json.loads(pruned_file.read_text())
            self.study.tell(number, state=TrialState.PRUNED, skip_if_finished=True)
            print(f"lit_ner search: trial {number} pruned after epoch {pruned['epoch']} "
                  f"(validation F1 {pruned['val_f1']:.4f})", flush=True)  # fmt: skip
        elif summary.get("best/val_f1") is None:
            self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
            raise LitNerError(f"trial {number} has no validation F1: a search chooses on a validation split")
        else:
            value = summary["best/val_f1"]
            self.study.tell(number, value, skip_if_finished=True)
            print(
                f"lit_ner search: trial {number}: validation F1 {value:.4f} ({summary['minutes']:.1f} min)",
                flush=True,
            )
        if not self.keep_checkpoints:
            # Only a running trial resumes from them; each holds the optimizer's state too, and a
            # study of many trials would fill a disk (a cluster's quota) with what no one reads.
            # (any depth: a W&B run keeps them under PROJECT/RUN_ID/checkpoints)
            for checkpoint in trial_dir(self.study_dir, number).glob("**/checkpoints/*.ckpt"):
                checkpoint.unlink()

    def _stop(self, signum: int, frame: Any) -> None:
        # The trial's fit saves its last.ckpt and exits 75 (SIGTERM for a Ctrl-C: a stop, not an
        # interrupt mid-step); then this worker exits 75 too.
        self._stopping = True
        if self._child is not None and self._child.poll() is None:
            self._child.send_signal(signal.SIGTERM if signum == signal.SIGINT else signum)


def trial_config(fit_yaml: str, study_dir: Path, number: int) -> str:
    """The study's fit config for trial `number`: its run under `STUDY/trial-N` (a W&B run's
    files under it too), in the study's W&B group with a W&B logger."""
    import yaml

    config = yaml.safe_load(fit_yaml)
    trainer = config.setdefault("trainer", {})
    loggers = trainer.get("logger")
    if loggers in (None, True, False):
        loggers = {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {}}
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        init_args = logger.setdefault("init_args", {}) or {}
        logger["init_args"] = init_args
        init_args["name"] = f"trial-{number}"
        init_args["version"] = None
        if str(logger.get("class_path", "")).endswith("WandbLogger"):
            init_args["group"] = study_dir.name
            init_args["save_dir"] = str(trial_dir(study_dir, number))
        else:
            init_args["save_dir"] = str(study_dir)
    trainer["logger"] = loggers
    return yaml.safe_dump(config, sort_keys=False)
