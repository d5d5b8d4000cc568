"""Several seeds of one recipe, and their mean and spread: `lit_ner fit ... --seeds 3` and
`lit_ner summarize RUN_DIR ...`.

One seed's F1 on WNUT-17 moves by a point or two with the seed alone (the classifier head's
initialisation, dropout, the batch order), about as much as most recipe changes buy; so a recipe
is judged by its mean over seeds, with the standard deviation beside it.

`fit --seeds N` runs `fit` once per seed (42, 43, ... or `--seeds 1,7,9`), each in its own
process and run directory, then summarises them. On a cluster, submit one job per seed
(`--seed_everything S`, e.g. a SLURM array) and run `lit_ner summarize` on their run directories.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lit_ner.errors import LitNerError, exit_with

FIRST_SEED = 42  # the configs' seed_everything: seed 1 of N is the single-seed recipe
SCORES = ("best/val_f1", "test/f1", "test/precision", "test/recall", "test/accuracy")


def parse_seeds(value: str) -> list[int]:
    """`"3"` -> [42, 43, 44]; `"1,7,9"` -> [1, 7, 9]."""
    try:
        if "," in value:
            seeds = [int(part) for part in value.split(",") if part.strip()]
        else:
            seeds = list(range(FIRST_SEED, FIRST_SEED + int(value)))
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds):
        raise LitNerError(f"--seeds {value!r}: give a count (3) or distinct seeds (1,7,9)")
    return seeds


def summarize(run_dirs: Sequence[str | Path]) -> dict[str, Any]:
    """Each run's `fit_summary.json`, and per score the mean, the sample standard deviation
    (0 for one run) and the values in run order."""
    runs = []
    for run_dir in run_dirs:
        path = Path(run_dir) / "fit_summary.json"
        if not path.is_file():
            raise LitNerError(f"{path}: not found (is {run_dir} the run directory of a finished fit?)")
        runs.append(json.loads(path.read_text()))
    scores = {}
    for name in SCORES:
        values = [run[name] for run in runs if run.get(name) is not None]
        if len(values) == len(runs):
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            scores[name] = {"mean": statistics.fmean(values), "std": spread, "values": values}
    return {"runs": runs, "scores": scores}


def format_summary(summary: dict[str, Any]) -> str:
    seeds = [run.get("seed") for run in summary["runs"]]
    lines = [f"{len(seeds)} runs (seeds {', '.join(str(seed) for seed in seeds)}): mean ± standard deviation"]
    for name, numbers in summary["scores"].items():
        values = ", ".join(f"{value:.4f}" for value in numbers["values"])
        lines.append(f"  {name:>15}: {numbers['mean']:.4f} ± {numbers['std']:.4f}  ({values})")
    lines += [f"  run: {run['run_dir']}" for run in summary["runs"]]
    return "\n".join(lines)


def run_fit(args: Sequence[str], seed: int) -> Path:
    """One `lit_ner fit` with `seed`, its output passed through; its run directory."""
    command = [sys.executable, "-m", "lit_ner", "fit", *args, f"--seed_everything={seed}"]
    print(f"lit_ner fit --seeds: seed {seed}: {' '.join(command[3:])}", flush=True)
    run_dir = None
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, bufsize=1, env=os.environ.copy()
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            if line.startswith("  run directory: "):
                run_dir = Path(line.removeprefix("  run directory: ").strip())
    if process.returncode != 0:
        raise LitNerError(
            f"fit with seed {seed} failed (exit status {process.returncode}); see its output above"
        )
    if run_dir is None:
        raise LitNerError(f"fit with seed {seed} printed no run directory (fast_dev_run makes none)")
    return run_dir


def seeds_main(argv: list[str]) -> None:
    """`lit_ner fit ARGS --seeds N|S1,S2,...`: one fit per seed, then their summary (printed, and
    written as `seeds-<seeds>.json` beside the run directories)."""
    args, value = [], None
    iterator = iter(argv)
    for arg in iterator:
        if arg == "--seeds":
            value = next(iterator, "")
        elif arg.startswith("--seeds="):
            value = arg.removeprefix("--seeds=")
        else:
            args.append(arg)
    try:
        seeds = parse_seeds(value or "")
        if any(arg.startswith("--seed_everything") for arg in args):
            raise LitNerError("--seeds sets each run's --seed_everything: leave that out")
        run_dirs = [run_fit(args, seed) for seed in seeds]
        summary = summarize(run_dirs)
    except LitNerError as exc:
        exit_with(exc)
    path = Path(os.path.commonpath([str(d.resolve()) for d in run_dirs]))
    path = (path if len(run_dirs) > 1 else path.parent) / f"seeds-{'-'.join(map(str, seeds))}.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print("\nlit_ner fit --seeds: done")
    print(format_summary(summary))
    print(f"  summary: {path}")


def summarize_main(argv: list[str]) -> None:
    """`lit_ner summarize RUN_DIR ... [--json]`: mean and spread of finished fits."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog="lit_ner summarize", description=summarize_main.__doc__.split(": ", 1)[1])
    parser.add_argument("run_dirs", nargs="+", help="run directories holding fit_summary.json")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args(argv)
    try:
        summary = summarize(args.run_dirs)
    except LitNerError as exc:
        exit_with(exc)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
