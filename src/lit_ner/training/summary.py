"""A fit's summary (`fit_summary.json` and the closing block it prints), and the mean and spread of
several fits: `lit_ner fit ... --seeds 3` and `lit_ner summarize RUNS`.

One seed's F1 on WNUT-17 moves by a point or two with the seed alone (the classifier head's
initialisation, dropout, the batch order), about as much as most recipe changes buy; so a recipe
is judged by its mean over seeds, with the standard deviation beside it.

`fit --seeds N` runs `fit` once per seed (42, 43, ... or `--seeds 1,7,9`), each in its own
process and run directory, from the same resolved config, then summarises them. On a cluster,
submit one job per seed (`--seed_everything S`, e.g. a SLURM array) and run `lit_ner summarize` on
the folder that holds their run directories.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from json import dumps  # `summarize`'s `json` argument hides the module there
from pathlib import Path
from typing import Any

from lit_ner.errors import EXIT_RESUMABLE, LitNerError
from lit_ner.export.hf import EXPORT_DIRNAME
from lit_ner.files import write_atomically

FIRST_SEED = 42  # the configs' seed_everything: seed 1 of N is the single-seed recipe
SCORES = (
    "best/val_f1",
    "test/f1",
    "test/precision",
    "test/recall",
    "test/accuracy",
    "best_epoch",
    "minutes",
    "peak_rss_gb",
)
SUMMARY_FILE = "fit_summary.json"


def closing_block(summary: dict[str, Any]) -> str:
    """The run in one block, printed at the very end of `fit`, where a terminal's last screen
    shows it."""
    lines = ["", "lit_ner fit: done"]
    if "best/val_f1" in summary:
        lines.append(f"  best val/f1: {summary['best/val_f1']:.4f}")
    if "test/f1" in summary:
        lines.append(
            f"  test f1: {summary['test/f1']:.4f} (precision {summary['test/precision']:.4f}, recall "
            f"{summary['test/recall']:.4f}, accuracy {summary['test/accuracy']:.4f})"
        )
    lines += [
        f"  run directory: {summary['run_dir']}",
        f"  best checkpoint: {summary['best_checkpoint'] or '(none saved)'}",
        f"  Hugging Face export: {summary['export']}",
    ]
    return "\n".join(lines)


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


def read_runs(runs: str | Path) -> list[dict[str, Any]]:
    """The `fit_summary.json` of a run directory, or of every run below a folder (in path order)."""
    path = Path(runs)
    found = [path / SUMMARY_FILE] if (path / SUMMARY_FILE).is_file() else sorted(path.rglob(SUMMARY_FILE))
    if not found:
        raise LitNerError(f"{path}: no {SUMMARY_FILE} in it or below it (no finished fit)")
    return [json.loads(file.read_text()) for file in found]


def finished_export(path: str) -> str:
    """`path` itself, unless it is a folder of runs rather than a model: then the export of the
    fit that finished last at or below it (its `fit_summary.json` written last), so that a config
    can name a recipe's runs (`model.teacher: runs/wnut-offline-base`) before they exist."""
    folder = Path(path)
    # A local path, never a Hub id: written as one, or under a folder that is here (runs/...).
    local = path.startswith(("/", "./", "../")) or Path(path.split("/")[0]).is_dir()
    if local and not folder.exists():
        raise LitNerError(f"{path}: no such folder")
    if not folder.is_dir() or (folder / "config.json").is_file():
        return path
    summaries = (
        [folder / SUMMARY_FILE] if (folder / SUMMARY_FILE).is_file() else list(folder.rglob(SUMMARY_FILE))
    )
    if not summaries:
        raise LitNerError(
            f"{path}: neither a model (no config.json) nor runs with a {SUMMARY_FILE} (no finished fit)"
        )
    latest = max(summaries, key=lambda file: file.stat().st_mtime_ns)
    export = latest.parent / EXPORT_DIRNAME  # beside the summary: wherever the fit was run from
    return str(export) if export.is_dir() else json.loads(latest.read_text())["export"]


