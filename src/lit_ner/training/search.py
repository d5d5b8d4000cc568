"""`lit_ner search`: a hyper-parameter search on Optuna over `fit`'s own options, each trial a
normal `fit` run, pruned on validation F1, resumable and parallel without a server.

    lit_ner search --config configs/wnut.yaml --config configs/offline.yaml \\
        --space configs/search.yaml --trials 20 --study runs/search-wnut

- The configs and overrides are `fit`'s; `--space` (`search_space`) says which options vary and
  how. Every trial is `lit_ner fit` in a process of its own, from the configs resolved once
  (`STUDY/fit.yaml`) plus its sampled options, in its run directory `STUDY/trial-N/version_0`
  (config.yaml, metrics, checkpoints, fit_summary.json, its log in `STUDY/trial-N/fit.log`). Its
  value is its best validation entity F1; test is never run (`--test_after_fit false`).
- Pruning: after each validation the trial's `fit` reports validation F1 for that epoch to the
  study (`callbacks.TrialPruning`); below the median of the finished trials at that epoch (Optuna's
  `MedianPruner`, once `--startup_trials` have finished, never before epoch `--warmup_epochs`
  + 1), it stops at the epoch's end and is marked pruned.
- The study lives in `STUDY/journal.log` (Optuna's journal file, no database server), so that a
  killed search resumes with the same command, and several `lit_ner search` processes pointed at
  one `--study` (a SLURM array) share its trials, each worker one trial at a time. A trial's
  worker holds `STUDY/trial-N/trial.lock` while it runs (its `fit` holds it too); a trial whose
  lock is free is an orphan (its worker was killed) and the next worker to start resumes it from
  its `last.ckpt`, as the same trial: a trial is never counted twice. SIGTERM or SIGUSR1 stops the
  trial's `fit` at a checkpoint and the worker with exit status 75, to be started again.
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

import csv
import fcntl
import io
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from lit_ner import compat
from lit_ner.errors import EXIT_RESUMABLE, LitNerError, exit_with
from lit_ner.files import write_atomically
from lit_ner.training.search_space import SearchSpace, read_search_space
from lit_ner.training.summary import SUMMARY_FILE

TRIAL_ENV = "LIT_NER_TRIAL"  # set by a search worker for its trial's `fit`: where to report
JOURNAL = "journal.log"
FIT_CONFIG = "fit.yaml"
LOCK = "trial.lock"
PRUNED = "pruned.json"
STUDY_NAME = "lit_ner"
# A trial asked for but never locked (its worker killed in between) is an orphan after this.
UNLOCKED_GRACE = timedelta(minutes=10)
FAILURES_IN_A_ROW = 3
SEARCH_OPTIONS = (
    "space", "trials", "hours", "study", "startup_trials", "warmup_epochs", "sampler_seed",
)  # fmt: skip


def open_study(journal: Path, startup_trials: int = 3, warmup_epochs: int = 1) -> Any:
    """The study in `journal` (created if new), maximising validation F1."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    compat.require("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(journal), lock_obj=JournalFileOpenLock(str(journal))))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs)
    return optuna.create_study(
        study_name=STUDY_NAME, storage=storage, direction="maximize", pruner=pruner, load_if_exists=True
    )


def search(argv: list[str] | None = None) -> dict[str, Any]:
    """`lit_ner search [--config ...] [fit overrides] --space SPACE (--trials N | --hours H)
    [--study DIR]`: parses `fit`'s configs as `fit` does (`--help` lists every option), then runs
    trials until the study has `--trials` of them or this worker has run `--hours`; returns the
    study's summary."""
    cli = search_cli(sys.argv[2:] if argv is None else argv)
    config = cli.config
    if config.space is None:
        exit_with(LitNerError("lit_ner search: give --space, a search space file (see configs/search.yaml)"))
    if config.trials is None and config.hours is None:
        exit_with(LitNerError("lit_ner search: give --trials N, --hours H or both"))
    try:
        space = read_search_space(config.space)
        study_dir = Path(config.study)
        fit_yaml = fit_config(cli)
        check_space(cli, space, fit_yaml)
        study_dir.mkdir(parents=True, exist_ok=True)
        study = open_study(study_dir / JOURNAL, config.startup_trials, config.warmup_epochs)
        check_same_study(study, study_dir, fit_yaml, space)
        sampler_seed = config.sampler_seed
        if sampler_seed is not None:
            import optuna

            study.sampler = optuna.samplers.TPESampler(seed=sampler_seed)
        worker = Worker(study, study_dir, space, config)
        worker.run()
        return report(study, study_dir, space, cli)
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
            group.add_argument("--sampler_seed", type=int | None, default=None, help="the TPE sampler's seed")

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


