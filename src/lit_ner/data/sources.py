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
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lit_ner.annotations import read_annotations
from lit_ner.errors import LitNerError
from lit_ner.formats import SPLITS, Split
from lit_ner.hub import hub_errors
from lit_ner.tag_schemes import (
    PREFIXES,
    TRAINING_SCHEME,
    bio_labels,
    detect_scheme,
    entity_type,
    ill_formed,
    ill_formed_bio,
    read_entities,
    rewritten,
    scheme_name,
    split_tag,
    to_bio,
    write_tags,
)
from lit_ner.wnut17 import (
    PACKAGED_WNUT17,
    WNUT17_FILES,
    WNUT17_HUB_NAMES,
    WNUT17_LABELS,
    is_release,
    wnut17_files,
)


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


def where(splits: dict[str, Split], files: dict[str, Path], dataset_name: str | None, split: str,
          sentence: int, word: int) -> str:  # fmt: skip
    """Where a word of a split was read: `file:line`, or the Hub data set's sentence and word."""
    lines = splits[split].get("lines")
    if lines is not None:
        return f"{files[split]}:{lines[sentence][word]}"
    return f"data set '{dataset_name}', {split} sentence {sentence}, word {word}"


def normalise_tags(
    splits: dict[str, Split],
    files: dict[str, Path],
    dataset_name: str | None,
    tag_scheme: str,
    label_map: dict[str, str | None] | None,
    strict: bool = False,
    warn: Callable[[str], None] | None = None,
) -> tuple[str, list[str]]:
    """Rewrites every split's tags, in place, into BIO (the scheme lit_ner trains in), from the
    data's own scheme (`tag_scheme`, or detected with `auto`) and through `label_map` (entity type
    -> new type, or None to drop it). Returns the data's scheme and the lines that say what was
    read and rewritten. Tags no scheme reads, tags the set scheme does not have and map entries
    for types no split holds are one `LitNerError` naming the file and line. Tags that break an
    IOBES or BILOU grammar (`tag_schemes.ill_formed`) are read leniently and counted in one
    `warn`, or refused with `strict` (IOB2's are `check_tags`')."""

    def locate(predicate):  # the first word whose tag satisfies `predicate`, with its tag
        for split, data in splits.items():
            for n, tags in enumerate(data["tags"]):
                for i, tag in enumerate(tags):
                    if predicate(tag):
                        return where(splits, files, dataset_name, split, n, i), tag
        return None

    unreadable = locate(lambda tag: split_tag(tag) is None)
    if unreadable:
        raise LitNerError(
            f"{unreadable[0]}: tag {unreadable[1]!r} is neither O nor a B-/I-/E-/S-/L-/U- prefix, a "
            "dash and an entity type"
        )
    every_sentence = [tags for data in splits.values() for tags in data["tags"]]
    if tag_scheme == "auto":
        try:
            detection = detect_scheme(every_sentence)
        except ValueError as exc:
            raise LitNerError(f"{_source(files, dataset_name)}: {exc}; set --data.tag_scheme") from None
        scheme, how = detection.scheme, f"{detection.scheme} (detected: {detection.reason})"
    else:
        scheme, how = scheme_name(tag_scheme), f"{scheme_name(tag_scheme)} (--data.tag_scheme)"
        foreign = locate(lambda tag: tag != "O" and tag[0] not in PREFIXES[scheme])
        if foreign:
            raise LitNerError(
                f"{foreign[0]}: tag {foreign[1]!r} is not an {scheme} tag (--data.tag_scheme {tag_scheme})"
            )
    label_map = dict(label_map or {})
    if label_map:
        types = {entity_type(tag) for tags in every_sentence for tag in tags} - {None}
        unknown = sorted(set(label_map) - types)
        if unknown:
            raise LitNerError(
                f"--data.label_map: no split holds entity type {unknown[0]!r} (the types are {sorted(types)})"
            )
    mapped: Counter = Counter()
    before = {split: data["tags"] for split, data in splits.items()}
    broken, first_broken = 0, None
    for split, data in splits.items():
        rewritten_tags = []
        for n, tags in enumerate(data["tags"]):
            if scheme == TRAINING_SCHEME and not label_map:
                rewritten_tags.append(tags)
                continue
            positions = ill_formed(tags, scheme) if scheme != TRAINING_SCHEME else []
            if positions:
                broken += len(positions)
                first_broken = first_broken or (
                    where(splits, files, dataset_name, split, n, positions[0]),
                    tags[positions[0]],
                )
            entities = read_entities(tags, scheme)
            for type_, _, _ in entities:
                if type_ in label_map:
                    mapped[type_] += 1
            if scheme == TRAINING_SCHEME:
                # Tag by tag, so that an ill-formed I- stays one for check_tags to count.
                rewritten_tags.append([_mapped_tag(tag, label_map) for tag in tags])
            else:
                kept = [(label_map.get(t, t), first, last) for t, first, last in entities]
                kept = [(t, first, last) for t, first, last in kept if t is not None]
                rewritten_tags.append(write_tags(kept, len(tags), TRAINING_SCHEME))
        data["tags"] = rewritten_tags
    if first_broken:
        message = f"{first_broken[0]}: {first_broken[1]!r} breaks {scheme}'s grammar"
        if strict:
            raise LitNerError(f"{message} (refused by --data.strict_bio)")
        if warn is not None:
            warn(
                f"{message}: {broken:,} such tags, read as seqeval's default mode reads them "
                "(conlleval's rules); --data.strict_bio refuses them"
            )
    lines = []
    if scheme == TRAINING_SCHEME:
        lines.append(f"tags: {how}, trained as they are")
    else:
        # What the scheme alone rewrote, told apart from what the label map did.
        changes: Counter = Counter()
        for tags in before.values():
            changes += rewritten(tags, [to_bio(sentence, scheme) for sentence in tags])
        total = sum(changes.values())
        detail = ", ".join(f"{change}: {n:,}" for change, n in changes.most_common())
        lines.append(
            f"tags: {how} read as BIO: {total:,} tags rewritten" + (f" ({detail})" if detail else "")
        )
    if label_map:
        parts = [
            f"{old} dropped ({mapped[old]:,} entities)"
            if new is None
            else f"{old} -> {new} ({mapped[old]:,} entities)"
            for old, new in label_map.items()
        ]
        lines.append(f"label map: {'; '.join(parts)}")
    return scheme, lines


