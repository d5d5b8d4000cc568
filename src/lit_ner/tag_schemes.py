"""Tag schemes: what lit_ner knows of a tag set beyond its strings. Today BIO (IOB2): a label order
for tags read from files, and the I- tags that continue no entity."""

from __future__ import annotations

from collections.abc import Sequence


def ill_formed_bio(tags: Sequence[str]) -> list[int]:
    """Positions of I- tags that continue nothing: after `O`, at the start, or after a tag of
    another type. seqeval's default mode (and conlleval) read each as the start of an entity;
    its strict mode as no entity at all.

    >>> ill_formed_bio(["O", "I-person", "I-person", "B-group", "I-person"])
    [1, 4]
    """
    positions, previous = [], "O"
    for position, tag in enumerate(tags):
        if tag.startswith("I-") and (previous[:2] not in {"B-", "I-"} or previous[2:] != tag[2:]):
            positions.append(position)
        previous = tag
    return positions


def bio_label_order(tags: set[str]) -> list[str]:
    """A stable label order for tags read from files: `O`, then per type (sorted) B-, I-, E-, S-.

    For WNUT-17's tags this is exactly the Hub data set's ClassLabel order.
    """
    prefix_rank = {"B": 0, "I": 1, "E": 2, "S": 3}

    def key(tag: str) -> tuple[str, int]:
        prefix, _, type_ = tag.partition("-")
        if type_ and prefix in prefix_rank:
            return type_, prefix_rank[prefix]
        return tag, -1  # not BIO: sorts among the types by its own name

    return (["O"] if "O" in tags else []) + sorted(tags - {"O"}, key=key)
