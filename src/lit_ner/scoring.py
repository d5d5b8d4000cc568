"""Entity-level precision, recall and F1 as seqeval computes them, plus token accuracy and
WNUT-17's surface-form measures: the pure functional core of lit_ner's scoring.

`get_entities`, `ner_scores`, `classification_report`, `surface_scores` and `entity_confusion`
reproduce seqeval's default and strict modes exactly, ill-formed BIO included (an I- after O opens
an entity, a type switch inside a span splits it), and the WNUT-17 shared task's scorer. Plain
Python on tag strings, no torch: `lit_ner evaluate` scores files with this module alone, and
`lit_ner.model.metrics.NERMetrics` wraps it for training.

seqeval itself is what the tests check this against. It is not called at run time: one pass here
gives the scores, the per-type report and the surface forms together, where seqeval extracts the
entities again in each of its functions.
"""

from __future__ import annotations

from collections.abc import Sequence

from lit_ner.portable.spans import Entity, get_entities


def get_entities_strict(tags: Sequence[str]) -> list[Entity]:
    """Entities by seqeval's strict IOB2 rules: a B-X and the I-X that follow it.

    An I- that does not continue a B- of its type starts nothing, unlike the default mode.

    >>> get_entities_strict(["B-person", "I-person", "O", "I-location", "B-group", "I-product"])
    [('person', 0, 1), ('group', 4, 4)]
    """

    def split(tag: str) -> tuple[str, str]:
        if tag[0] not in "BIO":
            raise ValueError(f"strict IOB2 mode: {tag!r} is not an IOB2 tag")
        return tag[0], tag[1:].strip("-") or "_"  # seqeval's strict parser strips, not splits

    entities = []
    parsed = [split(tag) for tag in tags]
    i = 0
    while i < len(parsed):
        prefix, type_ = parsed[i]
        if prefix != "B":
            i += 1
            continue
        end = i + 1
        while end < len(parsed) and parsed[end] == ("I", type_):
            end += 1
        entities.append((type_, i, end - 1))
        i = end
    return entities


MODES = ("default", "strict")


def _corpus_entities(sentences: Sequence[Sequence[str]], mode: str = "default") -> set[tuple]:
    """Every entity of a corpus as `(type, ...position)`, in the given seqeval mode."""
    if mode == "strict":
        return {
            (type_, n, start, end)
            for n, s in enumerate(sentences)
            for type_, start, end in get_entities_strict(s)
        }
    if mode != "default":
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    # seqeval's default mode joins the sentences with an 'O' between them; doing the same keeps
    # even its handling of nonsense tags identical.
    flat = [tag for sentence in sentences for tag in [*sentence, "O"]]
    return set(get_entities(flat))