def _mapped_tag(tag: str, label_map: dict[str, str | None]) -> str:
    type_ = entity_type(tag)
    if type_ is None or type_ not in label_map:
        return tag
    new = label_map[type_]
    return "O" if new is None else f"{tag[:2]}{new}"


def _source(files: dict[str, Path], dataset_name: str | None) -> str:
    return ", ".join(str(path) for path in files.values()) if files else f"data set '{dataset_name}'"


def training_labels(
    splits: dict[str, Split],
    files: dict[str, Path],
    given: list[str] | None,
    hub_label_names: list[str] | None,
    scheme: str,
    mapped: bool,
) -> list[str]:
    """The label set lit_ner trains with, in id order (BIO):

    - `given` (`--data.label_names`) as it is when it is BIO; another scheme's names become the BIO
      set of their types, in their order;
    - the Hub data set's own label names when its tags were BIO and no label map applied;
    - WNUT-17's order for its release files;
    - else the full BIO set (`O`, then `B-`, `I-` per type) of the types the train split holds
      (every split without one), sorted, so that a tag only an evaluation split spells (IOB1's
      `B-`) never stops a run.
    """
    if given is not None:
        if all((split_tag(tag) or ("?",))[0] in "OBI" for tag in given):
            return list(given)
        return bio_labels(t for t in map(entity_type, given) if t is not None)
    if hub_label_names is not None and scheme == TRAINING_SCHEME and not mapped:
        return list(hub_label_names)
    if files and is_release(files) and scheme == TRAINING_SCHEME and not mapped:
        return WNUT17_LABELS
    source = [splits["train"]] if "train" in splits else list(splits.values())
    types = {entity_type(tag) for data in source for tags in data["tags"] for tag in tags} - {None}
    hub_order = [t for t in map(entity_type, hub_label_names or []) if t in types]
    return bio_labels([*hub_order, *sorted(types - set(hub_order))])


