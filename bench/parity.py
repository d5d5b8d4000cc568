"""A whole `lit_ner fit` against the Hugging Face Trainer's whole run, each timed as a process:
`python bench/parity.py` (needs WNUT17_DIR).

Usage: python bench/parity.py [--repeats 3] [--precisions 32-true bf16-mixed] [--out bench/results.json]
       [--key parity] [--cuts_only]

Both do the same computation: one epoch of the full WNUT-17 train split on the packaged MiniLM,
softmax head and argmax, lr 1e-4 with 10% warm-up, batch 16, length-grouped batches, no word
shapes or mention replacement, seed 42. lit_ner's `fit` runs as it does by default (validation,
checkpoints, the test of the best checkpoint, the export, the reports and plots); the Trainer as
the tutorial runs it (evaluate and save at the epoch's end, keep the best model). Each is one
process, timed from its start to its exit, in `--repeats` interleaved passes; the fastest counts.

Where lit_ner's extra seconds go is measured by taking one default away at a time, each its own
process: `--test_after_fit false` (the test), `--last_checkpoint.every_n_train_steps 0` (the
periodic last.ckpt), `--report_writer.plots false` (the PNGs), and the import of lit_ner's CLI
alone. Then, in one process on MiniLM's real training state, what the training thread waits for
in a checkpoint save (written in the foreground, or handed to the background writer) and in
gradient clipping within the bound (torch's, lit_ner's CPU clipping): `cuts`, alone with
`--cuts_only`. Results are merged into the JSON file under `--key` ("parity").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))  # bench/training.py's pieces of the tutorial

FIT = [
    "fit", "--config", "configs/wnut.yaml", "--config", "configs/offline.yaml",
    "--model.head=softmax", "--model.decoding=argmax", "--model.learning_rate=1e-4",
    "--model.warmup_steps=0.1", "--data.batch_size=16", "--model.word_features=false",
    "--data.augment.mention_replacement=0", "--data.group_by_length=true", "--trainer.max_epochs=1",
    "--trainer.enable_progress_bar=false", "--seed_everything=42",
]  # fmt: skip
# lit_ner's defaults, one taken away at a time: what each costs.
WITHOUT = {
    "test": ["--test_after_fit=false"],
    "periodic_last_ckpt": ["--last_checkpoint.every_n_train_steps=0"],
    "plots": ["--report_writer.plots=false"],
}


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"bench/parity.py: {' '.join(command[:6])} ... failed:\n{done.stderr[-3000:]}")
    return round(seconds, 2)


def lit_ner_command(precision: str, scratch: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "lit_ner", *FIT, f"--trainer.precision={precision}",
        f"--trainer.logger.init_args.save_dir={scratch}", *extra,
    ]  # fmt: skip


def hf_whole_run(precision: str) -> None:
    """The tutorial's Trainer, one epoch, evaluating and saving at its end and keeping the best."""
    import torch
    from datasets import Dataset
    from training import ENCODER, RECIPE, fresh_token_classifier, read_wnut, tutorial_functions
    from transformers import AutoTokenizer, DataCollatorForTokenClassification, Trainer, TrainingArguments

    from lit_ner.hub import resolve_name_or_path

    path = resolve_name_or_path(ENCODER)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenize_and_align_labels, compute_metrics = tutorial_functions(tokenizer)
    splits = {
        split: Dataset.from_dict(columns).map(tokenize_and_align_labels, batched=True)
        for split, columns in read_wnut(Path(os.environ["WNUT17_DIR"])).items()
        if split != "test"  # the tutorial trains and validates
    }
    torch.manual_seed(RECIPE["seed"])
    with tempfile.TemporaryDirectory(prefix="lit_ner_parity_hf_") as output_dir:
        args = TrainingArguments(
            output_dir=output_dir, learning_rate=RECIPE["learning_rate"],
            per_device_train_batch_size=RECIPE["batch_size"], per_device_eval_batch_size=RECIPE["batch_size"],
            num_train_epochs=1, weight_decay=RECIPE["weight_decay"], warmup_steps=RECIPE["warmup"],
            train_sampling_strategy="group_by_length", bf16=precision == "bf16-mixed",
            eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True,
            report_to="none", disable_tqdm=True, use_cpu=not torch.cuda.is_available(), seed=RECIPE["seed"],
        )  # fmt: skip
        trainer = Trainer(
            model=fresh_token_classifier(path), args=args, train_dataset=splits["train"],
            eval_dataset=splits["validation"], processing_class=tokenizer,
            data_collator=DataCollatorForTokenClassification(tokenizer=tokenizer),
            compute_metrics=compute_metrics,
        )  # fmt: skip
        trainer.train()