def fit_config(cli: Any) -> str:
    """The `fit` configuration every trial starts from, resolved (as `fit --print_config` shows it)."""
    config = cli.config.clone()
    for option in SEARCH_OPTIONS:
        del config[option]
    return cli.parser.dump(config, skip_none=False, skip_check=True)


def check_same_study(study: Any, study_dir: Path, fit_yaml: str, space: SearchSpace) -> None:
    """A study's trials are comparable only under one fit config and one space: the first worker
    records both, and a worker started with others is refused."""
    searched = {option: repr(dist) for option, dist in space.distributions.items()}
    recorded = study.user_attrs
    if not recorded:
        study.set_user_attr("fit_config", fit_yaml)
        study.set_user_attr("space", searched)
    elif recorded.get("fit_config") != fit_yaml or recorded.get("space") != searched:
        what = "configs and overrides" if recorded.get("fit_config") != fit_yaml else "search space"
        raise LitNerError(
            f"{study_dir}: a study started with another {what}; resume it with the same command, or give "
            "another --study"
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


def option_arg(option: str, value: Any) -> str:
    # Numbers, booleans and null as JSON (which jsonargparse reads as YAML); strings as they are.
    return f"--{option}={value if isinstance(value, str) else json.dumps(value)}"


class Worker:
    """One `lit_ner search` process: resumes orphaned trials, then asks for new ones until the
    budget is spent, one `fit` at a time."""

    def __init__(self, study: Any, study_dir: Path, space: SearchSpace, config: Any) -> None:
        self.study, self.study_dir, self.space = study, study_dir, space
        self.trials, self.hours = config.trials, config.hours
        self.startup_trials, self.warmup_epochs = config.startup_trials, config.warmup_epochs
        self.started = time.monotonic()
        self.failures_in_a_row = 0
        self._child: subprocess.Popen | None = None
        self._stop_signal: int | None = None

    def run(self) -> None:
        handlers = {sig: signal.signal(sig, self._forward) for sig in (signal.SIGTERM, signal.SIGUSR1)}
        try:
            while True:
                orphan = self.claim_orphan()
                if orphan is not None:
                    trial, lock = orphan
                    print(f"lit_ner search: trial {trial.number} was left running; resuming it", flush=True)
                elif self.budget_spent():
                    return
                else:
                    trial = self.study.ask(self.space.distributions)
                    lock = self.lock(trial.number, wait=False)
                    assert lock is not None, "a trial just asked for is no other worker's"
                self.run_trial(trial.number, trial.params, lock)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

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

    def lock(self, number: int, wait: bool) -> Any:
        """Trial `number`'s lock file, held (exclusive, this process and its `fit`), or None when
        another process holds it."""
        path = self.study_dir / f"trial-{number}" / LOCK
        path.parent.mkdir(parents=True, exist_ok=True)
        file = open(path, "a+")  # noqa: SIM115 (held for the trial's whole run)
        try:
            fcntl.flock(file, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            file.close()
            return None
        return file

    def claim_orphan(self) -> tuple[Any, Any] | None:
        """A RUNNING trial nobody runs (its lock free; or never locked, and asked for long ago),
        locked for this worker."""
        from optuna.trial import TrialState

        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            locked_before = (self.study_dir / f"trial-{trial.number}" / LOCK).is_file()
            if not locked_before and datetime.now() - trial.datetime_start < UNLOCKED_GRACE:
                continue  # asked for a moment ago; its worker is about to lock it
            lock = self.lock(trial.number, wait=False)
            if lock is not None:
                return trial, lock
        return None

    def run_trial(self, number: int, params: dict[str, Any], lock: Any) -> None:
        from optuna.trial import TrialState

        root = self.study_dir / f"trial-{number}"
        command = [
            sys.executable, "-m", "lit_ner", "fit", "--config", str(root / "trial.yaml"),
            *(option_arg(option, value) for option, value in params.items()),
            # A search chooses on validation; test is for the chosen recipe, after the search.
            "--test_after_fit=false", "--trainer.enable_progress_bar=false", "--ckpt_path", "last",
        ]  # fmt: skip
        write_atomically(
            root / "trial.yaml",
            trial_config((self.study_dir / FIT_CONFIG).read_text(), self.study_dir, number),
        )
        report = {
            "journal": str(self.study_dir / JOURNAL), "trial": number,
            "startup_trials": self.startup_trials, "warmup_epochs": self.warmup_epochs,
        }  # fmt: skip
        env = {**os.environ, TRIAL_ENV: json.dumps(report), "LIT_NER_JOB_PART": f"trial-{number}"}
        settings = ", ".join(f"{option}={value}" for option, value in params.items())
        print(f"lit_ner search: trial {number}: {settings}", flush=True)
        with lock, open(root / "fit.log", "a") as log:
            self._child = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, pass_fds=(lock.fileno(),)
            )
            status = self._child.wait()
            self._child = None
            if status == EXIT_RESUMABLE or self._stop_signal is not None:
                print(
                    f"lit_ner search: trial {number} stopped to be resumed (its last.ckpt kept)", flush=True
                )
                raise SystemExit(EXIT_RESUMABLE)
            runs = sorted(root.glob(f"version_*/{SUMMARY_FILE}"))
            if status != 0 or not runs:
                self.failures_in_a_row += 1
                self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
                tail = (root / "fit.log").read_text().strip().splitlines()[-1:] or ["(no output)"]
                print(f"lit_ner search: trial {number} failed (exit status {status}): {tail[0]}", flush=True)
                if self.failures_in_a_row >= FAILURES_IN_A_ROW:
                    raise LitNerError(f"{FAILURES_IN_A_ROW} trials failed in a row; see {root / 'fit.log'}")
                return
            self.failures_in_a_row = 0
            summary = json.loads(runs[-1].read_text())
            pruned_file = runs[-1].parent / PRUNED
            if pruned_file.is_file():
                pruned = json.loads(pruned_file.read_text())
                self.study.tell(number, state=TrialState.PRUNED, skip_if_finished=True)
                print(f"lit_ner search: trial {number} pruned after epoch {pruned['epoch']} "
                      f"(validation F1 {pruned['val_f1']:.4f})", flush=True)  # fmt: skip
            elif summary.get("best/val_f1") is None:
                self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
                raise LitNerError(
                    f"trial {number} has no validation F1: a search chooses on a validation split"
                )
            else:
                value = summary["best/val_f1"]
                self.study.tell(number, value, skip_if_finished=True)
                print(f"lit_ner search: trial {number}: validation F1 {value:.4f} "
                      f"({summary['minutes']:.1f} min)", flush=True)  # fmt: skip

    def _forward(self, signum: int, frame: Any) -> None:
        # The trial's fit saves its last.ckpt and exits 75; then this worker does too.
        self._stop_signal = signum
        if self._child is not None and self._child.poll() is None:
            self._child.send_signal(signum)
        else:
            raise SystemExit(EXIT_RESUMABLE)


def trial_config(fit_yaml: str, study_dir: Path, number: int) -> str:
    """The study's fit config for trial `number`: its run under `STUDY/trial-N`, in the study's
    W&B group with a W&B logger."""
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
            init_args["save_dir"] = str(study_dir)
        else:
            init_args["save_dir"] = str(study_dir)
    trainer["logger"] = loggers
    return yaml.safe_dump(config, sort_keys=False)


def report(study: Any, study_dir: Path, space: SearchSpace, cli: Any) -> dict[str, Any]:
    """Writes the study's results beside it, prints where, and returns them: `trials.csv`, the
    plots, and `best.yaml` once a trial has finished."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): sum(t.state == state for t in trials) for state in TrialState}
    written = [write_trials_csv(trials, study_dir, space)]
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    result: dict[str, Any] = {"study": str(study_dir), "trials": len(trials), **counts}
    if complete:
        best = study.best_trial
        written.append(write_best_config(cli, study_dir, best))
        written += write_plots(study, study_dir, space, len(complete))
        result["best"] = {"trial": best.number, "val_f1": best.value, "params": best.params}
    result["files"] = [str(path) for path in written]
    states = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    print(f"lit_ner search: {len(trials)} trials in {study_dir} ({states or 'none yet'})")
    if complete:
        print(f"  best: trial {best.number}, validation F1 {best.value:.4f}: {best.params}")
        print(f"  next: lit_ner fit --config {study_dir / 'best.yaml'} --seeds 3  (its test F1 over seeds)")
    for path in written:
        print(f"  wrote {path}")
    return result


def trial_minutes(study_dir: Path, number: int) -> tuple[float | None, str]:
    runs = sorted((study_dir / f"trial-{number}").glob(f"version_*/{SUMMARY_FILE}"))
    if not runs:
        return None, ""
    return json.loads(runs[-1].read_text()).get("minutes"), str(runs[-1].parent)


def write_trials_csv(trials: list[Any], study_dir: Path, space: SearchSpace) -> Path:
    """One row a trial: its state, best validation F1, settings, validation F1 per epoch (as
    reported: a pruned trial's stop early), minutes and run directory."""
    epochs = max((max(t.intermediate_values) + 1 for t in trials if t.intermediate_values), default=0)
    header = [
        "trial",
        "state",
        "val_f1",
        *space.distributions,
        *(f"val_f1_epoch_{e + 1}" for e in range(epochs)),
    ]
    rows = []
    for trial in trials:
        minutes, run_dir = trial_minutes(study_dir, trial.number)
        values = trial.intermediate_values
        rows.append(
            [trial.number, trial.state.name.lower(), trial.value if trial.value is not None else "",
             *(trial.params.get(option, "") for option in space.distributions),
             *(values.get(e, "") for e in range(epochs)), "" if minutes is None else minutes, run_dir]
        )  # fmt: skip
    path = study_dir / "trials.csv"
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow([*header, "minutes", "run_dir"])
    writer.writerows(rows)
    return write_atomically(path, text.getvalue())


def write_best_config(cli: Any, study_dir: Path, best: Any) -> Path:
    """The best trial's whole `fit` config: the study's configs with its settings."""
    args = ["--config", str(study_dir / FIT_CONFIG), *(option_arg(k, v) for k, v in best.params.items())]
    config = cli.parser.parse_args(args)
    for option in SEARCH_OPTIONS:
        del config[option]
    header = (
        f"# lit_ner search: trial {best.number} of {study_dir}, best validation F1 {best.value:.4f}\n"
        f"# next: lit_ner fit --config {study_dir / 'best.yaml'} --seeds 3  (its test F1 over seeds)\n"
    )
    return write_atomically(
        study_dir / "best.yaml", header + cli.parser.dump(config, skip_none=False, skip_check=True)
    )


def write_plots(study: Any, study_dir: Path, space: SearchSpace, complete: int) -> list[Path]:
    """history.png, slices.png and, from 2 finished trials, importances.png (`plots.plot_search`;
    importances by Optuna's default evaluator, PED-ANOVA)."""
    import optuna
    from optuna.distributions import CategoricalDistribution

    from lit_ner.plots import plot_search

    trials = [
        {"number": t.number, "state": t.state.name.lower(), "value": t.value, "params": t.params}
        for t in study.get_trials(deepcopy=False)
    ]
    options = {
        option: not isinstance(dist, CategoricalDistribution) and dist.log
        for option, dist in space.distributions.items()
    }
    importances = None
    if complete >= 2:
        with warnings.catch_warnings():  # too few trials for a confident estimate: still drawn
            warnings.simplefilter("ignore")
            importances = optuna.importance.get_param_importances(study)
    return plot_search(trials, options, importances, study_dir)