# The columns a Hub data set's words and tags are looked for in, in this order, when not named.
TOKENS_COLUMNS = ("tokens", "words")
TAGS_COLUMNS = ("ner_tags", "tags", "ner", "labels", "ner_labels")
# Where a data set repository may keep the names of integer tags (tner's data sets do).
LABEL_FILES = ("dataset/label.json", "label.json")


def read_hub_splits(
    name: str,
    config_name: str | None,
    revision: str | None,
    tokens_column: str | None,
    tags_column: str | None,
    label_names: list[str] | dict[str, int] | None,
) -> tuple[dict[str, dict[str, list]], list[str] | None]:
    """A Hub data set's splits (or one saved on disk: a folder of parquet, arrow, JSON or CSV
    files, or `save_to_disk`'s) as words and string tags, and the names of its tag ids in id
    order (None for string tags). The tags column may hold `ClassLabel` ids, plain integer ids
    (named by `label_names`, a list in id order or a label2id mapping, else by the repository's
    `label.json` as tner's data sets have it) or strings. Bad columns or ids are one line."""
    import datasets

    try:
        with hub_errors(f"data set '{name}'", name):
            if (Path(name) / "dataset_dict.json").is_file() or (Path(name) / "state.json").is_file():
                dataset = datasets.load_from_disk(name)
            else:
                dataset = datasets.load_dataset(name, config_name, revision=revision)
    except RuntimeError as exc:  # datasets >= 4 refuses loading scripts
        if "no longer supported" not in str(exc):
            raise
        raise LitNerError(
            f"cannot load data set '{name}': it is a loading script, which datasets >= 4 no longer "
            "runs; its parquet conversion may load: --data.dataset_revision refs/convert/parquet"
        ) from None
    if isinstance(dataset, datasets.Dataset):
        dataset = datasets.DatasetDict({"train": dataset})
    features = next(iter(dataset.values())).features
    tokens_column = _column(name, features, tokens_column, TOKENS_COLUMNS, "words", "tokens_column")
    tags_column = _column(name, features, tags_column, TAGS_COLUMNS, "tags", "tags_column")
    inner = getattr(features[tags_column], "feature", None)
    class_names = getattr(inner, "names", None)
    if class_names:
        names: list[str] | None = list(class_names)
    elif getattr(inner, "dtype", None) == "string":
        names = None
    elif isinstance(label_names, dict):
        names = _id_order(label_names, "--data.label_names")
    elif label_names is not None:
        names = list(label_names)
    else:
        names = _label_file(name, revision)
        if names is None:
            raise LitNerError(
                f"data set '{name}': column '{tags_column}' holds plain integer tags and the data set "
                "names them nowhere lit_ner looks (ClassLabel, label.json); set --data.label_names to "
                "the tag names in id order, or to a label2id mapping"
            )
    splits = {}
    for split, part in dataset.items():
        values = part[tags_column]
        if names is not None:
            for n, sentence in enumerate(values):
                bad = [i for i in sentence if not 0 <= i < len(names)]
                if bad:
                    raise LitNerError(
                        f"data set '{name}', {split} sentence {n}: tag id {bad[0]} is not one of "
                        f"the {len(names)} labels {list(names)}"
                    )
            tags = [[names[i] for i in sentence] for sentence in values]
        else:
            tags = [[str(tag).strip() for tag in sentence] for sentence in values]
        words = [list(sentence) for sentence in part[tokens_column]]
        for n, (sentence_words, sentence_tags) in enumerate(zip(words, tags)):
            if len(sentence_words) != len(sentence_tags):
                raise LitNerError(
                    f"data set '{name}', {split} sentence {n}: {len(sentence_words)} words but "
                    f"{len(sentence_tags)} tags"
                )
        splits[split] = {"tokens": words, "tags": tags}
    return splits, names


