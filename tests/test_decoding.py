"""Decoding: Viterbi returns the best (valid) sequence, found here by trying every sequence; the
CRF's likelihood is a probability over all sequences, checked the same way."""

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lit_ner.model.crf import CRF, bio_constraints, viterbi_decode
from lit_ner.portable.word_decoding import IMPOSSIBLE
from lit_ner.wnut17 import WNUT17_LABELS

LABELS = ["O", "B-person", "I-person", "B-location", "I-location"]


def is_valid_bio(tags):
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return False
        previous = tag
    return True


def sequence_score(scores, tags, transitions, start, end):
    total = start[tags[0]] + end[tags[-1]] + sum(scores[t, y] for t, y in enumerate(tags))
    return total + sum(transitions[a, b] for a, b in zip(tags, tags[1:]))


def test_bio_constraints_forbid_exactly_the_invalid_transitions():
    start, transitions = bio_constraints(WNUT17_LABELS)
    for j, label in enumerate(WNUT17_LABELS):
        assert (start[j] == IMPOSSIBLE) == label.startswith("I-")
        for i, previous in enumerate(WNUT17_LABELS):
            # Valid after a sentence that ends with `previous` (a lone I-X opens as B-X would).
            context = ["B-" + previous[2:], previous] if previous.startswith("I-") else [previous]
            assert (transitions[i, j] == IMPOSSIBLE) == (not is_valid_bio([*context, label])), (
                previous,
                label,
            )


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(0, 5), min_size=1, max_size=4), seed=st.integers(0, 10_000))
def test_valid_bio_viterbi_returns_the_most_probable_valid_sequence(lengths, seed):
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    log_probs = torch.randn(len(lengths), width, len(LABELS), generator=generator).log_softmax(-1)
    mask = torch.arange(width) < torch.tensor(lengths).unsqueeze(1)
    start, transitions = bio_constraints(LABELS)
    decoded = viterbi_decode(log_probs, mask, transitions, start)
    for row, length in enumerate(lengths):
        if length == 0:
            continue
        best = max(
            (
                tags
                for tags in itertools.product(range(len(LABELS)), repeat=length)
                if is_valid_bio([LABELS[i] for i in tags])
            ),
            key=lambda tags: sum(log_probs[row, t, y] for t, y in enumerate(tags)),
        )
        assert decoded[row, :length].tolist() == list(best)


def test_valid_bio_viterbi_keeps_a_valid_argmax_and_repairs_a_stray_inside_tag():
    def log_probs(rows):
        return torch.tensor(rows).log()

    start, transitions = bio_constraints(LABELS)
    mask = torch.ones(1, 3, dtype=torch.bool)
    # Already valid: nothing changes.
    valid = log_probs(
        [[[0.1, 0.7, 0.1, 0.05, 0.05], [0.1, 0.1, 0.7, 0.05, 0.05], [0.8, 0.05, 0.05, 0.05, 0.05]]]
    )
    assert viterbi_decode(valid, mask, transitions, start)[0].tolist() == [1, 2, 0]
    # argmax O, I-person, O: the stray I-person becomes the best valid choice, here B-person.
    stray = log_probs(
        [[[0.9, 0.02, 0.04, 0.02, 0.02], [0.3, 0.25, 0.4, 0.03, 0.02], [0.9, 0.02, 0.04, 0.02, 0.02]]]
    )
    assert stray[0].argmax(-1).tolist() == [0, 2, 0]
    assert viterbi_decode(stray, mask, transitions, start)[0].tolist() == [0, 0, 0]
    stray_b = log_probs(
        [[[0.9, 0.02, 0.04, 0.02, 0.02], [0.25, 0.3, 0.4, 0.03, 0.02], [0.9, 0.02, 0.04, 0.02, 0.02]]]
    )
    assert viterbi_decode(stray_b, mask, transitions, start)[0].tolist() == [0, 1, 0]


@settings(max_examples=30, deadline=None)
@given(lengths=st.lists(st.integers(0, 4), min_size=1, max_size=3), seed=st.integers(0, 10_000))
def test_the_crf_likelihood_is_normalised_over_every_valid_sequence_and_decodes_the_best(lengths, seed):
    torch.manual_seed(seed)
    crf = CRF(len(LABELS), LABELS)
    with torch.no_grad():
        for parameter in crf.parameters():
            parameter.normal_()
    width = max(lengths)
    emissions = torch.randn(len(lengths), width, len(LABELS))
    mask = torch.arange(width) < torch.tensor(lengths).unsqueeze(1)
    start, transitions, end = (tensor.detach() for tensor in crf.scores())
    decoded = crf.decode(emissions, mask)
    for row, length in enumerate(lengths):
        if length == 0:
            continue
        sequences = [
            tags
            for tags in itertools.product(range(len(LABELS)), repeat=length)
            if is_valid_bio([LABELS[i] for i in tags])
        ]
        scores = torch.tensor(
            [sequence_score(emissions[row], tags, transitions, start, end) for tags in sequences]
        )
        # p(tags) summed over all valid sequences is 1, so -log p(tags) is log Z - score(tags).
        tags = sequences[seed % len(sequences)]
        one = emissions[row : row + 1, :length]
        nll = crf.neg_log_likelihood(one, torch.tensor([tags]), torch.ones(1, length, dtype=torch.bool))
        assert float(nll.detach()) * length == pytest.approx(
            float(torch.logsumexp(scores, 0) - scores[sequences.index(tags)]), rel=1e-4, abs=1e-4
        )
        assert decoded[row, :length].tolist() == list(sequences[int(scores.argmax())])


