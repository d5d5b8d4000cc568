"""How raw text becomes words (`lit_ner.portable.words`): as NER corpora are tokenized, checked
against WNUT-17's own tokens, and stable on its own output."""

import re

import pytest

from lit_ner.formats import read_conll
from lit_ner.portable.spans import get_entities
from lit_ner.portable.words import split_words, text_words, typed_text

RAW = {
    "Pretty bad storm in New York last evening, says @JohnSmith of Apple.": [
        "Pretty", "bad", "storm", "in", "New", "York", "last", "evening", ",", "says", "@", "JohnSmith", "of",
        "Apple", ".",
    ],
    "Google! (via @user) ART). don't stop": [
        "Google", "!", "(", "via", "@", "user", ")", "ART", ").", "don't", "stop",
    ],
    "Apple's iPhone's #1 at $5, 1,000 fans & 9:30pm...": [
        "Apple", "'s", "iPhone", "'s", "#", "1", "at", "$5", ",", "1,000", "fans", "&", "9:30pm", "...",
    ],
    "see https://en.wikipedia.org/wiki/Muse_(band)). or www.x.org/a, mail a.b@x.co.uk!": [
        "see", "https://en.wikipedia.org/wiki/Muse_(band)", ").", "or", "www.x.org/a", ",", "mail",
        "a.b@x.co.uk", "!",
    ],
    "Dr. J. Smith of the U.S. :) :D xD <3 -_- &amp; co-founder and/or e.g.": [
        "Dr.", "J.", "Smith", "of", "the", "U.S.", ":)", ":D", "xD", "<3", "-_-", "&amp;", "co-founder",
        "and/or", "e.g.",
    ],
    "東京に行きます。 ภาษาไทย ok": [
        "東", "京", "に", "行", "き", "ま", "す", "。", "ภ", "า", "ษ", "า", "ไ", "ท", "ย", "ok",
    ],
    "zero\u200bwidth \ufeffBOM": ["zero", "width", "BOM"],
}  # fmt: skip


@pytest.mark.parametrize("text", RAW)
def test_raw_text_splits_punctuation_off_words_and_keeps_urls_numbers_and_emoticons_whole(text):
    assert split_words(text) == RAW[text]
    offsets = text_words(text)
    assert [text[start:end] for start, end in offsets] == RAW[text]  # offsets into the text itself
    assert split_words(" ".join(RAW[text])) == RAW[text]  # stable on its own output


def test_tokenized_text_keeps_its_whitespace_separated_words():
    assert split_words("Hi  New York! (via", "whitespace") == ["Hi", "New", "York!", "(via"]
    with pytest.raises(ValueError, match="split must be one of"):
        text_words("a", "spaces")


def wnut17_sentences(wnut17_dir):
    for name in ("wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated"):
        data = read_conll(wnut17_dir / name)
        yield from zip(data["tokens"], data["tags"])


def test_wnut17s_own_tokens_are_words_the_splitter_keeps(wnut17_dir):
    # WNUT-17's tokens are the reference for what a word is: nearly all stay whole, and the few the
    # splitter cuts are punctuation stuck to a word ("NFL)", "*Boston*", "Mary's."). Its tweets
    # keep "@user" and "#tag" whole where its test split writes "@ user" and tags the name: the
    # splitter follows the test split (the name is the entity).
    tokens = [token for words, _ in wnut17_sentences(wnut17_dir) for token in words]
    sigils = [
        token for token in tokens if len(token) > 1 and token[0] in "@#" and re.fullmatch(r"\w+", token[1:])
    ]
    assert all(split_words(token) == [token[0], token[1:]] for token in sigils)
    cut = [token for token in tokens if split_words(token) != [token] and token not in sigils]
    assert len(tokens) == 101_857 and len(sigils) > 2_000
    assert len(cut) / len(tokens) < 0.005
    for token in cut[:50]:
        assert len("".join(split_words(token))) == len(token.replace("\ufeff", ""))  # nothing lost
    # Splitting is stable: a corpus's sentences split, joined and split again give the same words.
    for words, _ in wnut17_sentences(wnut17_dir):
        once = split_words(" ".join(words))
        assert split_words(" ".join(once)) == once


def test_wnut17_typed_back_as_people_type_splits_into_its_tokens_and_entities(wnut17_dir):
    # "York !" typed as "York!", "( via" as "(via": the splitter finds the corpus's tokens again
    # (all but the tweets' whole "@user"s) and every entity's characters.
    found = {}
    for name in ("wnut17train.conll", "emerging.dev.conll"):
        data = read_conll(wnut17_dir / name)
        tokens = same = entities = whole = 0
        for words, tags in zip(data["tokens"], data["tags"]):
            text, starts = typed_text(words)
            spans = {(start, start + len(word)) for start, word in zip(starts, words)}
            split = text_words(text)
            tokens, same = tokens + len(spans), same + len(spans & set(split))
            bounds = {start for start, _ in split}, {end for _, end in split}
            for _, first, last in get_entities(tags):
                entities += 1
                whole += starts[first] in bounds[0] and starts[last] + len(words[last]) in bounds[1]
        found[name] = (same / tokens, whole / entities)
    assert found["wnut17train.conll"][0] > 0.93 and found["emerging.dev.conll"][0] > 0.88
    assert min(entity for _, entity in found.values()) > 0.99