def cuts(repeats: int = 5) -> dict:
    """What the training thread waits for, in process, on MiniLM's real training state: a
    checkpoint save written in the foreground against one handed to the background writer, and
    gradient clipping within the bound as torch does it against lit_ner's CPU clipping."""
    import torch
    from training import ENCODER, fresh_token_classifier

    from lit_ner.hub import resolve_name_or_path
    from lit_ner.model.module import clip_grad_norm_on_cpu
    from lit_ner.training.checkpoints import SafeCheckpointIO

    torch.manual_seed(0)
    model = fresh_token_classifier(resolve_name_or_path(ENCODER))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, fused=True)
    for p in params:
        p.grad = torch.randn_like(p) * 1e-5  # a norm well within 1.0
    optimizer.step()  # AdamW's state exists, as in any checkpoint after the first step
    checkpoint = {"state_dict": model.state_dict(), "optimizer_states": [optimizer.state_dict()]}
    waits: dict[str, list[float]] = {"foreground": [], "background": [], "background_write": []}
    with tempfile.TemporaryDirectory(prefix="lit_ner_parity_ckpt_") as scratch:
        for background in (False, True) * repeats:
            io = SafeCheckpointIO(background=background)
            start = time.perf_counter()
            io.save_checkpoint(checkpoint, Path(scratch) / "last.ckpt")
            waits["background" if background else "foreground"].append(time.perf_counter() - start)
            io.teardown()
            if background:
                waits["background_write"].append(time.perf_counter() - start)
    clipping: dict[str, list[float]] = {"torch": [], "lit_ner": []}
    for _ in range(repeats * 4):
        for name, clip in (("torch", torch.nn.utils.clip_grad_norm_), ("lit_ner", clip_grad_norm_on_cpu)):
            start = time.perf_counter()
            clip(params, 1.0)
            clipping[name].append(time.perf_counter() - start)
    checkpoint_mb = sum(t.numel() * t.element_size() for t in model.state_dict().values()) * 3 / 2**20
    return {
        "checkpoint_mb_approx": round(checkpoint_mb),  # weights + AdamW's two moments
        "checkpoint_save_wait_s": {name: round(min(times), 3) for name, times in waits.items()},
        "clip_within_bound_ms": {name: round(1000 * min(times), 2) for name, times in clipping.items()},
        "repeats": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json")
    parser.add_argument("--key", default="parity", help="where in the JSON file the result goes")
    parser.add_argument("--cuts_only", action="store_true", help="measure the in-process cuts alone")
    parser.add_argument("--hf_child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hf_child:
        return hf_whole_run(args.hf_child)
    if args.cuts_only:
        data = json.loads(args.out.read_text()) if args.out.is_file() else {}
        data.setdefault(args.key, {})["cuts"] = cuts()
        args.out.write_text(json.dumps(data, indent=2) + "\n")
        return print(json.dumps(data[args.key]["cuts"], indent=2))
    if not os.environ.get("WNUT17_DIR"):
        sys.exit("bench/parity.py: set WNUT17_DIR to the WNUT-17 release files")
    runs: dict[str, dict[str, list[float]]] = {precision: {} for precision in args.precisions}
    with tempfile.TemporaryDirectory(prefix="lit_ner_parity_") as scratch:
        for _ in range(args.repeats):  # passes interleave, so a slow spell hits every variant alike
            runs_import = runs.setdefault("import", {}).setdefault("lit_ner_cli", [])
            runs_import.append(timed([sys.executable, "-c", "import lit_ner.training.cli"]))
            for precision in args.precisions:
                variants = {
                    "lit_ner": lit_ner_command(precision, Path(scratch)),
                    "hf_trainer": [sys.executable, __file__, "--hf_child", precision],
                    **{f"lit_ner_without_{name}": lit_ner_command(precision, Path(scratch), *extra)
                       for name, extra in WITHOUT.items()},
                }  # fmt: skip
                for name, command in variants.items():
                    runs[precision].setdefault(name, []).append(timed(command))
                    print(f"{precision} {name}: {runs[precision][name][-1]} s", flush=True)
    result: dict = {"runs_s": runs, "repeats": args.repeats}
    for precision in args.precisions:
        best = {name: min(seconds) for name, seconds in runs[precision].items()}
        result[precision] = {
            "lit_ner_s": best["lit_ner"],
            "hf_trainer_s": best["hf_trainer"],
            "ratio": round(best["hf_trainer"] / best["lit_ner"], 3),  # above 1: lit_ner faster
            "cost_s": {name: round(best["lit_ner"] - best[f"lit_ner_without_{name}"], 2) for name in WITHOUT},
        }
    result["import_lit_ner_cli_s"] = min(runs["import"]["lit_ner_cli"])
    result["cuts"] = cuts()
    data = json.loads(args.out.read_text()) if args.out.is_file() else {}
    result["commit"] = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    data[args.key] = result
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps({key: value for key, value in result.items() if key != "runs_s"}, indent=2))


if __name__ == "__main__":
    main()