def test_the_crf_learns_a_transition_the_emissions_cannot_show():
    # Emissions say nothing about which type follows B-person; only transitions can learn that
    # the next word is always I-person.
    torch.manual_seed(0)
    crf = CRF(len(LABELS), LABELS)
    optimizer = torch.optim.Adam(crf.parameters(), lr=0.1)
    tags = torch.tensor([[1, 2, 0, 3, 4]] * 8)
    emissions = torch.zeros(8, 5, len(LABELS))
    emissions[:, 0, 1] = emissions[:, 3, 3] = 2.0  # the B- words are visible, the I- words not
    mask = torch.ones(8, 5, dtype=torch.bool)
    first = crf.neg_log_likelihood(emissions, tags, mask).item()
    for _ in range(100):
        optimizer.zero_grad()
        loss = crf.neg_log_likelihood(emissions, tags, mask)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.2 * first
    assert crf.decode(emissions, mask)[0].tolist() == [1, 2, 0, 3, 4]


def write_corpus(path, sentences=40, seed=0):
    """Short sentences of a small vocabulary with random valid BIO tags."""
    import random

    rng = random.Random(seed)
    vocabulary = [
        "new",
        "york",
        "apple",
        "paris",
        "tweet",
        "love",
        "the",
        "game",
        "@user",
        "#tag",
        "rocks",
        "today",
    ]
    types = ["person", "location", "corporation", "product", "group", "creative-work"]
    lines = []
    for _ in range(sentences):
        previous = "O"
        for _ in range(rng.randint(3, 9)):
            roll = rng.random()
            if roll < 0.6:
                tag = "O"
            elif roll < 0.8 or previous == "O":
                tag = "B-" + rng.choice(types)
            else:
                tag = "I-" + previous[2:]
            lines.append(f"{rng.choice(vocabulary)}\t{tag}")
            previous = tag
        lines.append("")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "model_args", [["--model.decoding=valid_bio"], ["--model.head=crf"]], ids=["valid_bio", "crf"]
)
@pytest.mark.slow
def test_a_models_decoding_is_the_same_in_test_predict_and_tag(tiny_model_dir, tmp_path, model_args):
    import json

    from lit_ner.export.hf import EXPORT_DIRNAME
    from lit_ner.formats import read_conll
    from lit_ner.tag_schemes import ill_formed_bio
    from lit_ner.tagging.tagger import Tagger
    from lit_ner.training.cli import cli_main
    from lit_ner.wnut17 import WNUT17_LABELS

    corpus = str(write_corpus(tmp_path / "corpus.conll"))
    common = [
        "--model.model_name_or_path", tiny_model_dir, f"--data.train_file={corpus}",
        f"--data.validation_file={corpus}", f"--data.test_file={corpus}", f"--data.cache_dir={tmp_path}",
        "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_progress_bar=false", f"--data.label_names={json.dumps(WNUT17_LABELS)}",
        "--data.batch_size=4",
    ]  # fmt: skip
    # Two small steps: the tiny model stays near random, so argmax would break BIO all over.
    cli_main(["fit", *common, *model_args, "--trainer.max_steps=2", "--model.learning_rate=1e-5"])
    checkpoint = str(tmp_path / "checkpoints" / "last.ckpt")
    tested = read_conll(tmp_path / "predictions" / "test.conll")["tags"]
    assert not any(ill_formed_bio(tags) for tags in tested)  # valid BIO, every sentence

    # The export says how to decode it; the CRF's scores go with it.
    config = json.loads((tmp_path / EXPORT_DIRNAME / "config.json").read_text())
    head_is_crf = "--model.head=crf" in model_args
    assert config["lit_ner_decoding"] == ("crf" if head_is_crf else "valid_bio")
    assert ("crf_transitions" in config) == head_is_crf
    if head_is_crf:
        assert len(config["crf_transitions"]) == 13 and any(any(row) for row in config["crf_transitions"])

    # predict (from the checkpoint: its hyperparameters carry the decoding) writes the same tags,
    # and each sentence's entities in tag's form.
    cli_main(["predict", *common, "--data.predict_split=test", f"--ckpt_path={checkpoint}"])
    assert read_conll(tmp_path / "predictions" / "test.conll")["tags"] == tested
    records = [
        json.loads(line) for line in (tmp_path / "predictions" / "test.jsonl").read_text().splitlines()
    ]
    assert sum(len(record["entities"]) for record in records) > 10

    # lit_ner tag, from the export and from the checkpoint, finds those entities (and scores) in
    # the text, on the same words: predict's texts are the words joined by spaces.
    for source in (tmp_path / EXPORT_DIRNAME, checkpoint):
        tagger = Tagger.from_pretrained(source, precision="32", word_split="whitespace")
        assert tagger.decoding == config["lit_ner_decoding"]
        for record, entities in zip(records, tagger([record["text"] for record in records])):
            assert [(e["entity_group"], e["word"], e["start"], e["end"]) for e in entities] == [
                (e["entity_group"], e["word"], e["start"], e["end"]) for e in record["entities"]
            ]
            assert [e["score"] for e in entities] == pytest.approx(
                [e["score"] for e in record["entities"]], abs=1e-4
            )

    if not head_is_crf:
        # The same checkpoint decoded by argmax breaks BIO somewhere: the constraint did work.
        cli_main(["test", *common, "--model.decoding=argmax", f"--ckpt_path={checkpoint}"])
        argmax = read_conll(tmp_path / "predictions" / "test.conll")["tags"]
        assert any(ill_formed_bio(tags) for tags in argmax)