def summarize_runs(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The runs' records, and per score the mean, the sample standard deviation (0 for one run)
    and the values in run order."""
    scores = {}
    for name in SCORES:
        values = [run[name] for run in runs if run.get(name) is not None]
        if len(values) == len(runs):
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            scores[name] = {"mean": statistics.fmean(values), "std": spread, "values": values}
    return {"runs": list(runs), "scores": scores}


def format_summary(summary: dict[str, Any]) -> str:
    seeds = [run.get("seed") for run in summary["runs"]]
    lines = [f"{len(seeds)} runs (seeds {', '.join(str(seed) for seed in seeds)}): mean ± standard deviation"]
    for name, numbers in summary["scores"].items():
        values = ", ".join(f"{value:.4f}" for value in numbers["values"])
        lines.append(f"  {name:>15}: {numbers['mean']:.4f} ± {numbers['std']:.4f}  ({values})")
    lines += [f"  run: {run['run_dir']}" for run in summary["runs"]]
    return "\n".join(lines)


def write_fit_summary(
    run_dir: Path,
    summary_file: str | None,
    seed: int | None,
    best_checkpoint: str,
    best_epoch: int | None,
    best_val_f1: Any,
    export_dir: Path,
    test_scores: dict[str, float] | None,
    started: float,
    earlier_minutes: float = 0.0,
) -> dict[str, Any]:
    """The end of a `fit`: what it left and scored, and what it cost (wall minutes since `started`,
    a `time.perf_counter()`, plus `earlier_minutes` that the processes before a resumed one ran,
    and this process's peak resident memory, rank 0's under DDP),
    printed as the closing block and written as the run's `fit_summary.json` (and to
    `summary_file`), for `lit_ner summarize` and `fit --seeds` to read."""
    summary: dict[str, Any] = {
        "seed": seed,
        "run_dir": str(run_dir),
        "best_checkpoint": best_checkpoint,
        "export": str(export_dir),
    }
    if best_val_f1 is not None:
        summary["best/val_f1"] = float(best_val_f1)
    if best_epoch:
        summary["best_epoch"] = best_epoch
    if test_scores:
        summary.update({f"test/{name}": value for name, value in test_scores.items()})
    summary["minutes"] = round(earlier_minutes + (time.perf_counter() - started) / 60, 2)
    summary["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2)
    print(closing_block(summary))
    record = json.dumps(summary, indent=2) + "\n"
    write_atomically(run_dir / SUMMARY_FILE, record)
    if summary_file:
        write_atomically(summary_file, record)
    return summary


def fit_seeds(config_yaml: str, seeds: Sequence[int]) -> dict[str, Any]:
    """One `lit_ner fit` per seed, each in its own process from the same resolved config
    (`config_yaml`, as `fit` dumps it), then their summary, printed and written as
    `seeds-<seeds>.json` beside the run directories."""
    records = []
    with tempfile.TemporaryDirectory(prefix="lit_ner_seeds_") as scratch:
        config = write_atomically(Path(scratch) / "config.yaml", config_yaml)
        for seed in seeds:
            record = Path(scratch) / f"seed-{seed}.json"
            command = [sys.executable, "-m", "lit_ner", "fit", "--config", str(config)]
            command += [f"--seed_everything={seed}", f"--summary_file={record}"]
            print(f"lit_ner fit --seeds: seed {seed}", flush=True)
            # Each seed's run is its own under a job's restarts too (resume.job_id).
            env = {**os.environ, "LIT_NER_JOB_PART": f"seed-{seed}"}
            status = subprocess.run(command, env=env).returncode
            if status == EXIT_RESUMABLE:  # stopped to be resumed (a SLURM requeue, a SIGTERM)
                print(f"lit_ner fit --seeds: seed {seed} stopped to be resumed", flush=True)
                raise SystemExit(EXIT_RESUMABLE)
            if status != 0:
                raise LitNerError(f"fit with seed {seed} failed (exit status {status}); see its output above")
            if not record.is_file():
                raise LitNerError(f"fit with seed {seed} wrote no summary (fast_dev_run makes none)")
            records.append(json.loads(record.read_text()))
    summary = summarize_runs(records)
    run_dirs = [Path(run["run_dir"]).resolve() for run in records]
    root = Path(os.path.commonpath([str(d) for d in run_dirs]))
    path = (root if len(run_dirs) > 1 else root.parent) / f"seeds-{'-'.join(map(str, seeds))}.json"
    write_atomically(path, json.dumps(summary, indent=2) + "\n")
    print("\nlit_ner fit --seeds: done")
    print(format_summary(summary))
    print(f"  summary: {path}")
    return summary


def summarize(runs: str, *, json: bool = False) -> dict[str, Any]:
    """Mean and spread of finished fits: best validation F1 and test scores over their seeds.

    Args:
        runs: a run directory holding fit_summary.json, or a folder whose runs (every
            fit_summary.json below it) are summarised together.
        json: print one JSON object instead of the table.

    Returns:
        The summary: the runs' records and, per score, mean, standard deviation and values.
    """
    summary = summarize_runs(read_runs(runs))
    print(dumps(summary, indent=2) if json else format_summary(summary))
    return summary
