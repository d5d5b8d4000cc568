"""Tag schemes: how a sequence of word tags spells entities, told apart, read and written.

lit_ner trains in IOB2 ("BIO": `B-X` opens every entity, `I-X` continues it). Data comes in
others too, and each is read into entities and written back as BIO on reading (`to_bio`), and
predictions can be written in the data's own scheme again (`from_bio`):

- IOB1 (CoNLL-2003's release files): `I-X` everywhere, `B-X` only where an entity directly follows
  one of its own type;
- IOBES / BIOES: `S-X` a one-word entity, `B-X I-X ... E-X` a longer one;
- BILOU: IOBES with `U-` for `S-` and `L-` for `E-`;
- IO: `I-X` only; two adjacent entities of one type cannot be told apart.

A file of `I-` tags alone is IOB1 or IO: both read into the same entities, and lit_ner assumes
IOB1, the one that can also say where two adjacent entities meet (`detect_scheme`).

Reading follows seqeval's default (lenient) mode and conlleval: a tag that breaks its scheme's
grammar (an `E-X` after `O`, a `B-X` never closed in IOBES) still reads as part of an entity, and
`ill_formed` counts where. No torch: `lit_ner evaluate` uses this alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from lit_ner.portable.spans import Entity, get_entities

SCHEMES = ("IOB1", "IOB2", "IOBES", "BILOU", "IO")
TRAINING_SCHEME = "IOB2"
# The names people use for them, and `auto` (detect from the data).
ALIASES = {"BIO": "IOB2", "BIOES": "IOBES", "IOBES": "IOBES", "BIOLU": "BILOU", "BILOU": "BILOU"}
SCHEME_CHOICES = ("auto", *SCHEMES, "BIO", "BIOES")
PREFIXES = {
    "IOB1": "BI",
    "IOB2": "BI",
    "IOBES": "BIES",
    "BILOU": "BILU",
    "IO": "I",
}
# BILOU's prefixes as IOBES's, which seqeval's default reading knows.
_AS_IOBES = {"L": "E", "U": "S"}


def scheme_name(name: str) -> str:
    """The canonical name of a scheme (`BIO` -> `IOB2`); a `ValueError` for an unknown one."""
    upper = name.upper()
    canonical = ALIASES.get(upper, upper)
    if canonical not in SCHEMES:
        raise ValueError(f"unknown tag scheme {name!r}: one of {', '.join(SCHEME_CHOICES)}")
    return canonical


def split_tag(tag: str) -> tuple[str, str] | None:
    """`("O", "")` for `O`, `(prefix, type)` for a one-letter prefix, a dash and a type (`B-PER`,
    `I-creative-work`), None for anything else (a bare `PER`, `B_PER`)."""
    if tag == "O":
        return "O", ""
    prefix, dash, type_ = tag.partition("-")
    if dash and type_ and len(prefix) == 1 and prefix in "BIESLU":
        return prefix, type_
    return None


def entity_type(tag: str) -> str | None:
    """The entity type a tag names (None for `O` and for tags `split_tag` does not read)."""
    parsed = split_tag(tag)
    return parsed[1] if parsed and parsed[0] != "O" else None


@dataclass
class Detection:
    """Which scheme a corpus's tags are in, and why (`detect_scheme`)."""

    scheme: str
    reason: str
    prefixes: Counter = field(default_factory=Counter)


def detect_scheme(sequences: Iterable[Sequence[str]]) -> Detection:
    """The scheme a corpus is written in, from its tags (every split together: an IOB1 train
    slice may hold no `B-`, its test file does):

    - any `E-`/`S-`: IOBES; any `L-`/`U-`: BILOU (both: a `ValueError`);
    - `B-` and `I-`: IOB2 when `B-` opens at least as many entities as `I-` does (an `I-` after
      `O` is then an annotation slip, counted by `ill_formed`), else IOB1 (its `B-` only
      separates adjacent entities of one type, so `I-` opens nearly all);
    - `I-` alone: IOB1 (an IO file reads the same; set the scheme to write IO back);
    - no entity at all: IOB2.

    A tag `split_tag` cannot read raises a `ValueError` naming it.
    """
    prefixes: Counter = Counter()
    opened_by: Counter = Counter()  # which prefix opens each entity (after O or another type)
    for tags in sequences:
        previous_type = None
        for tag in tags:
            parsed = split_tag(tag)
            if parsed is None:
                raise ValueError(
                    f"tag {tag!r} is neither O nor a B-/I-/E-/S-/L-/U- prefix, a dash and an entity type"
                )
            prefix, type_ = parsed
            prefixes[prefix] += 1
            if prefix != "O" and type_ != previous_type:
                opened_by[prefix] += 1
            previous_type = type_ if prefix != "O" else None
    if (prefixes["E"] or prefixes["S"]) and (prefixes["L"] or prefixes["U"]):
        raise ValueError("the tags mix IOBES's E-/S- with BILOU's L-/U- prefixes")
    if prefixes["E"] or prefixes["S"]:
        return Detection("IOBES", "E-/S- tags", prefixes)
    if prefixes["L"] or prefixes["U"]:
        return Detection("BILOU", "L-/U- tags", prefixes)
    if not prefixes["B"] and not prefixes["I"]:
        return Detection("IOB2", "no entity tags", prefixes)
    if not prefixes["B"]:
        return Detection("IOB1", "I- tags only: IOB1 assumed (IO reads the same)", prefixes)
    if opened_by["B"] >= opened_by["I"]:
        return Detection("IOB2", "B- opens the entities", prefixes)
    after_others = opened_by["I"] + opened_by["B"]
    reason = f"I- opens {opened_by['I']:,} of the {after_others:,} entities after O or another type"
    return Detection("IOB1", reason, prefixes)


