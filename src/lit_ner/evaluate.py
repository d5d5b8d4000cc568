"""`lit_ner evaluate GOLD [PRED]`: scores predicted tags against gold tags, as lit_ner logs them
and as the WNUT-17 shared task scored its systems.

GOLD holds the gold tags in its last column and PRED the predicted tags in its last column; with
PRED left out, GOLD is one file of token, gold tag and predicted tag columns (what `lit_ner test`
writes). Both files must have the same tokens and sentence breaks; the first place they do not is
an error naming both files and lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lit_ner.data import Split, read_conll
from lit_ner.errors import LitNerError, exit_with
from lit_ner.metrics import MODES, bootstrap_f1, format_report, scores_and_report, surface_scores

SCORES = ("precision", "recall", "f1")


def read_aligned(gold_path: str | Path, pred_path: str | Path | None = None) -> tuple[Split, Split]:
    """Reads gold and predicted tags and checks that their tokens and sentences line up."""
    if pred_path is None:
        return read_conll(gold_path, tag_column=-2), read_conll(gold_path, tag_column=-1)
    gold, pred = read_conll(gold_path), read_conll(pred_path)
    for n, (gold_tokens, pred_tokens) in enumerate(zip(gold["tokens"], pred["tokens"])):
        if gold_tokens == pred_tokens:
            continue
        gold_lines, pred_lines = gold["lines"][n], pred["lines"][n]
        mismatches = [i for i, (g, p) in enumerate(zip(gold_tokens, pred_tokens)) if g != p]
        i = mismatches[0] if mismatches else min(len(gold_tokens), len(pred_tokens))
        if i < len(gold_tokens) and i < len(pred_tokens):
            raise LitNerError(
                f"{gold_path}:{gold_lines[i]}: token {gold_tokens[i]!r}, but "
                f"{pred_path}:{pred_lines[i]}: token {pred_tokens[i]!r}"
            )
        if i == len(gold_tokens):
            raise LitNerError(
                f"{gold_path}:{gold_lines[-1]}: the sentence ends here, but "
                f"{pred_path}:{pred_lines[i]} continues it with {pred_tokens[i]!r}"
            )
        raise LitNerError(
            f"{pred_path}:{pred_lines[-1]}: the sentence ends here, but "
            f"{gold_path}:{gold_lines[i]} continues it with {gold_tokens[i]!r}"
        )
    if len(gold["tokens"]) != len(pred["tokens"]):
        longer, path = (gold, gold_path) if len(gold["tokens"]) > len(pred["tokens"]) else (pred, pred_path)
        n = min(len(gold["tokens"]), len(pred["tokens"]))
        raise LitNerError(
            f"{gold_path} has {len(gold['tokens'])} sentences but {pred_path} has {len(pred['tokens'])}; "
            f"the first unmatched one starts at {path}:{longer['lines'][n][0]}"
        )
    return gold, pred


def evaluate_tags(
    words: list[list[str]], y_true: list[list[str]], y_pred: list[list[str]], mode: str = "default"
) -> dict[str, Any]:
    """seqeval's scores and WNUT-17's surface-form scores, overall and per type, as one object:
    `{"overall": {...}, "per_type": {type: {...}}, "mode": mode}` (the `--json` output)."""
    scores, report = scores_and_report(y_true, y_pred, mode)
    surface = surface_scores(words, y_true, y_pred, mode)

    def row(seqeval_row: dict[str, float], surface_row: dict[str, float]) -> dict[str, float]:
        return {
            **{name: seqeval_row[name] for name in SCORES},
            **{f"surface_{name}": surface_row[name] for name in SCORES},
            "support": seqeval_row["support"],
        }

    overall = row(report["micro avg"], surface["overall"])
    per_type = {
        type_: row(report[type_], surface["per_type"][type_])
        for type_ in report
        if not type_.endswith(" avg")
    }
    return {"overall": {**overall, "accuracy": scores["accuracy"]}, "per_type": per_type, "mode": mode}


def evaluate_files(
    gold_path: str | Path,
    pred_path: str | Path | None = None,
    mode: str = "default",
    bootstrap: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """`evaluate_tags` on a gold and a prediction file (or one file with both tag columns); with
    `bootstrap` resamples, every F1's confidence interval under `"bootstrap"` (`bootstrap_f1`)."""
    gold, pred = read_aligned(gold_path, pred_path)
    results = evaluate_tags(gold["tokens"], gold["tags"], pred["tags"], mode)
    if bootstrap:
        results["bootstrap"] = bootstrap_f1(
            gold["tokens"],
            gold["tags"],
            pred["tags"],
            mode,
            samples=bootstrap,
            seed=seed,
            confidence=confidence,
        )
    return results


def format_results(results: dict[str, Any]) -> str:
    """The `evaluate_tags` object as two seqeval-style tables: entities, then surface forms."""
    entity_rows = {type_: row for type_, row in results["per_type"].items()}
    entity_rows["overall (micro)"] = results["overall"]
    surface_rows = {
        type_: {name: row[f"surface_{name}"] for name in SCORES} | {"support": row["support"]}
        for type_, row in entity_rows.items()
    }
    overall = results["overall"]
    lines = [
        f"entities (seqeval, {results['mode']} mode); token accuracy {overall['accuracy']:.4f}",
        format_report(entity_rows),
        "",
        "unique surface forms (WNUT-17 shared task; support: gold entities)",
        format_report(surface_rows),
    ]
    if "bootstrap" in results:
        boot = results["bootstrap"]
        lines += [
            "",
            f"F1 with {boot['confidence']:.0%} confidence intervals (bootstrap: {boot['samples']} "
            f"resamples of the sentences, seed {boot['seed']})",
            f"{'':>16} {'entity f1':>26} {'surface f1':>26}",
        ]
        rows = [("overall (micro)", overall, boot["overall"])]
        rows += [
            (type_, results["per_type"][type_], boot["per_type"][type_]) for type_ in results["per_type"]
        ]
        for name, scores, intervals in rows:
            cells = [
                f"{scores[key]:.4f} [{intervals[key][0]:.4f}, {intervals[key][1]:.4f}]"
                for key in ("f1", "surface_f1")
            ]
            lines.append(f"{name:>16} {cells[0]:>26} {cells[1]:>26}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """`lit_ner evaluate`: prints the scores (or `--json`); exit status 2 on bad input."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog="lit_ner evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("gold", help="CoNLL file with the gold tags in its last column")
    parser.add_argument(
        "pred",
        nargs="?",
        help="CoNLL file with the predicted tags in its last column (default: GOLD has token, gold, "
        "predicted columns)",
    )
    parser.add_argument("--mode", choices=MODES, default="default", help="seqeval's entity rules")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        help="add a confidence interval to every F1 from this many resamples of the sentences (e.g. 1000)",
    )
    parser.add_argument("--confidence", type=float, default=0.95, help="the intervals' coverage")
    parser.add_argument("--seed", type=int, default=0, help="the resampling's random seed")
    args = parser.parse_args(argv)
    try:
        if args.bootstrap < 0 or not 0 < args.confidence < 1:
            raise LitNerError("--bootstrap must be >= 0 and --confidence between 0 and 1")
        results = evaluate_files(args.gold, args.pred, args.mode, args.bootstrap, args.seed, args.confidence)
    except LitNerError as exc:
        exit_with(exc)
    print(json.dumps(results, indent=2) if args.json else format_results(results))
