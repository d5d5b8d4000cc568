"""The recipe search on full WNUT-17: `lit_ner search` with configs/search.yaml over the offline
recipe's configs (all-MiniLM-L6-v2), then the best trial's config refit over seeds 42-44 and scored
on test, kept in `bench/results.json` under "search": `make search`.

Usage: python bench/search.py [--trials N] [--study runs/search-wnut-offline]

The budget is a number of trials (`--trials`, study-wide), run by one worker whose TPE sampler is
seeded (`--sampler_seed 42`), guided after 5 random trials, and pruned from the third epoch on:
the same command proposes the same trials again, and each trial's fit is deterministic on a CPU,
so the search reproduces trial by trial. The search is resumable (its journal beside the trials:
run the command again and it goes on), and so is each refit seed (`--ckpt_path last`; a seed
whose run has its fit_summary.json is kept). The record: every trial (state, best validation F1,
epochs run, minutes, settings), the counts, the search's wall-clock
minutes from the journal, the best trial, and the refit's runs and scores over the seeds, with the
hand-made recipe's validation F1 (row `recipe`) beside it; the study's history plot is copied
for docs/experiments.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))

from results import CONFIGS, REPO, fit_seeds, machine  # noqa: E402 (bench/ is no package)

SPACE = "configs/search.yaml"
SAMPLER_SEED = 42
RANDOM_TRIALS = 5  # of TPE's, before it models the finished trials (Optuna's default 10 exceeds this budget)
WARMUP_EPOCHS = 2  # the pruner's: epochs in the space, a long schedule is not judged on its first two
TRIALS = 7
HISTORY_PLOT = REPO / "docs" / "img" / "search_history.png"  # docs/experiments.md's


def search_command(trials: int, study: str) -> list[str]:
    return [
        "search", *CONFIGS, "--space", SPACE, "--trials", str(trials),
        "--random_trials", str(RANDOM_TRIALS), "--warmup_epochs", str(WARMUP_EPOCHS),
        "--sampler_seed", str(SAMPLER_SEED), "--study", study,
    ]  # fmt: skip


def settings(config_file: Path) -> tuple:
    """What a fit trains with: its model, data and trainer settings (not where it logs)."""
    config = yaml.safe_load(config_file.read_text())
    trainer = {k: v for k, v in config["trainer"].items() if k not in ("logger", "enable_progress_bar")}
    return config["model"], config["data"], trainer


def trials_record(study_dir: Path) -> dict:
    """Each trial of the study as its journal and its fit's summary say, and the wall clock from
    the first trial's start to the last one's end."""
    from lit_ner.training.search_report import trial_summary
    from lit_ner.training.study import JOURNAL, open_study

    study = open_study(study_dir / JOURNAL)
    trials = study.get_trials(deepcopy=False)
    rows = []
    for trial in trials:
        summary = trial_summary(study_dir, trial.number) or {}
        values = trial.intermediate_values
        rows.append({
            "trial": trial.number,
            "state": trial.state.name.lower(),
            "val_f1": trial.value,
            "epochs": max(values) + 1 if values else 0,
            "val_f1_per_epoch": [values[epoch] for epoch in sorted(values)],
            "minutes": summary.get("minutes"),
            "params": trial.params,
        })  # fmt: skip
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    states = [row["state"] for row in rows]
    best = study.best_trial
    return {
        "trials": rows,
        "counts": {state: states.count(state) for state in sorted(set(states))},
        "wall_minutes": round((max(ends) - min(starts)).total_seconds() / 60, 1),
        "fit_minutes": round(sum(row["minutes"] or 0.0 for row in rows), 1),
        "best": {"trial": best.number, "val_f1": best.value, "params": best.params},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=TRIALS, help="the budget: trials in the study")
    parser.add_argument("--study", default="runs/search-wnut-offline")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json")
    args = parser.parse_args()
    search = search_command(args.trials, args.study)
    subprocess.run([sys.executable, "-m", "lit_ner", *search], check=True, cwd=REPO)
    record = trials_record(REPO / args.study)
    if (ran := len(record["trials"])) > args.trials:  # the budget recorded is the one that ran
        sys.exit(f"bench/search.py: {args.study} has {ran} trials: give --trials {ran} or more")
    best = REPO / args.study / "best.yaml"

    def same_settings(run_dir: Path) -> None:
        if settings(run_dir / "config.yaml") != settings(best):
            sys.exit(f"bench/search.py: {run_dir} is a refit of other settings than {best}: move it away")

    refits, summary = fit_seeds(["--config", f"{args.study}/best.yaml"], "search-refit", same_settings)
    data = json.loads(args.out.read_text())
    data["search"] = {
        "command": "python -m lit_ner " + " ".join(search),
        "budget_trials": args.trials,
        **record,
        "refit": {"commands": refits, "runs": summary["runs"], "scores": summary["scores"]},
        "recipe_val_f1": data["results"]["recipe"]["scores"]["best/val_f1"]["mean"],
        "machine": machine(),
    }
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    shutil.copyfile(REPO / args.study / "history.png", HISTORY_PLOT)
    print(f"search: written to {args.out} and {HISTORY_PLOT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
