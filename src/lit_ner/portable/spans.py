"""Entities from tag sequences, as seqeval reads them in its default (lenient) mode: the one span
reader of lit_ner, for scoring (`lit_ner.scoring`), decoding (`word_decoding`), augmentation and
every file lit_ner writes entities to.

Shipped inside exports (module docstring of `lit_ner.portable`): the standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence

Entity = tuple[str, int, int]  # (type, first word, last word), inclusive as in seqeval


def _prefix_and_type(tag: str) -> tuple[str, str]:
    # seqeval: the first character is the chunk tag, the rest after the first '-' the type;
    # 'O' (and any bare prefix) gets type '_'.
    return tag[0], tag[1:].split("-", maxsplit=1)[-1] or "_"


def _ends(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    return (
        prev_tag in ("E", "S")
        or (prev_tag in ("B", "I") and tag in ("B", "S", "O"))
        or (prev_tag not in ("O", ".") and prev_type != type_)
    )


def _starts(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    return (
        tag in ("B", "S")
        or (prev_tag in ("E", "S", "O") and tag in ("E", "I"))
        or (tag not in ("O", ".") and prev_type != type_)
    )


def get_entities(tags: Sequence[str]) -> list[Entity]:
    """Entities in one tag sequence, by seqeval's default (lenient) rules.

    >>> get_entities(["B-person", "I-person", "O", "I-location", "B-group", "I-product"])
    [('person', 0, 1), ('location', 3, 3), ('group', 4, 4), ('product', 5, 5)]
    """
    entities = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, chunk in enumerate([*tags, "O"]):
        tag, type_ = _prefix_and_type(chunk)
        if _ends(prev_tag, tag, prev_type, type_):
            entities.append((prev_type, begin, i - 1))
        if _starts(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return entities
