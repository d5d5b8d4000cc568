"""What a person looks at: a report's per-type F1 bars and entity-type confusion matrix as PNG
files, sample sentences with their gold and predicted entities highlighted in HTML, and a
search's trials.

Drawn with matplotlib's object-oriented API (no pyplot, so no GUI backend and no global state);
matplotlib comes with torchmetrics' `visual` extra.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lit_ner.files import write_atomically
from lit_ner.portable.spans import get_entities
from lit_ner.scoring import MISSED, SPURIOUS, entity_confusion

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_per_type_f1(report: dict[str, dict[str, float]], path: str | Path, title: str) -> Path:
    """Horizontal bars of each type's precision, recall and F1, support in the labels."""
    from matplotlib.figure import Figure

    types = [name for name in report if not name.endswith(" avg")]
    rows = [report[name] for name in types] + [report["micro avg"]]
    labels = [f"{name} ({report[name]['support']})" for name in types] + ["micro avg"]
    figure = Figure(figsize=(7, 0.6 * len(rows) + 1.5), layout="constrained")
    ax = figure.subplots()
    height = 0.27
    for k, (name, color) in enumerate((("precision", "#9ecae1"), ("recall", "#fdae6b"), ("f1", "#31a354"))):
        positions = [i + (k - 1) * height for i in range(len(rows))]
        bars = ax.barh(positions, [row[name] for row in rows], height=height, color=color, label=name)
        if name == "f1":
            ax.bar_label(bars, fmt="%.3f", padding=2, fontsize=8)
    ax.set_yticks(range(len(rows)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.08)
    ax.set_xlabel("score (entity support in brackets)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    path = Path(path)
    return _save(figure, path)


def plot_entity_confusion(types: list[str], matrix: list[list[int]], path: str | Path, title: str) -> Path:
    """The `scoring.entity_confusion` matrix as a heat map with counts in the cells."""
    from matplotlib.figure import Figure

    rows, columns = [*types, SPURIOUS], [*types, MISSED]
    size = 1.0 + 0.8 * len(columns)
    figure = Figure(figsize=(size + 2.0, size), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=ax, shrink=0.8)
    top = max((value for row in matrix for value in row), default=0)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            color = "white" if top and value > top / 2 else "black"
            ax.text(j, i, str(value), ha="center", va="center", color=color, fontsize=9)
    ax.set_xticks(range(len(columns)), columns, rotation=35, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("predicted type (missed: no predicted entity of that span)")
    ax.set_ylabel("gold type (spurious: no gold entity of that span)")
    ax.set_title(title)
    path = Path(path)
    return _save(figure, path)


def plot_data_report(report: dict, path: str | Path) -> Path:
    """`lit_ner debug-data`'s picture: each split's sentence lengths in subword positions (the
    model's maximum marked), and its entities per type."""
    from matplotlib.figure import Figure

    splits = report["splits"]
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    lengths_ax, labels_ax = figure.subplots(1, 2)
    longest = max((max(s["subword_lengths"], default=0) for s in splits.values()), default=0)
    bins = range(0, longest + 9, max(1, (longest + 8) // 40))
    for split, numbers in splits.items():
        lengths_ax.hist(numbers["subword_lengths"], bins=bins, histtype="step", linewidth=1.5, label=split)
    max_length = next(iter(splits.values()))["max_length"] if splits else 0
    if max_length <= longest:
        lengths_ax.axvline(max_length, color="red", linestyle="--", label=f"model maximum ({max_length})")
    lengths_ax.set_xlabel("subword positions per sentence (special tokens included)")
    lengths_ax.set_ylabel("sentences")
    lengths_ax.set_title("sentence lengths")
    lengths_ax.legend(fontsize=8)
    types = sorted({type_ for numbers in splits.values() for type_ in numbers["entities_per_type"]})
    width = 0.8 / max(1, len(splits))
    for k, (split, numbers) in enumerate(splits.items()):
        counts = [numbers["entities_per_type"].get(type_, 0) for type_ in types]
        bars = labels_ax.bar(
            [i + (k - (len(splits) - 1) / 2) * width for i in range(len(types))], counts, width, label=split
        )
        labels_ax.bar_label(bars, fontsize=7, padding=1)
    labels_ax.set_xticks(range(len(types)), types, rotation=25, ha="right")
    labels_ax.set_ylabel("entities")
    labels_ax.set_title("entities per type")
    labels_ax.legend(fontsize=8)
    return _save(figure, path)


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    image_format = path.suffix.lstrip(".") or "png"
    return write_atomically(path, lambda file: figure.savefig(file, dpi=100, format=image_format))


def draw_plots(results: dict[str, Any], directory: Path, stage: str, split: str, mode: str) -> list[Path]:
    """`<stage>_per_type_f1.png` and `<stage>_confusion.png` of one stage's results."""
    sentences = results["sentences"]
    return [
        plot_per_type_f1(
            results["report"], directory / f"{stage}_per_type_f1.png", f"{split}: per-type scores"
        ),
        plot_entity_confusion(
            *entity_confusion(sentences["y_true"], sentences["y_pred"], mode),
            directory / f"{stage}_confusion.png",
            f"{split}: entity types (exact spans)",
        ),
    ]


SAMPLE_COLUMNS = ["text", "differences", "gold", "predicted", "missed", "spurious"]


def sample_predictions(sentences: dict[str, Any], count: int) -> list[list[str]]:
    """Rows of the sample-predictions table (`SAMPLE_COLUMNS`) for the first `count` sentences:
    the text, the differences highlighted (HTML), then the gold, predicted, missed and spurious
    entities as `text (type)`, exact spans as seqeval matches them."""
    rows = []
    for words, gold, predicted in list(
        zip(sentences.get("words", []), sentences["y_true"], sentences["y_pred"])
    )[:count]:
        gold_spans, predicted_spans = (set(get_entities(tags)) for tags in (gold, predicted))

        def listed(spans: set[tuple[str, int, int]]) -> str:
            return "; ".join(
                f"{' '.join(words[start : end + 1])} ({type_})"
                for type_, start, end in sorted(spans, key=lambda span: (span[1], span[0]))
            )

        rows.append(
            [
                " ".join(words),
                highlighted(words, gold_spans, predicted_spans),
                listed(gold_spans),
                listed(predicted_spans),
                listed(gold_spans - predicted_spans),
                listed(predicted_spans - gold_spans),
            ]
        )
    return rows


# Background colours of the highlighted differences: found, missed (gold only), spurious.
FOUND, MISSED_COLOUR, SPURIOUS_COLOUR = "#c7e9c0", "#fdd49e", "#fcbba1"


def highlighted(
    words: Sequence[str], gold: set[tuple[str, int, int]], predicted: set[tuple[str, int, int]]
) -> str:
    """The sentence twice, as HTML: the gold line marks entities found (green) and missed
    (orange), the predicted line entities found (green) and spurious (red), each with its type.
    Spans are `(type, first word, last word)`; within one line they never overlap (BIO)."""

    def line(spans: set[tuple[str, int, int]], other: set[tuple[str, int, int]], colour: str) -> str:
        starts = {start: (type_, end) for type_, start, end in spans}
        parts, i = [], 0
        while i < len(words):
            if i in starts:
                type_, end = starts[i]
                background = FOUND if (type_, i, end) in other else colour
                text = html.escape(" ".join(words[i : end + 1]))
                parts.append(
                    f'<span style="background:{background};padding:1px 3px;border-radius:3px">'
                    f"{text} <sub>{html.escape(type_)}</sub></span>"
                )
                i = end + 1
            else:
                parts.append(html.escape(words[i]))
                i += 1
        return " ".join(parts)

    return (
        '<div style="font-family:sans-serif;line-height:1.9">'
        f"<div><b>gold</b> {line(gold, predicted, MISSED_COLOUR)}</div>"
        f"<div><b>predicted</b> {line(predicted, gold, SPURIOUS_COLOUR)}</div></div>"
    )


def plot_search(
    trials: Sequence[dict[str, Any]],
    options: dict[str, bool],
    importances: dict[str, float] | None,
    directory: str | Path,
) -> list[Path]:
    """A `lit_ner search` study's plots: `history.png` (each finished trial's validation F1 by
    trial number, pruned ones at the F1 they stopped at, and the best so far), `slices.png`
    (validation F1 against each searched option; `options` maps each to whether its range is on
    a log scale) and, given them, `importances.png`. `trials`: dicts with `number`, `state`,
    `value` and `params`."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    directory = Path(directory)
    scored = [trial for trial in trials if trial["value"] is not None]
    complete = [trial for trial in scored if trial["state"] == "complete"]
    pruned = [trial for trial in scored if trial["state"] == "pruned"]
    written = []

    figure = Figure(figsize=(7, 4), layout="constrained")
    ax = figure.subplots()
    ax.scatter([t["number"] for t in complete], [t["value"] for t in complete], label="finished")
    if pruned:
        ax.scatter([t["number"] for t in pruned], [t["value"] for t in pruned], marker="x", label="pruned")
    best, running = [], float("-inf")
    for trial in sorted(complete, key=lambda t: t["number"]):
        running = max(running, trial["value"])
        best.append((trial["number"], running))
    last = max((t["number"] for t in scored), default=None)
    if best and last > best[-1][0]:  # the line runs on to the last trial, pruned or not
        best.append((last, running))
    if best:
        ax.step(*zip(*best), where="post", color="black", label="best so far")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel("validation F1")
    ax.legend(fontsize=8)
    written.append(_save(figure, directory / "history.png"))

    figure = Figure(figsize=(3.2 * max(1, len(options)), 3.4), layout="constrained")
    axes = figure.subplots(1, max(1, len(options)), sharey=True, squeeze=False)[0]
    for ax, (option, log_scale) in zip(axes, options.items()):
        for group, marker in ((complete, "o"), (pruned, "x")):
            points = [(t["params"][option], t["value"]) for t in group if option in t["params"]]
            if points:
                # Choices that are no numbers (booleans included) on a categorical axis, by name.
                values = [
                    value if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
                    for value, _ in points
                ]
                ax.scatter(values, [score for _, score in points], marker=marker)
        if log_scale:
            ax.set_xscale("log")
        ax.set_xlabel(option, fontsize=8)
    axes[0].set_ylabel("validation F1")
    written.append(_save(figure, directory / "slices.png"))

    if importances:
        figure = Figure(figsize=(7, 0.5 * len(importances) + 1.2), layout="constrained")
        ax = figure.subplots()
        names = list(importances)[::-1]  # the most important on top
        ax.barh(names, [importances[name] for name in names])
        ax.set_xlabel("importance for validation F1 (PED-ANOVA)")
        written.append(_save(figure, directory / "importances.png"))
    return written