def sentence_entities(sentences: Sequence[Sequence[str]], mode: str = "default") -> list[set[Entity]]:
    """The entities of each sentence on its own, in the given seqeval mode."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    extract = get_entities_strict if mode == "strict" else get_entities
    return [set(extract(sentence)) for sentence in sentences]


def _prf(tp: int, n_pred: int, n_true: int) -> dict[str, float]:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def classification_report(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], mode: str = "default"
) -> dict[str, dict[str, float]]:
    """Per-type precision, recall, F1 and support with micro, macro and weighted averages.

    Equal to `seqeval.metrics.classification_report(..., output_dict=True, zero_division=0)`
    (with `mode="strict", scheme=IOB2` for `mode="strict"`), with `f1` for seqeval's
    `f1-score`; averages of a report without any entity are 0 where seqeval gives NaN.

    Args:
        y_true: gold tag sequences, one per sentence.
        y_pred: predicted tag sequences, the same lengths as `y_true`.
        mode: `"default"` (conlleval-compatible, lenient) or `"strict"` (IOB2).

    Returns:
        `{type: {"precision", "recall", "f1", "support"}, ..., "micro avg": ..., "macro avg":
        ..., "weighted avg": ...}`, types sorted by name.
    """
    return scores_and_report(y_true, y_pred, mode)[1]


def scores_and_report(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], mode: str = "default"
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """`ner_scores` and `classification_report` from one pass over the entities."""
    if len(y_true) != len(y_pred) or any(len(t) != len(p) for t, p in zip(y_true, y_pred)):
        raise ValueError("y_true and y_pred must have the same sentences and lengths")
    true_entities, pred_entities = _corpus_entities(y_true, mode), _corpus_entities(y_pred, mode)
    types = sorted({entity[0] for entity in true_entities | pred_entities})
    report: dict[str, dict[str, float]] = {}
    for type_ in types:
        true = {entity for entity in true_entities if entity[0] == type_}
        pred = {entity for entity in pred_entities if entity[0] == type_}
        report[type_] = {**_prf(len(true & pred), len(pred), len(true)), "support": len(true)}
    support = len(true_entities)
    micro = _prf(len(true_entities & pred_entities), len(pred_entities), support)
    report["micro avg"] = {**micro, "support": support}
    per_type = [report[type_] for type_ in types]
    for average, weights in (("macro", [1] * len(types)), ("weighted", [row["support"] for row in per_type])):
        total = sum(weights)
        report[f"{average} avg"] = {
            name: sum(w * row[name] for w, row in zip(weights, per_type)) / total if total else 0.0
            for name in ("precision", "recall", "f1")
        }
        report[f"{average} avg"]["support"] = support
    n_words = sum(len(sentence) for sentence in y_true)
    n_correct = sum(t == p for true, pred in zip(y_true, y_pred) for t, p in zip(true, pred))
    scores = {**micro, "accuracy": n_correct / n_words if n_words else 0.0}
    return scores, report


def format_report(report: dict[str, dict[str, float]], digits: int = 4) -> str:
    """A `classification_report` as seqeval's text table."""
    width = max([len(name) for name in report] + [len("weighted avg")])
    header = f"{'':>{width}} {'precision':>10} {'recall':>10} {'f1':>10} {'support':>10}"
    lines = [header, ""]
    for name, row in report.items():
        if name == "micro avg":
            lines.append("")
        lines.append(
            f"{name:>{width}} {row['precision']:>10.{digits}f} {row['recall']:>10.{digits}f}"
            f" {row['f1']:>10.{digits}f} {row['support']:>10}"
        )
    return "\n".join(lines)


def surface_scores(
    words: Sequence[Sequence[str]],
    y_true: Sequence[Sequence[str]],
    y_pred: Sequence[Sequence[str]],
    mode: str = "default",
) -> dict[str, dict]:
    """WNUT-17's surface-form precision, recall and F1, overall and per entity type.

    The shared task's scorer (`wnuteval.py`) compares the *sets* of unique `(words, type)` forms:
    the gold forms, the predicted forms, and the forms of the predictions that match a gold
    entity exactly (same sentence, span and type). A form found once counts as found however
    often it recurs, so a system is rewarded for recognising many different entities rather than
    one frequent one. Words are compared case-sensitively, as the scorer does.

    Args:
        words: the words of each sentence.
        y_true: gold tag sequences, one per sentence.
        y_pred: predicted tag sequences, the same lengths.
        mode: the entity rules (`"default"` is what the shared task used).

    Returns:
        `{"overall": {"precision", "recall", "f1", "support"}, "per_type": {type: {...}}}`, the
        support being the number of unique gold forms; types are those of gold or predictions.

    >>> words = [["Paris", "and", "Paris"], ["Paris"]]
    >>> gold = [["B-location", "O", "B-location"], ["B-person"]]
    >>> surface_scores(words, gold, [["B-location", "O", "O"], ["O"]])["overall"]
    {'precision': 1.0, 'recall': 0.5, 'f1': 0.6666666666666666, 'support': 2}
    """
    true_by_sentence, pred_by_sentence = sentence_entities(y_true, mode), sentence_entities(y_pred, mode)

    def forms(by_sentence: Sequence[set[Entity]], type_: str | None = None) -> set[tuple]:
        return {
            (entity_type, tuple(words[n][start : end + 1]))
            for n, entities in enumerate(by_sentence)
            for entity_type, start, end in entities
            if type_ is None or entity_type == type_
        }

    correct_by_sentence = [t & p for t, p in zip(true_by_sentence, pred_by_sentence)]
    types = sorted({e[0] for entities in (*true_by_sentence, *pred_by_sentence) for e in entities})
    result: dict[str, dict] = {"per_type": {}}
    for type_ in (None, *types):
        true, pred = forms(true_by_sentence, type_), forms(pred_by_sentence, type_)
        row = {**_prf(len(forms(correct_by_sentence, type_)), len(pred), len(true)), "support": len(true)}
        if type_ is None:
            result["overall"] = row
        else:
            result["per_type"][type_] = row
    return result


