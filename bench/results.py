"""The results table: lit_ner's recipes on full WNUT-17, each through `lit_ner fit`, every figure
the docs show kept in `bench/results.json` under "results": `make results`.

Usage: python bench/results.py [--rows recipe tutorial ...] [--out bench/results.json]

Rows (the packaged all-MiniLM-L6-v2 and the WNUT-17 release inside the package unless
WNUT17_DIR is set; fp32; the best epoch chosen on validation F1, that checkpoint scored once on
test):
- recipe: `configs/wnut.yaml` + `configs/offline.yaml` as they stand (CRF head, lr 3e-5, batch 8,
  10% warm-up, 6 epochs), seeds 42, 43, 44;
- tutorial: the tutorial's recipe on the same encoder (softmax head, lr 2e-5, batch 16, no
  warm-up, 2 epochs), seed 42.

Each row keeps its command and, per seed, what `fit_summary.json` holds: best validation F1 and
its epoch, test precision, recall, F1 and accuracy, minutes and peak RSS; then mean and sample
standard deviation over the seeds. Rows are merged into the file one by one, so they can be run
apart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIGS = ["--config", "configs/wnut.yaml", "--config", "configs/offline.yaml"]
ROWS = {
    "recipe": {"args": [], "seeds": "3"},
    "tutorial": {
        "args": [
            "--model.head=softmax", "--model.learning_rate=2e-5", "--model.warmup_steps=0",
            "--trainer.max_epochs=2", "--data.batch_size=16",
        ],
        "seeds": "1",
    },
}  # fmt: skip


def run_row(name: str) -> dict:
    row = ROWS[name]
    args = [*CONFIGS, *row["args"], f"--trainer.logger.init_args.name=results-{name}"]
    command = ["fit", *args, "--trainer.enable_progress_bar=false", "--seeds", row["seeds"]]
    subprocess.run([sys.executable, "-m", "lit_ner", *command], check=True, cwd=REPO)
    seeds = range(42, 42 + int(row["seeds"]))
    summary_path = REPO / "runs" / f"results-{name}" / f"seeds-{'-'.join(map(str, seeds))}.json"
    summary = json.loads(summary_path.read_text())
    return {
        "command": "python -m lit_ner " + " ".join(command),
        "runs": summary["runs"],
        "scores": summary["scores"],
        "machine": machine(),
    }


def machine() -> str:
    """The hardware the row ran on, in words: CPU model, cores, bf16 support."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), ""
    )
    bf16 = " with AVX512-BF16" if "avx512_bf16" in info else ""
    return f"{os.cpu_count()}-core {platform.machine()} CPU ({model or 'unknown model'}){bf16}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json")
    args = parser.parse_args()
    for name in args.rows:
        result = run_row(name)
        data = json.loads(args.out.read_text()) if args.out.is_file() else {}
        data.setdefault("results", {})[name] = result
        args.out.write_text(json.dumps(data, indent=2) + "\n")
        print(f"{name}: written to {args.out}", flush=True)


if __name__ == "__main__":
    main()
