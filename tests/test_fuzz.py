"""Property tests: the readers never fail but with a `LitNerError`, valid files round-trip
through the writer, the aligner gives every word exactly one label position, and entity spans
are well-formed."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lit_ner.data.alignment import IGNORE_INDEX, tokenize_and_align
from lit_ner.errors import LitNerError
from lit_ner.formats import read_conll, read_jsonl, write_conll
from lit_ner.portable.windows import word_windows
from lit_ner.scoring import get_entities, get_entities_strict
from lit_ner.wnut17 import WNUT17_LABELS

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Tokens as tweets have them: any printable text, emoji, other scripts, zero-width and control
# characters; never a tab or line break (no CoNLL column can hold those) nor only whitespace. A
# first token starting with U+FEFF is left out: at the start of a file it is a byte-order mark.
token_text = st.text(
    st.characters(blacklist_characters="\t\n\r\ufeff", blacklist_categories=("Cs",)), min_size=1, max_size=12
).filter(lambda t: t.strip() and t != "-DOCSTART-")
tags = st.sampled_from(WNUT17_LABELS)
sentence = st.lists(st.tuples(token_text, tags), min_size=1, max_size=20)


@FUZZ
@given(data=st.binary(max_size=300))
def test_reading_random_bytes_gives_sentences_or_one_clear_error(tmp_path, data):
    for name, read in (("f.conll", read_conll), ("f.jsonl", read_jsonl)):
        path = tmp_path / name
        path.write_bytes(data)
        try:
            split = read(path)
        except LitNerError as error:
            assert str(error).startswith(str(path))
            assert "\n" not in str(error)
        else:
            assert split["tokens"] and all(len(t) == len(g) for t, g in zip(split["tokens"], split["tags"]))


@FUZZ
@given(sentences=st.lists(sentence, min_size=1, max_size=8))
def test_valid_files_round_trip_through_the_conll_writer(tmp_path, sentences):
    words = [[w for w, _ in s] for s in sentences]
    word_tags = [[t for _, t in s] for s in sentences]
    split = read_conll(write_conll(tmp_path / "round.conll", words, word_tags))
    assert split["tokens"] == words
    assert split["tags"] == word_tags


@FUZZ
@given(
    words=st.lists(
        st.sampled_from(["new", "York", "unbelievably", "@paulwalk", "😀", "Zürich", "\u200b", "東京", "x"])
        | token_text,
        min_size=1,
        max_size=60,
    ),
    max_length=st.integers(min_value=4, max_value=40),
    stride=st.integers(min_value=0, max_value=20),
)
def test_the_aligner_gives_every_word_exactly_one_label_position(tokenizer, words, max_length, stride):
    labels = [i % len(WNUT17_LABELS) for i in range(len(words))]
    out = tokenize_and_align({"tokens": [words], "tags": [labels]}, tokenizer, max_length, None, stride)
    assert all(len(ids) <= max_length for ids in out["input_ids"])
    assert all(
        len(a) == len(b) == len(c) for a, b, c in zip(out["input_ids"], out["labels"], out["word_index"])
    )
    # The windows' owned words are the sentence, in order, each once.
    assert [label for window in out["word_labels"] for label in window] == labels
    offsets = out["word_offset"]
    assert offsets[0] == 0 and all(
        o + len(w) == n for o, w, n in zip(offsets, out["word_labels"], offsets[1:])
    )
    # Each owned word with a subword has exactly one labelled position, carrying its label.
    for window_labels, starts, word_labels in zip(out["labels"], out["word_index"], out["word_labels"]):
        positions = [p for p, s in enumerate(starts) if s >= 0]
        assert [starts[p] for p in positions] == sorted({starts[p] for p in positions})
        assert [window_labels[p] for p in positions] == [word_labels[starts[p]] for p in positions]
        assert sum(label != IGNORE_INDEX for label in window_labels) == len(positions)
    assert sum(out["unlabelled_words"]) == len(words) - sum(s >= 0 for w in out["word_index"] for s in w)


@FUZZ
@given(
    lengths=st.lists(st.integers(min_value=0, max_value=9), min_size=1, max_size=80),
    budget=st.integers(min_value=1, max_value=30),
    stride=st.integers(min_value=0, max_value=15),
)
def test_windows_cover_every_word_once_within_the_budget(lengths, budget, stride):
    spans, position = [], 0
    for n in lengths:
        spans.append((position, position + n))
        position += n
    windows = word_windows(spans, budget, min(stride, budget // 2))
    assert [w for _, _, a, b in windows for w in range(a, b)] == list(range(len(lengths)))
    for first, last, own_first, own_last in windows:
        assert first <= own_first < own_last <= last
        if last - first > 1:  # a lone over-long word is cut instead
            assert spans[last - 1][1] - spans[first][0] <= budget


@FUZZ
@given(tag_sequence=st.lists(st.sampled_from([*WNUT17_LABELS, "I-person", "B-person"]), max_size=30))
def test_entity_spans_are_disjoint_in_bounds_and_typed(tag_sequence):
    for extract in (get_entities, get_entities_strict):
        entities = sorted(extract(tag_sequence), key=lambda e: e[1])
        for type_, start, end in entities:
            assert 0 <= start <= end < len(tag_sequence)
            assert all(tag != "O" and tag[2:] == type_ for tag in tag_sequence[start : end + 1])
        assert all(a[2] < b[1] for a, b in zip(entities, entities[1:]))
    # A well-formed sequence is exactly its entities: rebuilding it from them gives it back.
    entities = get_entities_strict(tag_sequence)
    rebuilt = ["O"] * len(tag_sequence)
    for type_, start, end in entities:
        rebuilt[start : end + 1] = [f"B-{type_}"] + [f"I-{type_}"] * (end - start)
    if all(
        not t.startswith("I-") or i in {p for _, s, e in entities for p in range(s + 1, e + 1)}
        for i, t in enumerate(tag_sequence)
    ):
        assert rebuilt == tag_sequence