MISSED, SPURIOUS = "missed", "spurious"


def entity_confusion(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], mode: str = "default"
) -> tuple[list[str], list[list[int]]]:
    """A confusion matrix over entity types, with a "missed" column and a "spurious" row.

    A gold entity is paired with the predicted entity of exactly its span: the cell (gold type,
    predicted type) counts it, the diagonal being the true positives of exact-match F1. A gold
    entity with no predicted entity of its span is "missed"; a predicted entity with no gold
    entity of its span is "spurious". Rows therefore sum to each type's gold support.

    Returns:
        `(types, matrix)`: the sorted entity types, and a `(len(types) + 1) x (len(types) + 1)`
        matrix whose rows are the gold types then "spurious" and whose columns are the
        predicted types then "missed".

    >>> types, matrix = entity_confusion([["B-person", "O", "B-location"]], [["B-group", "B-product", "O"]])
    >>> types
    ['group', 'location', 'person', 'product']
    >>> matrix[2], matrix[1], matrix[4]  # person taken for a group, location missed, product spurious
    ([1, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0])
    """
    true_by_sentence, pred_by_sentence = sentence_entities(y_true, mode), sentence_entities(y_pred, mode)
    types = sorted({e[0] for entities in (*true_by_sentence, *pred_by_sentence) for e in entities})
    index = {type_: i for i, type_ in enumerate(types)}
    n = len(types)
    matrix = [[0] * (n + 1) for _ in range(n + 1)]
    for true, pred in zip(true_by_sentence, pred_by_sentence):
        pred_types = {(start, end): type_ for type_, start, end in pred}
        true_spans = {(start, end) for _, start, end in true}
        for type_, start, end in true:
            predicted = pred_types.get((start, end))
            matrix[index[type_]][n if predicted is None else index[predicted]] += 1
        for type_, start, end in pred:
            if (start, end) not in true_spans:
                matrix[n][index[type_]] += 1
    return types, matrix


def ner_scores(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], mode: str = "default"
) -> dict[str, float]:
    """Micro entity precision, recall, F1 (seqeval, default mode unless told) and token accuracy.

    Args:
        y_true: gold tag sequences, one per sentence.
        y_pred: predicted tag sequences, the same lengths as `y_true`.
        mode: `"default"` or `"strict"` (IOB2), as in `classification_report`.

    Returns:
        `{"precision", "recall", "f1", "accuracy"}`; 0.0 where a ratio has a zero denominator
        (seqeval's `zero_division` default, without its warning).

    >>> ner_scores([["B-person", "I-person", "O"]], [["B-person", "O", "O"]])
    {'precision': 0.0, 'recall': 0.0, 'f1': 0.0, 'accuracy': 0.6666666666666666}
    """
    return scores_and_report(y_true, y_pred, mode)[0]


def join_windows(
    sentence_ids: Sequence[int], word_offsets: Sequence[int], *sequences: Sequence[list]
) -> tuple[list[int], ...]:
    """Puts sentences back together from the pieces they were scored in.

    A long sentence is scored in windows, each piece holding the words from its `word_offset` on;
    a distributed sampler may also repeat a piece. Keeps the first copy of each `(sentence_id,
    word_offset)` and concatenates each sentence's pieces in offset order, sentences in id
    order; pieces with an unknown id (-1) are sentences of their own, kept after the others.

    Returns:
        The sentence ids, then each of `sequences` joined the same way.

    >>> join_windows([3, 1, 3, 1], [2, 0, 0, 0], [["c"], ["x"], ["a", "b"], ["x"]])
    ([1, 3], [['x'], ['a', 'b', 'c']])
    """
    pieces: dict[int, dict[int, int]] = {}
    unknown = []
    for position, (sentence_id, offset) in enumerate(zip(sentence_ids, word_offsets)):
        if sentence_id < 0:
            unknown.append(position)
        else:
            pieces.setdefault(sentence_id, {}).setdefault(offset, position)
    ids = sorted(pieces) + [-1] * len(unknown)
    order = [[pieces[i][offset] for offset in sorted(pieces[i])] for i in sorted(pieces)]
    order += [[position] for position in unknown]
    joined = [
        [[item for p in positions for item in sequence[p]] for positions in order] for sequence in sequences
    ]
    return (ids, *joined)
