"""The results of a `lit_ner search` study, written beside it: `trials.csv`, `best.yaml` and the
plots (`plots.plot_search`), from the study and its trials' summaries."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path
from typing import Any

from lit_ner.files import write_atomically
from lit_ner.training.search_space import SearchSpace

FIT_CONFIG = "fit.yaml"  # the configs every trial starts from, resolved
SUMMARY = "fit_summary.json"  # a trial's, beside its run directory: `STUDY/trial-N/fit_summary.json`


def trial_dir(study_dir: Path, number: int) -> Path:
    return study_dir / f"trial-{number}"


def trial_summary(study_dir: Path, number: int) -> dict[str, Any] | None:
    """Trial `number`'s `fit_summary.json` (run directory, best validation F1, minutes), once its
    fit has finished."""
    path = trial_dir(study_dir, number) / SUMMARY
    return json.loads(path.read_text()) if path.is_file() else None


def option_arg(option: str, value: Any) -> str:
    # Numbers, booleans and null as JSON (which jsonargparse reads as YAML); strings as they are.
    return f"--{option}={value if isinstance(value, str) else json.dumps(value)}"


def report(
    study: Any, study_dir: Path, space: SearchSpace, parser: Any, options: tuple[str, ...]
) -> dict[str, Any]:
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
        written.append(write_best_config(parser, options, study_dir, best))
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
        summary = trial_summary(study_dir, trial.number) or {}
        minutes, run_dir = summary.get("minutes"), summary.get("run_dir", "")
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


def write_best_config(parser: Any, options: tuple[str, ...], study_dir: Path, best: Any) -> Path:
    """The best trial's whole `fit` config: the study's configs with its settings (parsed by the
    search's parser, its own `options` then dropped)."""
    args = ["--config", str(study_dir / FIT_CONFIG), *(option_arg(k, v) for k, v in best.params.items())]
    config = parser.parse_args(args)
    for option in options:
        del config[option]
    header = (
        f"# lit_ner search: trial {best.number} of {study_dir}, best validation F1 {best.value:.4f}\n"
        f"# next: lit_ner fit --config {study_dir / 'best.yaml'} --seeds 3  (its test F1 over seeds)\n"
    )
    return write_atomically(
        study_dir / "best.yaml", header + parser.dump(config, skip_none=False, skip_check=True)
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
