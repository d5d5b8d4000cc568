"""The offline recipe on data in other tag schemes: WNUT-17 rewritten in IOB1 and in IOBES, brought
as a user brings their files (no flag: the scheme is detected), the CRF recipe beside the softmax
head, and each reported test F1 checked against the data's own scorer on the predictions file
lit_ner writes back in the data's scheme: conlleval (its Python port, the `conlleval` package)
for IOB1, seqeval's strict mode for IOBES. `make schemes`; results in `bench/schemes.json`.

Usage: python bench/schemes.py [--schemes IOB1 IOBES] [--heads crf softmax] [--out bench/schemes.json]

The corpora, written under `runs/schemes-data/`: the WNUT-17 release (the copy inside the
package unless WNUT17_DIR is set), its train split without the 12 sentences that hold two
adjacent entities of one type, so that the IOB1 train file has no `B-` tag at all while the
validation and test files have some (the CoNLL-2003 slice of issue #28 had no `B-ORG` in train);
validation and test whole. Each fit: `configs/wnut.yaml` + `configs/offline.yaml` (the `crf`
rows as they stand; `softmax` adds `--model.head softmax`), seed 42.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(Path(__file__).parent))

from results import machine  # noqa: E402

from lit_ner.data.sources import read_files  # noqa: E402
from lit_ner.formats import read_conll, write_conll  # noqa: E402
from lit_ner.tag_schemes import read_entities, write_tags  # noqa: E402
from lit_ner.wnut17 import PACKAGED_WNUT17, wnut17_files  # noqa: E402

HEADS = {"crf": [], "softmax": ["--model.head=softmax"]}


def adjacent_same_type(tags: list[str]) -> bool:
    entities = read_entities(tags, "IOB2")
    return any(a[0] == b[0] and b[1] == a[2] + 1 for a, b in zip(entities, entities[1:]))


def write_corpus(scheme: str, wnut17_dir: str | None) -> dict[str, Path]:
    """WNUT-17 in `scheme` (see the module docstring), one CoNLL file per split."""
    import os

    splits = read_files(wnut17_files(wnut17_dir or os.environ.get("WNUT17_DIR") or PACKAGED_WNUT17))
    directory = REPO / "runs" / "schemes-data" / f"wnut17-{scheme.lower()}"
    files = {}
    for split, data in splits.items():
        keep = [n for n, tags in enumerate(data["tags"]) if split != "train" or not adjacent_same_type(tags)]
        tags = [
            write_tags(read_entities(data["tags"][n], "IOB2"), len(data["tags"][n]), scheme) for n in keep
        ]
        files[split] = write_conll(directory / f"{split}.conll", [data["tokens"][n] for n in keep], tags)
    return files


def conlleval_f1(path: Path) -> float:
    """conlleval's chunk F1 of a token/gold/predicted file (sentences apart by empty lines)."""
    import conlleval

    # Tab-separated (a token may hold other white space); a sentence break as the port spells it.
    lines = [line or "-X-\tO\tO" for line in path.read_text(encoding="utf-8").splitlines()]
    return conlleval.evaluate(lines, delimiter="\t")["overall"]["chunks"]["evals"]["f1"]


def seqeval_strict_f1(path: Path, scheme: str) -> float:
    from seqeval.metrics import f1_score
    from seqeval.scheme import BILOU, IOB2, IOBES

    gold, predicted = read_conll(path, tag_column=-2)["tags"], read_conll(path)["tags"]
    return f1_score(
        gold, predicted, mode="strict", scheme={"IOB2": IOB2, "IOBES": IOBES, "BILOU": BILOU}[scheme]
    )


def run(scheme: str, head: str, files: dict[str, Path]) -> dict:
    name = f"schemes-{scheme.lower()}-{head}"
    command = [
        "fit", "--config", "configs/wnut.yaml", "--config", "configs/offline.yaml", *HEADS[head],
        f"--data.train_file={files['train']}", f"--data.validation_file={files['validation']}",
        f"--data.test_file={files['test']}", f"--trainer.logger.init_args.name={name}",
        "--trainer.enable_progress_bar=false", "--seed_everything=42",
    ]  # fmt: skip
    started = time.time()
    printed = subprocess.run(
        [sys.executable, "-m", "lit_ner", *command], check=True, cwd=REPO, capture_output=True, text=True
    )
    summaries = [
        p for p in (REPO / "runs" / name).glob("version_*/fit_summary.json") if p.stat().st_mtime > started
    ]
    summary = json.loads(max(summaries, key=lambda p: p.stat().st_mtime).read_text())
    predictions = REPO / summary["run_dir"] / "predictions" / "test.conll"
    scorer = conlleval_f1(predictions) if scheme == "IOB1" else seqeval_strict_f1(predictions, scheme)
    said = [line for line in (printed.stdout + printed.stderr).splitlines() if "tags: " in line]
    return {
        "command": "python -m lit_ner " + " ".join(command),
        "tags_line": said[0].split("tags: ", 1)[1] if said else None,
        "best/val_f1": summary["best/val_f1"],
        "best_epoch": summary["best_epoch"],
        "test/f1": summary["test/f1"],
        "test/precision": summary["test/precision"],
        "test/recall": summary["test/recall"],
        "scorer": "conlleval" if scheme == "IOB1" else f"seqeval strict {scheme}",
        "scorer_test_f1": float(scorer),
        "equal": bool(abs(scorer - summary["test/f1"]) < 1e-9),
        "minutes": summary["minutes"],
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schemes", nargs="+", default=["IOB1", "IOBES"], choices=["IOB1", "IOBES", "BILOU"])
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=list(HEADS))
    parser.add_argument("--wnut17_dir", default=None)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "schemes.json")
    args = parser.parse_args()
    for scheme in args.schemes:
        files = write_corpus(scheme, args.wnut17_dir)
        for head in args.heads:
            result = run(scheme, head, files)
            data = json.loads(args.out.read_text()) if args.out.is_file() else {}
            data.setdefault(scheme, {})[head] = result
            args.out.write_text(json.dumps(data, indent=2) + "\n")
            scored = f"{result['scorer']} {result['scorer_test_f1']:.4f}"
            print(f"{scheme} {head}: test F1 {result['test/f1']:.4f} ({scored})", flush=True)


if __name__ == "__main__":
    main()
