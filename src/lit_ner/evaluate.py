"""`lit_ner evaluate GOLD [PRED]`: scores predicted tags against gold tags, as lit_ner logs them
and as the WNUT-17 shared task scored its systems.

GOLD holds the gold tags in its last column and PRED the predicted tags in its last column; with
PRED left out, GOLD is one file of token, gold tag and predicted tag columns (what `lit_ner test`
writes). Both files must have the same tokens and sentence breaks; the first place they do not is
an error naming both files and lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from json import dumps
from pathlib import Path
from typing import Any, Literal

from lit_ner.errors import LitNerError
from lit_ner.formats import Split, read_conll
from lit_ner.scoring import Entity, format_report, scores_and_report, sentence_entities, surface_scores
from lit_ner.tag_schemes import TRAINING_SCHEME, detect_scheme, read_entities, scheme_name, write_tags

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
    tag_scheme: str = "auto",
) -> dict[str, Any]:
    """`evaluate_tags` on a gold and a prediction file (or one file with both tag columns); with
    `bootstrap` resamples, every F1's confidence interval under `"bootstrap"` (`bootstrap_f1`).
    Tags in another scheme than BIO (`tag_scheme`, or detected from the gold tags) are read into
    entities by that scheme's rules first (`as_bio`)."""
    gold, pred = read_aligned(gold_path, pred_path)
    scheme = _scheme(gold, gold_path, tag_scheme)
    if scheme != TRAINING_SCHEME:
        gold["tags"], pred["tags"] = (as_bio(split["tags"], scheme, mode) for split in (gold, pred))
    results = evaluate_tags(gold["tokens"], gold["tags"], pred["tags"], mode)
    results["tag_scheme"] = scheme
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


def bootstrap_draws(n_sentences: int, samples: int, seed: int = 0) -> list[list[int]]:
    """`samples` resamples of sentence indices, each `n_sentences` drawn with replacement."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [rng.integers(0, n_sentences, n_sentences).tolist() for _ in range(samples)]


def bootstrap_f1(
    words: Sequence[Sequence[str]],
    y_true: Sequence[Sequence[str]],
    y_pred: Sequence[Sequence[str]],
    mode: str = "default",
    samples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Percentile bootstrap confidence intervals of every F1 lit_ner reports (entity F1 and
    WNUT-17's surface-form F1, overall and per type): the sentences are resampled with
    replacement `samples` times (`bootstrap_draws`), each F1 recomputed on every resample, and
    the interval is the central `confidence` share of those values. It says how much the score
    owes to which sentences the test split happens to hold.

    Returns:
        `{"samples", "seed", "confidence", "overall": {"f1": [low, high], "surface_f1": [...]},
        "per_type": {type: {"f1": [...], "surface_f1": [...]}}}`.
    """
    import numpy as np

    gold, pred = sentence_entities(y_true, mode), sentence_entities(y_pred, mode)
    types = sorted({entity[0] for entities in (*gold, *pred) for entity in entities})
    draws = bootstrap_draws(len(gold), samples, seed)
    entity_f1 = resampled_entity_f1(gold, pred, types, draws)
    surface_f1 = resampled_surface_f1(words, gold, pred, types, draws)
    tail = (1 - confidence) / 2

    def interval(values: Any) -> list[float]:
        low, high = np.quantile(values, [tail, 1 - tail])
        return [float(low), float(high)]

    def row(t: int) -> dict[str, list[float]]:
        return {"f1": interval(entity_f1[:, t]), "surface_f1": interval(surface_f1[:, t])}

    return {
        "samples": samples,
        "seed": seed,
        "confidence": confidence,
        "overall": row(0),
        "per_type": {type_: row(1 + i) for i, type_ in enumerate(types)},
    }


def resampled_entity_f1(
    gold: Sequence[set[Entity]], pred: Sequence[set[Entity]], types: Sequence[str], draws: list[list[int]]
) -> Any:
    """Entity F1 on every resample, as `(samples, 1 + types)`: overall in column 0, then per type.
    Sentences' counts add up, so a resample is a weighted sum of them (weight: times drawn)."""
    import numpy as np

    column = {type_: 1 + i for i, type_ in enumerate(types)}
    # Per sentence and per (all, type...): true positives, predicted and gold entities.
    counts = np.zeros((len(gold), len(types) + 1, 3))
    for n, (true, predicted) in enumerate(zip(gold, pred)):
        for k, entities in enumerate((true & predicted, predicted, true)):
            counts[n, 0, k] = len(entities)
            for type_, _, _ in entities:
                counts[n, column[type_], k] += 1
    weights = np.stack([np.bincount(draw, minlength=len(gold)) for draw in draws]).astype(float)
    totals = np.einsum("sn,ntk->stk", weights, counts)  # (samples, 1 + types, 3)
    denominator = totals[..., 1] + totals[..., 2]
    return np.divide(2 * totals[..., 0], denominator, out=np.zeros_like(denominator), where=denominator > 0)