def _column(
    name: str, features: Any, given: str | None, candidates: tuple[str, ...], what: str, flag: str
) -> str:
    if given is not None:
        if given not in features:
            raise LitNerError(f"data set '{name}' has no column '{given}' (it has {list(features)})")
        return given
    found = next((column for column in candidates if column in features), None)
    if found is None:
        raise LitNerError(
            f"data set '{name}': no column of {what} among {list(candidates)} (it has {list(features)}); "
            f"set --data.{flag}"
        )
    return found


def _id_order(label2id: dict[str, int], where_from: str) -> list[str]:
    ids = sorted(label2id.values())
    if ids != list(range(len(ids))):
        raise LitNerError(f"{where_from}: the label ids {ids} are not 0..{len(ids) - 1}")
    return sorted(label2id, key=label2id.__getitem__)


def _label_file(name: str, revision: str | None) -> list[str] | None:
    """The tag names of a data set that keeps them in a `label.json` label2id file (tner's), from
    its folder on disk or its Hub repository; None when it has none."""
    import json

    for filename in LABEL_FILES:
        path = Path(name) / filename
        if not path.is_file() and not Path(name).exists():
            try:
                from huggingface_hub import hf_hub_download

                path = Path(hf_hub_download(name, filename, repo_type="dataset", revision=revision))
            except Exception:  # not there, or no Hub: the caller asks for --data.label_names
                continue
        if path.is_file():
            try:
                return _id_order(json.loads(path.read_text(encoding="utf-8")), str(path))
            except (ValueError, AttributeError, TypeError):
                raise LitNerError(f"{path}: not a label2id mapping of tag names to ids 0..n-1") from None
    return None


def data_name(
    dataset_name: str | None, dataset_config_name: str | None, train_file: str | None, data_dir: str | None
) -> str:
    """A short name of the data a run trains on, for its run directory (`{data}` in a logger's
    name): `wnut` for WNUT-17 from anywhere, else the train file's name without its format suffix
    (its folder's when the file is just `train`), else the Hub id (`/` as `-`) and its config."""
    if train_file:
        path = Path(train_file)
        stem = path.name.removesuffix(".gz")
        if stem == WNUT17_FILES["train"]:
            return "wnut"
        for suffix in (".conll", ".conllu", ".txt", ".tsv", ".jsonl", ".json", ".iob", ".bio"):
            stem = stem.removesuffix(suffix)
        if stem.lower() in {"train", "training", "trn"} and path.resolve().parent.name:
            stem = path.resolve().parent.name
        return _safe(stem)
    if data_dir or dataset_name is None or dataset_name in WNUT17_HUB_NAMES:
        return "wnut"
    name = Path(dataset_name).name if Path(dataset_name).exists() else dataset_name.replace("/", "-")
    return _safe(f"{name}-{dataset_config_name}" if dataset_config_name else name)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "data"


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
    entity type that train lacks (the model could never predict it). Ill-formed BIO is refused
    with `strict_bio`, else counted: one `warn` per split that has some, as each split is checked."""
    known = set(label_names)
    train_types = None
    if labels_from_data and files and "train" in splits:
        # A label set read from files is what the files hold (a Hub data set names its own).
        train_types = {entity_type(tag) for sentence in splits["train"]["tags"] for tag in sentence}
    for split, data in splits.items():
        ill_formed, first = 0, None
        for n, tags in enumerate(data["tags"]):
            for i, tag in enumerate(tags):
                if train_types is not None and entity_type(tag) not in train_types:
                    raise LitNerError(
                        f"{where(splits, files, dataset_name, split, n, i)}: entity type "
                        f"{entity_type(tag)!r} never occurs in the train split ({files['train']}), so "
                        "the model could never predict it; set --data.label_names to train with it "
                        "anyway, or drop it with --data.label_map"
                    )
                if tag not in known:
                    raise LitNerError(
                        f"{where(splits, files, dataset_name, split, n, i)}: tag {tag!r} is not in the "
                        f"label set {label_names}"
                    )
            positions = ill_formed_bio(tags)
            if positions and first is None:
                first = (where(splits, files, dataset_name, split, n, positions[0]), tags[positions[0]])
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