def read_entities(tags: Sequence[str], scheme: str, strict: bool = False) -> list[Entity]:
    """The entities of one tag sequence in `scheme`: `(type, first word, last word)`.

    Read leniently (seqeval's default mode, conlleval) or, with `strict`, as seqeval's strict mode
    reads IOB2, IOBES and BILOU: only a well-formed chunk is an entity (`B-X I-X...` in IOB2;
    `S-X` or `B-X I-X... E-X` in IOBES). IOB1 and IO read the same either way.
    """
    if scheme == "BILOU":
        tags = [_AS_IOBES.get(tag[:1], tag[:1]) + tag[1:] if tag != "O" else tag for tag in tags]
    if not strict or scheme in ("IOB1", "IO"):
        return get_entities(tags)
    if scheme == "IOB2":
        from lit_ner.scoring import get_entities_strict

        return get_entities_strict(tags)
    entities, opened = [], None  # IOBES (BILOU as IOBES): the open chunk's (type, first word)
    for position, tag in enumerate(tags):
        prefix, type_ = split_tag(tag) or ("O", "")
        if prefix == "S":
            entities.append((type_, position, position))
            opened = None
        elif prefix == "B":
            opened = (type_, position)
        elif prefix in ("I", "E") and opened is not None and opened[0] == type_:
            if prefix == "E":
                entities.append((type_, opened[1], position))
                opened = None
        else:
            opened = None
    return entities


def write_tags(entities: Iterable[Entity], length: int, scheme: str) -> list[str]:
    """`length` tags spelling `entities` (non-overlapping) in `scheme`."""
    tags = ["O"] * length
    ends: dict[int, str] = {}  # the type of the entity ending at each position
    for type_, first, last in sorted(entities, key=lambda entity: entity[1]):
        single = first == last
        if scheme == "IOB2":
            prefixes = ["B"] + ["I"] * (last - first)
        elif scheme == "IOB1":
            opening = "B" if ends.get(first - 1) == type_ else "I"
            prefixes = [opening] + ["I"] * (last - first)
        elif scheme in ("IOBES", "BILOU"):
            one, begin, inside, end = ("S", "B", "I", "E") if scheme == "IOBES" else ("U", "B", "I", "L")
            prefixes = [one] if single else [begin] + [inside] * (last - first - 1) + [end]
        elif scheme == "IO":
            prefixes = ["I"] * (last - first + 1)
        else:
            raise ValueError(f"unknown tag scheme {scheme!r}")
        for position, prefix in zip(range(first, last + 1), prefixes):
            tags[position] = f"{prefix}-{type_}"
        ends[last] = type_
    return tags


def ill_formed(tags: Sequence[str], scheme: str) -> list[int]:
    """Positions where a tag breaks its scheme's grammar (read leniently all the same):

    - IOB2: an `I-` that continues nothing (after `O`, at the start, after another type);
    - IOB1: none (its lenient reading is its definition, conlleval's);
    - IOBES/BILOU: an `I-`/`E-` (`L-`) that continues nothing, and a `B-`/`I-` that the next tag
      does not continue;
    - IO: none.

    >>> ill_formed(["O", "I-person", "I-person", "B-group", "I-person"], "IOB2")
    [1, 4]
    >>> ill_formed(["B-PER", "O", "E-LOC", "S-ORG"], "IOBES")
    [0, 2]
    """
    if scheme == "IOB2":
        return ill_formed_bio(tags)
    if scheme not in ("IOBES", "BILOU"):
        return []
    inside, end = ("I", "E") if scheme == "IOBES" else ("I", "L")
    positions = []
    parsed = [split_tag(tag) or ("O", "") for tag in tags] + [("O", "")]
    for position in range(len(tags)):
        prefix, type_ = parsed[position]
        if prefix in (inside, end):
            before = parsed[position - 1] if position else ("O", "")
            if not (before[0] in ("B", inside) and before[1] == type_):
                positions.append(position)
                continue
        if prefix in ("B", inside):
            after = parsed[position + 1]
            if not (after[0] in (inside, end) and after[1] == type_):
                positions.append(position)
    return positions


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


def to_bio(tags: Sequence[str], scheme: str) -> list[str]:
    """One tag sequence of `scheme` rewritten in BIO (IOB2), entity for entity. IOB2 passes
    through as it is, ill-formed `I-` tags included (`check_tags` counts them)."""
    if scheme == TRAINING_SCHEME:
        return list(tags)
    return write_tags(read_entities(tags, scheme), len(tags), TRAINING_SCHEME)


def from_bio(tags: Sequence[str], scheme: str) -> list[str]:
    """BIO tags (as lit_ner predicts them) written in `scheme`; IOB2 passes through as it is."""
    if scheme == TRAINING_SCHEME:
        return list(tags)
    return write_tags(get_entities(tags), len(tags), scheme)


def rewritten(before: Sequence[Sequence[str]], after: Sequence[Sequence[str]]) -> Counter:
    """How many tags a rewrite changed, by prefix: `{"I- -> B-": n, ...}` (a type the label map
    dropped shows as `-> O`)."""

    def prefix(tag: str) -> str:
        return "O" if tag == "O" else tag[:2]

    changes: Counter = Counter()
    for old_tags, new_tags in zip(before, after):
        for old, new in zip(old_tags, new_tags):
            if old != new:
                changes[f"{prefix(old)} -> {prefix(new)}"] += 1
    return changes


def bio_labels(types: Iterable[str]) -> list[str]:
    """The full BIO label set of entity types, in their order: `O`, then `B-` and `I-` of each."""
    return ["O"] + [f"{prefix}-{type_}" for type_ in dict.fromkeys(types) for prefix in "BI"]


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