def resampled_surface_f1(
    words: Sequence[Sequence[str]],
    gold: Sequence[set[Entity]],
    pred: Sequence[set[Entity]],
    types: Sequence[str],
    draws: list[list[int]],
) -> Any:
    """WNUT-17's surface-form F1 on every resample, as `(samples, 1 + types)` like
    `resampled_entity_f1`."""
    import numpy as np

    # Surface forms are sets: a resample's forms are those of the distinct sentences it drew.
    gold_forms, pred_forms = surface_forms(words, gold), surface_forms(words, pred)
    correct_forms = surface_forms(words, [true & predicted for true, predicted in zip(gold, pred)])
    surface_f1 = np.zeros((len(draws), len(types) + 1))
    for s, draw in enumerate(draws):
        chosen = set(draw)
        union = [
            set().union(*(by_sentence[n] for n in chosen))
            for by_sentence in (correct_forms, pred_forms, gold_forms)
        ]
        for t, type_ in enumerate((None, *types)):
            correct, predicted, true = (
                len(found) if type_ is None else sum(form[0] == type_ for form in found) for found in union
            )
            surface_f1[s, t] = 2 * correct / (predicted + true) if predicted + true else 0.0
    return surface_f1


def surface_forms(words: Sequence[Sequence[str]], by_sentence: Sequence[set[Entity]]) -> list[set[tuple]]:
    """Per sentence, its entities as `(type, words)`, the surface forms WNUT-17 scores."""
    return [
        {(type_, tuple(words[n][start : end + 1])) for type_, start, end in entities}
        for n, entities in enumerate(by_sentence)
    ]


def _scheme(gold: Split, gold_path: str | Path, tag_scheme: str) -> str:
    try:
        if tag_scheme != "auto":
            return scheme_name(tag_scheme)
        return detect_scheme(gold["tags"]).scheme
    except ValueError as exc:
        raise LitNerError(f"{gold_path}: {exc}") from None


def as_bio(sequences: Sequence[Sequence[str]], scheme: str, mode: str) -> list[list[str]]:
    """Tag sequences of `scheme` rewritten as the BIO of the entities that `mode` reads in them
    (seqeval's strict mode reads IOBES and BILOU by their own strict rules), so that scoring them
    as BIO scores those entities."""
    return [
        write_tags(read_entities(tags, scheme, strict=mode == "strict"), len(tags), TRAINING_SCHEME)
        for tags in sequences
    ]


def _read_as(results: dict[str, Any]) -> str:
    scheme = results.get("tag_scheme", TRAINING_SCHEME)
    return "" if scheme == TRAINING_SCHEME else f", {scheme} tags"


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
        f"entities (seqeval, {results['mode']} mode{_read_as(results)}); token accuracy "
        f"{overall['accuracy']:.4f}",
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


def evaluate(
    gold: str,
    pred: str | None = None,
    *,
    mode: Literal["default", "strict"] = "default",
    json: bool = False,
    bootstrap: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    tag_scheme: Literal["auto", "IOB1", "IOB2", "BIO", "IOBES", "BIOES", "BILOU", "IO"] = "auto",
) -> dict[str, Any]:
    """Scores predicted tags against gold tags: seqeval's entity scores and WNUT-17's surface forms.

    Args:
        gold: a CoNLL file with the gold tags in its last column.
        pred: a CoNLL file with the predicted tags in its last column (default: GOLD holds token,
            gold and predicted columns, as the predictions files lit_ner writes).
        mode: seqeval's entity rules: "default" (conlleval's, lenient) or "strict" (IOB2).
        json: print one JSON object instead of the tables.
        bootstrap: add a confidence interval to every F1 from this many resamples of the
            sentences (e.g. 1000); 0 for none.
        confidence: the intervals' coverage.
        seed: the resampling's random seed.
        tag_scheme: the files' tag scheme (`lit_ner.tag_schemes`): detected from the gold tags
            by default. Other schemes than BIO are read into entities by their own rules:
            conlleval's for IOB1 and IO, seqeval's default or strict mode's for IOBES and BILOU.

    Returns:
        The printed results, as `evaluate_files` gives them.
    """
    if bootstrap < 0 or not 0 < confidence < 1:
        raise LitNerError("--bootstrap must be >= 0 and --confidence between 0 and 1")
    results = evaluate_files(gold, pred, mode, bootstrap, seed, confidence, tag_scheme)
    print(dumps(results, indent=2) if json else format_results(results))
    return results
