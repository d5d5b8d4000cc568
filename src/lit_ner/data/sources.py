"""Where a data module's sentences come from, read once into the same in-memory form whatever the
source (`formats.Split`: words and string tags, and from files each word's line), and the checks
every split's tags pass. The sources, in the order they are looked for:

1. per-split files (`train_file`, `validation_file`, `test_file`): CoNLL, JSONL, or span
   annotations (doccano, Label Studio, Prodigy; `lit_ner.annotations`);
2. a directory holding the official WNUT-17 release (`data_dir`, or `$WNUT17_DIR` when the
   configured data set is WNUT-17);
3. a Hugging Face Hub data set with a tokens column and a `Sequence(ClassLabel)` tags column;
4. with no data set named and none of the above, the WNUT-17 release shipped inside the package.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from lit_ner.annotations import read_annotations
from lit_ner.errors import LitNerError
from lit_ner.formats import SPLITS, Split
from lit_ner.hub import hub_errors
from lit_ner.tag_schemes import bio_label_order, ill_formed_bio
from lit_ner.wnut17 import PACKAGED_WNUT17, WNUT17_HUB_NAMES, WNUT17_LABELS, is_release, wnut17_files


def split_files(
    train_file: str | None,
    validation_file: str | None,
    test_file: str | None,
    data_dir: str | None,
    dataset_name: str | None,
) -> dict[str, Path]:
    """The file of each split, from the sources above; empty when the data is a Hub data set."""
    files = {s: f for s, f in zip(SPLITS, (train_file, validation_file, test_file)) if f}
    if files:
        return {split: Path(path) for split, path in files.items()}
    if data_dir is None and (dataset_name is None or dataset_name in WNUT17_HUB_NAMES):
        data_dir = os.environ.get("WNUT17_DIR") or None
    if data_dir is None:
        if dataset_name is not None:
            return {}  # the Hub data set
        data_dir = PACKAGED_WNUT17  # no Hub, no directory: the release inside the package
    return wnut17_files(data_dir)


def read_files(files: dict[str, Path]) -> dict[str, Split]:
    """Each split's file read (any of the formats `lit_ner.annotations.read_annotations` knows)."""
    return {split: read_annotations(path) for split, path in files.items()}


def default_label_names(
    splits: dict[str, Split], files: dict[str, Path], hub_label_names: list[str] | None
) -> list[str]:
    """The label set when none is configured: the Hub data set's ClassLabel names, WNUT-17's
    order for its release files, else `tag_schemes.bio_label_order` of the tags the data holds."""
    if hub_label_names is not None:
        return hub_label_names
    if files and is_release(files):
        return WNUT17_LABELS
    return bio_label_order({t for s in splits.values() for tags in s["tags"] for t in tags})


def read_hub_splits(
    name: str,
    config_name: str | None,
    revision: str | None,
    tokens_column: str,
    tags_column: str,
    label_names: list[str] | None,
) -> tuple[dict[str, dict[str, list]], list[str] | None]:
    """A Hub data set's splits as words and string tags, and its `ClassLabel` names (None when its
    tags are plain integers, named by `label_names`). Bad columns or tag ids are one line."""
    import datasets

    with hub_errors(f"data set '{name}'"):
        dataset = datasets.load_dataset(name, config_name, revision=revision)
    features = next(iter(dataset.values())).features
    for column in (tokens_column, tags_column):
        if column not in features:
            raise LitNerError(f"data set '{name}' has no column '{column}' (it has {list(features)})")
    class_names = getattr(getattr(features[tags_column], "feature", None), "names", None)
    names = list(class_names) if class_names else label_names  # plain integer tags: --data.label_names
    if names is None:
        raise LitNerError(
            f"data set '{name}': column '{tags_column}' is not a sequence of ClassLabel; "
            "set --data.label_names to the tag names in id order"
        )
    splits = {}
    for split, part in dataset.items():
        ids = part[tags_column]
        for n, sentence in enumerate(ids):
            bad = [i for i in sentence if not 0 <= i < len(names)]
            if bad:
                raise LitNerError(
                    f"data set '{name}', {split} sentence {n}: tag id {bad[0]} is not one of "
                    f"the {len(names)} labels {list(names)}"
                )
        tags = [[names[i] for i in sentence] for sentence in ids]
        splits[split] = {"tokens": [list(words) for words in part[tokens_column]], "tags": tags}
    return splits, list(class_names) if class_names else None


def check_tags(
    splits: dict[str, Split],
    label_names: list[str],
    files: dict[str, Path],
    dataset_name: str | None,
    labels_from_data: bool,
    strict_bio: bool,
    warn: Callable[[str], None],
) -> None:
    """Every tag must be a label; with labels read from files, the evaluation splits may hold no
    tag that train lacks (the model could never predict it). Ill-formed BIO is refused with
    `strict_bio`, else counted: one `warn` per split that has some, as each split is checked."""
    known = set(label_names)

    def where(split: str, sentence: int, word: int) -> str:
        lines = splits[split].get("lines")
        if lines is not None:
            return f"{files[split]}:{lines[sentence][word]}"
        return f"data set '{dataset_name}', {split} sentence {sentence}, word {word}"

    train_tags = None
    if labels_from_data and files and "train" in splits:
        # A label set read from files is what the files hold (a Hub data set names its own).
        train_tags = {tag for sentence in splits["train"]["tags"] for tag in sentence}
    for split, data in splits.items():
        ill_formed, first = 0, None
        for n, tags in enumerate(data["tags"]):
            for i, tag in enumerate(tags):
                if tag not in known:
                    raise LitNerError(
                        f"{where(split, n, i)}: tag {tag!r} is not in the label set {label_names}"
                    )
                if train_tags is not None and tag not in train_tags:
                    raise LitNerError(
                        f"{where(split, n, i)}: tag {tag!r} never occurs in the train split "
                        f"({files['train']}), so the model could never predict it; "
                        "set --data.label_names to train with it anyway"
                    )
            positions = ill_formed_bio(tags)
            if positions and first is None:
                first = (where(split, n, positions[0]), tags[positions[0]])
            ill_formed += len(positions)
        if not ill_formed:
            continue
        message = f"{first[0]}: {first[1]!r} continues no entity"
        if strict_bio:
            raise LitNerError(f"{message} (ill-formed BIO, refused by --data.strict_bio)")
        warn(
            f"{message}: {ill_formed} such I- tags in {split}, read as the start of an entity "
            "(seqeval's default mode and conlleval); --data.strict_bio refuses them"
        )
