"""WNUT-17 (Derczynski et al., 2017): its 13 labels in the Hub data set's order, the release's
file names, and the release itself, shipped here gzipped (CC-BY 4.0; README.md gives its source,
licence and citation)."""

from __future__ import annotations

from pathlib import Path

from lit_ner.errors import LitNerError

WNUT17_LABELS = [
    "O",
    "B-corporation",
    "I-corporation",
    "B-creative-work",
    "I-creative-work",
    "B-group",
    "I-group",
    "B-location",
    "I-location",
    "B-person",
    "I-person",
    "B-product",
    "I-product",
]
# The official release's file names, per split.
WNUT17_FILES = {
    "train": "wnut17train.conll",
    "validation": "emerging.dev.conll",
    "test": "emerging.test.annotated",
}
# The names the Hub knows it by.
WNUT17_HUB_NAMES = {"leondz/wnut_17", "wnut_17"}
PACKAGED_WNUT17 = Path(__file__).parent


def wnut17_files(directory: str | Path = PACKAGED_WNUT17) -> dict[str, Path]:
    """The release's file of each split in `directory`, as released or gzipped (`NAME.gz`); a
    `LitNerError` naming the missing ones."""
    files, missing = {}, []
    for split, name in WNUT17_FILES.items():
        plain, packed = Path(directory) / name, Path(directory) / f"{name}.gz"
        files[split] = plain if plain.is_file() or not packed.is_file() else packed
        if not files[split].is_file():
            missing.append(str(plain))
    if missing:
        raise LitNerError(f"WNUT-17 directory {directory}: missing {', '.join(missing)}")
    return files


def is_release(files: dict[str, Path]) -> bool:
    """Whether per-split files are the release's own (plain or gzipped)."""
    return {split: Path(path).name.removesuffix(".gz") for split, path in files.items()} == WNUT17_FILES
