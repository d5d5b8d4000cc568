"""The results table: lit_ner's recipes on full WNUT-17, each through `lit_ner fit`, every figure
the docs show kept in `bench/results.json` under "results": `make results`.

Usage: python bench/results.py [--rows recipe tutorial ...] [--out bench/results.json]
       python bench/results.py --row_from_lever ROW=LEVER

`--row_from_lever ROW=LEVER` takes row ROW (`recipe`, `recipe_base`, `recipe_distilled`) from
`make levers`' fits of lever LEVER instead of training them again: allowed only when that lever's
settings are the row's configs as they stand (the two `--print_config` outputs are compared, but
for the run's name and the teacher, which must be row recipe_base's seed-42 fit), so its three
fits are the row's.

Rows (WNUT-17 from the release inside the package unless WNUT17_DIR is set; fp32; the best epoch
chosen on validation F1, that checkpoint scored once on test), seeds 42, 43, 44 each:
- recipe: `configs/wnut.yaml` + `configs/offline.yaml` as they stand (all-MiniLM-L6-v2; CRF head,
  lr 3e-5, batch 8, 10% warm-up, 6 epochs, word shapes, mention replacement);
- recipe_base: the same plus `configs/offline-base.yaml` (all-mpnet-base-v2);
- recipe_distilled: `configs/wnut.yaml` + `configs/offline.yaml` + `configs/offline-distilled.yaml`,
  the small encoder taught by row recipe_base's seed-42 fit (`--model.teacher`);
- tutorial: the tutorial's recipe on the MiniLM encoder (softmax head, lr 2e-5, batch 16, no
  warm-up, 2 epochs, no word shapes, no mention replacement), its batches drawn at random as the
  Trainer draws them;
- tutorial_grouped: the same with lit_ner's length-grouped batches;
- hf_trainer_tutorial: the Hugging Face Trainer running the tutorial's own code and recipe on the
  same encoder and data (evaluate and save every epoch, keep the best model by validation loss,
  the Trainer's default), then the test split once;
- hf_trainer_tuned: the same Trainer with the recipe that suits this encoder (lr 1e-4, 10%
  warm-up, 6 epochs), keeping the best model by validation entity F1 as lit_ner does.

Every seed is its own fit (`runs/results-ROW/seed-S/`), started with `--ckpt_path last`: a fit
that was stopped resumes where its last.ckpt is, and a seed whose run has its fit_summary.json
(the Trainer rows: its record) is kept, not run again. So `make results` can be stopped and
started again at any time, and the rows land one by one. Each row keeps its commands and, per
seed, what `fit_summary.json` holds: best validation F1 and its epoch, test precision, recall, F1
and accuracy, minutes and peak RSS; then mean and sample standard deviation over the seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))  # bench/training.py's pieces of the tutorial

REPO = Path(__file__).resolve().parent.parent
CONFIGS = ["--config", "configs/wnut.yaml", "--config", "configs/offline.yaml"]
HF_ROWS = {
    "hf_trainer_tutorial": {"learning_rate": 2e-5, "epochs": 2, "warmup": 0.0, "best_by": "loss"},
    "hf_trainer_tuned": {"learning_rate": 1e-4, "epochs": 6, "warmup": 0.1, "best_by": "f1"},
}
SEEDS = (42, 43, 44)
TUTORIAL = [
    "--model.head=softmax", "--model.learning_rate=2e-5", "--model.warmup_steps=0",
    "--trainer.max_epochs=2", "--data.batch_size=16", "--model.word_features=false",
    "--data.augment.mention_replacement=0",
]  # fmt: skip
ROWS = {
    "recipe": [],
    "recipe_base": ["--config", "configs/offline-base.yaml"],
    # The configs name the base recipe's runs from `make train BASE=1`; the row's teacher is the
    # recipe_base row's seed 42 (run before it).
    "recipe_distilled": [
        "--config",
        "configs/offline-distilled.yaml",
        "--model.teacher=runs/results-recipe_base/seed-42",
    ],  # fmt: skip
    # The tutorial's recipe and its batches: shuffled at random, as the Trainer's sampler does.
    "tutorial": [*TUTORIAL, "--data.group_by_length=false"],
    # The same with lit_ner's length-grouped batches (`data.group_by_length`, its default).
    "tutorial_grouped": [*TUTORIAL, "--data.group_by_length=true"],
}


def fit_seeds(config_args: list[str], runs: str, check=None) -> tuple[list[str], dict]:
    """One `lit_ner fit` per seed of SEEDS, in `runs/RUNS/seed-S`, each resumed from its last.ckpt
    or, if it finished, kept (`check(run_dir)` may refuse a finished one); their commands and
    summary."""
    from lit_ner.training.summary import read_runs, summarize_runs

    commands = []
    for seed in SEEDS:
        root = REPO / "runs" / runs / f"seed-{seed}"
        command = [
            "fit", *config_args, f"--seed_everything={seed}",
            f"--trainer.logger.init_args.name={runs}/seed-{seed}",
            "--trainer.enable_progress_bar=false", "--ckpt_path", "last",
        ]  # fmt: skip
        commands.append("python -m lit_ner " + " ".join(command))
        finished = sorted(root.glob("*/fit_summary.json"))
        if finished:
            if check is not None:
                check(finished[-1].parent)
            print(f"{runs}: seed {seed} already fit ({root}), kept", flush=True)
            continue
        subprocess.run([sys.executable, "-m", "lit_ner", *command], check=True, cwd=REPO)
    summary = summarize_runs([read_runs(REPO / "runs" / runs / f"seed-{seed}")[-1] for seed in SEEDS])
    return commands, summary


def run_row(name: str) -> dict:
    """A lit_ner row: one fit per seed, each resumed or kept if already there."""
    commands, summary = fit_seeds([*CONFIGS, *ROWS[name]], f"results-{name}")
    return {"commands": commands, "runs": summary["runs"], "scores": summary["scores"], "machine": machine()}


def run_hf_trainer(name: str, seed: int, out: Path) -> None:
    """One HF Trainer row, in its own process (so its peak RSS is its own): the tutorial's
    `tokenize_and_align_labels`, `DataCollatorForTokenClassification` and seqeval `compute_metrics`."""
    import resource
    import time

    import torch
    from datasets import Dataset
    from training import ENCODER, fresh_token_classifier, read_wnut, tutorial_functions
    from transformers import (
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    from lit_ner.hub import resolve_name_or_path

    recipe = HF_ROWS[name]
    started = time.perf_counter()
    path = resolve_name_or_path(ENCODER)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenize_and_align_labels, compute_metrics = tutorial_functions(tokenizer)
    splits = {
        split: Dataset.from_dict(columns).map(tokenize_and_align_labels, batched=True)
        for split, columns in read_wnut(os.environ.get("WNUT17_DIR")).items()
    }
    torch.manual_seed(seed)
    model = fresh_token_classifier(path)
    args = TrainingArguments(
        output_dir=str(REPO / "runs" / f"results-{name}" / f"seed-{seed}"),
        learning_rate=recipe["learning_rate"],
        per_device_train_batch_size=16,
        per_device_eval_batch_size=16,
        num_train_epochs=recipe["epochs"],
        weight_decay=0.01,
        warmup_steps=recipe["warmup"],
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model=recipe["best_by"],
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        seed=seed,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorForTokenClassification(tokenizer=tokenizer),
        compute_metrics=compute_metrics,
    )
    trainer.train()
    evaluations = [entry for entry in trainer.state.log_history if "eval_f1" in entry]
    best = trainer.state.best_metric
    chosen = min(evaluations, key=lambda e: e["eval_loss"]) if recipe["best_by"] == "loss" else None
    chosen = chosen or max(evaluations, key=lambda e: e["eval_f1"])
    test = trainer.evaluate(splits["test"], metric_key_prefix="test")
    record = {
        "seed": seed,
        "best/val_f1": chosen["eval_f1"],
        "best_epoch": round(chosen["epoch"]),
        "best_by": f"validation {recipe['best_by']} ({best:.4f})",
        **{f"test/{key}": test[f"test_{key}"] for key in ("precision", "recall", "f1", "accuracy")},
        "minutes": round((time.perf_counter() - started) / 60, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
    }
    out.write_text(json.dumps(record, indent=2) + "\n")


def run_hf_row(name: str) -> dict:
    """A Trainer row: one run per seed, each in its own process, kept if its record is there."""
    from lit_ner.training.summary import summarize_runs

    records = []
    for seed in SEEDS:
        record_path = REPO / "runs" / f"results-{name}" / f"seed-{seed}.json"
        if record_path.is_file():
            print(f"{name}: seed {seed} already run ({record_path}), kept", flush=True)
        else:
            record_path.parent.mkdir(parents=True, exist_ok=True)
            command = [
                sys.executable,
                __file__,
                "--hf_child",
                name,
                "--seed",
                str(seed),
                "--out",
                str(record_path),
            ]
            subprocess.run(command, check=True, cwd=REPO)
        records.append(json.loads(record_path.read_text()))
    summary = summarize_runs(records)
    return {
        "commands": [f"python bench/results.py --rows {name}"],
        "runs": summary["runs"],
        "scores": summary["scores"],
        "machine": machine(),
    }


def row_from_lever(row: str, name: str) -> dict:
    """Row `row` from lever `name`'s fits (bench/levers.py, one per seed under
    runs/levers-NAME/seed-S), which must be the row's configs as they stand (the two
    `--print_config` outputs are compared)."""
    from lit_ner.training.summary import read_runs, summarize_runs

    lever = json.loads((REPO / "bench" / "levers.json").read_text())[name]

    def config(*args: str) -> dict:
        command = [sys.executable, "-m", "lit_ner", "fit", *CONFIGS, *args, "--print_config"]
        printed = subprocess.run(command, check=True, cwd=REPO, capture_output=True, text=True).stdout
        return {
            key: value
            for key, value in yaml.safe_load(printed).items()
            if key in ("model", "data", "trainer")
        }

    lever_config, row_config = config(*lever["args"]), config(*ROWS[row])
    # The run's name is where it is written, not what it trains.
    for printed in (lever_config, row_config):
        printed["trainer"]["logger"]["init_args"].pop("name", None)
    teacher = lever_config["model"].pop("teacher", None)
    if row_config["model"].pop("teacher", None) is not None:
        # The row's teacher is the recipe_base row's seed-42 fit: so must the lever's be.
        base = json.loads((REPO / "bench" / "results.json").read_text())["results"]["recipe_base"]
        seed_42 = next(run["run_dir"] for run in base["runs"] if run["seed"] == 42)
        if teacher is None or Path(teacher).parent != Path(seed_42):
            sys.exit(f"bench/results.py: lever {name}'s teacher ({teacher}) is not row recipe_base's seed 42")
    if lever_config != row_config:
        sys.exit(
            f"bench/results.py: lever {name} ({' '.join(lever['args'])}) is not row {row}'s configs "
            "as they stand"
        )
    seeds = [run["seed"] for run in lever["runs"]]
    summary = summarize_runs(
        [read_runs(REPO / "runs" / f"levers-{name}" / f"seed-{seed}")[-1] for seed in seeds]
    )
    commands = [
        "python -m lit_ner " + " ".join([
            "fit", *CONFIGS, *lever["args"], f"--seed_everything={seed}",
            f"--trainer.logger.init_args.name=levers-{name}/seed-{seed}",
            "--trainer.enable_progress_bar=false", "--ckpt_path", "last",
        ])
        for seed in seeds
    ]  # fmt: skip
    return {
        "commands": commands,
        "source": f"bench/levers.py: lever {name}, the configs as they stand"
        + (f", taught by {teacher} (row recipe_base's seed 42)" if teacher else ""),
        "runs": summary["runs"],
        "scores": summary["scores"],
        "machine": lever.get("machine", machine()),
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
    parser.add_argument("--rows", nargs="+", default=[*ROWS, *HF_ROWS], choices=[*ROWS, *HF_ROWS])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json")
    parser.add_argument("--hf_child", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=42, help=argparse.SUPPRESS)
    parser.add_argument(
        "--row_from_lever", metavar="ROW=LEVER", help="take row ROW from lever LEVER's fits (see above)"
    )
    args = parser.parse_args()
    if args.hf_child:
        return run_hf_trainer(args.hf_child, args.seed, args.out)
    if args.row_from_lever:
        row, _, lever = args.row_from_lever.partition("=")
        data = json.loads(args.out.read_text())
        data["results"][row] = row_from_lever(row, lever)
        args.out.write_text(json.dumps(data, indent=2) + "\n")
        print(f"{row}: written to {args.out} from lever {lever}")
        return None
    for name in args.rows:
        result = run_row(name) if name in ROWS else run_hf_row(name)
        data = json.loads(args.out.read_text()) if args.out.is_file() else {}
        data.setdefault("results", {})[name] = result
        args.out.write_text(json.dumps(data, indent=2) + "\n")
        print(f"{name}: written to {args.out}", flush=True)


if __name__ == "__main__":
    main()
