"""Pictures of a per-type report: F1 bars and an entity-type confusion matrix, as PNG files.

Drawn with matplotlib's object-oriented API (no pyplot, so no GUI backend and no global state);
matplotlib comes with torchmetrics' `visual` extra.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from lit_ner.metrics import MISSED, SPURIOUS

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
    """The `metrics.entity_confusion` matrix as a heat map with counts in the cells."""
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
    # Drawn beside the destination and renamed over it: a kill mid-save leaves the old image.
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    figure.savefig(partial, dpi=100, format=path.suffix.lstrip(".") or "png")
    os.replace(partial, path)
    return path
