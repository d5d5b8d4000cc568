"""An export written before a change tags as it did: exports live on machines lit_ner never sees
again, so the files they ship and the config keys they carry are a contract with the past."""

import json
import subprocess
import sys

import pytest

from .conftest import FIXTURES

OLD_EXPORT = FIXTURES / "export_e3b6c96"
EXPECTED = json.loads((FIXTURES / "export_e3b6c96.expected.json").read_text(encoding="utf-8"))
# e3b6c96's words were a text's whitespace-separated pieces; today's default splits punctuation
# from raw text's words (`portable.words`), so the old words are asked for.
TAGGERS = {
    "torch": {"precision": "32", "word_split": "whitespace"},
    "torch_argmax": {"precision": "32", "decoding": "argmax", "word_split": "whitespace"},
    "torch_valid_bio": {"precision": "32", "decoding": "valid_bio", "word_split": "whitespace"},
    "onnx": {"backend": "onnx", "word_split": "whitespace"},
}


def assert_same_entities(got, expected, same_scores=True):
    """The same entities in every text; the same scores where `same_scores` (for every text, or
    a list of one flag per text)."""
    assert len(got) == len(expected)
    flags = same_scores if isinstance(same_scores, list) else [same_scores] * len(got)
    for text_got, text_expected, same in zip(got, expected, flags):
        assert [{k: v for k, v in e.items() if k != "score"} for e in text_got] == [
            {k: v for k, v in e.items() if k != "score"} for e in text_expected
        ]
        scores = [e["score"] for e in text_expected]
        if same:
            assert [e["score"] for e in text_got] == pytest.approx(scores, abs=1e-4)
        else:
            assert all(0 < e["score"] <= 1 for text in got for e in text)


@pytest.mark.parametrize("name", sorted(TAGGERS))
def test_the_tagger_tags_an_export_of_e3b6c96_as_e3b6c96_did(name):
    from lit_ner import Tagger

    tagger = Tagger.from_pretrained(str(OLD_EXPORT), **TAGGERS[name])
    got = tagger.tag(EXPECTED["texts"], "first" if name == "torch_argmax" else "simple")
    # The same entities. Scores of word-level decodings moved: a CRF's entity scores are now its
    # probabilities under the CRF (they were the mean softmax of its emissions, which a CRF does
    # not calibrate), and a long text's words are now read from the whole-word windows training
    # cuts (they were read from the tokenizer's overflow windows): a text of one window scores
    # as it did.
    same_scores = [
        tagger.decoding == "argmax" or (tagger.decoding == "valid_bio" and len(tagger.windows(text)) == 1)
        for text in EXPECTED["texts"]
    ]
    assert any(same_scores) or tagger.decoding == "crf"
    assert_same_entities(got, EXPECTED[name], same_scores=same_scores)


@pytest.mark.slow
def test_its_own_pipeline_code_tags_as_it_did_where_lit_ner_cannot_be_imported():
    code = (
        "import json, sys\n"
        "sys.modules['lit_ner'] = None  # `import lit_ner` fails from here on\n"
        "from transformers import pipeline\n"
        f"pipe = pipeline('token-classification', model={str(OLD_EXPORT)!r}, trust_remote_code=True,"
        " stride=8)\n"
        f"texts = json.loads({json.dumps(json.dumps(EXPECTED['texts']))})\n"
        "out = [[{**e, 'score': float(e['score'])} for e in pipe(t)] if t.strip() else [] for t in texts]\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same_entities(json.loads(done.stdout.strip().splitlines()[-1]), EXPECTED["pipeline"])
