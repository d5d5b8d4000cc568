"""Knowledge distillation (`--model.teacher EXPORT`): a finished model's word-level label
distributions, read as its tagger reads each word, whatever its tokenizer, are learnt beside the
gold labels; the CRF student matches them with its own marginals."""

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lit_ner.errors import LitNerError
from lit_ner.model.crf import CRF
from lit_ner.model.teacher import Teacher
from lit_ner.portable.word_decoding import best_context_scores, crf_scores, viterbi_constraints
from lit_ner.portable.word_shapes import add_shape_scores
from lit_ner.portable.words import text_words
from lit_ner.tagging.tagger import Tagger
from lit_ner.training.cli import cli_main
from lit_ner.training.summary import finished_export
from lit_ner.wnut17 import WNUT17_LABELS

from .conftest import REPO, word_level_export
from .test_word_features import wnut17_slice
from .tokenizer_families import FAMILIES, save_family_model, training_text

LABELS = ["O", "B-person", "I-person", "B-location", "I-location"]


def enumerated_marginals(scores, start, transitions, end, temperature):
    """Each word's label probabilities by trying every sequence."""
    n, k = scores.shape
    marginals = np.zeros((n, k))
    for tags in itertools.product(range(k), repeat=n):
        total = start[tags[0]] + end[tags[-1]] + sum(scores[t, y] for t, y in enumerate(tags))
        total += sum(transitions[a, b] for a, b in zip(tags, tags[1:]))
        weight = np.exp(total / temperature)
        for t, y in enumerate(tags):
            marginals[t, y] += weight
    return marginals / marginals[0].sum()


@settings(max_examples=30, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 4), min_size=1, max_size=3),
    edges=st.lists(st.booleans(), min_size=6, max_size=6),
    temperature=st.sampled_from([0.5, 1.0, 2.0]),
    seed=st.integers(0, 10_000),
)
def test_crf_marginals_are_each_labels_probability_over_every_sequence(lengths, edges, temperature, seed):
    generator = torch.Generator().manual_seed(seed)
    crf = CRF(len(LABELS), LABELS)
    with torch.no_grad():
        for parameter in crf.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    width = max(max(lengths), 1)
    emissions = torch.randn(len(lengths), width, len(LABELS), generator=generator)
    mask = torch.arange(width) < torch.tensor(lengths).unsqueeze(1)
    opens, closes = torch.tensor(edges[: len(lengths)]), torch.tensor(edges[3 : 3 + len(lengths)])
    marginals = crf.log_marginals(emissions, mask, opens, closes, temperature).exp().detach()
    start, transitions, end = (scores.detach().numpy() for scores in crf.scores())
    for row, length in enumerate(lengths):
        if length == 0:
            continue
        # A window that does not open (close) its sentence has no start (end) scores.
        row_start = start if opens[row] else np.zeros_like(start)
        row_end = end if closes[row] else np.zeros_like(end)
        expected = enumerated_marginals(
            emissions[row, :length].numpy(), row_start, transitions, row_end, temperature
        )
        np.testing.assert_allclose(marginals[row, :length].numpy(), expected, atol=1e-5)


def tagger_word_scores(export, text, decoding):
    """A text's word scores as the Tagger reads them (the windows `tag` decodes, their words'
    shape scores added)."""
    tagger = Tagger.from_pretrained(export, precision="32", word_split="whitespace", stride=8)
    windows = tagger.windows(text)
    tagger._forward(windows, lambda batch: None)
    if tagger.shape_scores is not None:
        for window, logits in zip(
            windows, add_shape_scores(text, windows, tagger.shape_scores, "whitespace")
        ):
            window["logits"] = logits
    return best_context_scores(text_words(text, "whitespace"), windows, tagger.label_names, decoding)


@pytest.fixture(scope="module")
def shapes_export_dir(tmp_path_factory, tiny_model_dir):
    """A tiny random CRF model with word-shape features (large random shape scores), exported."""
    from lit_ner.export.command import export_checkpoint

    from .test_ensemble import member_checkpoint

    directory = tmp_path_factory.mktemp("shapes")
    return str(export_checkpoint(member_checkpoint(directory, tiny_model_dir, 7), directory / "export"))


def expected_distribution(export, scores, decoding, temperature):
    """Word distributions from word scores as the teacher decodes them: the marginals of its
    chain (a CRF's scores within valid BIO, or valid BIO alone over log-probabilities), by the
    torch CRF (an implementation apart from the teacher's numpy one, checked by enumeration above)."""
    scores = torch.from_numpy(scores).unsqueeze(0)
    config = json.loads((Path(export) / "config.json").read_text())
    start, transitions, end = viterbi_constraints(WNUT17_LABELS, decoding, crf_scores(config))
    end = np.zeros_like(start) if end is None else end
    # fp64: over 640 words, fp32's forward scores lose the fourth digit of a marginal.
    crf = CRF(len(WNUT17_LABELS)).double()  # no constraints of its own: they are in the scores above
    scores = scores.double()
    with torch.no_grad():
        for name, value in (("start", start), ("transitions", transitions), ("end", end)):
            getattr(crf, name).copy_(torch.from_numpy(value))
        mask = torch.ones(scores.shape[:2], dtype=torch.bool)
        return crf.log_marginals(scores, mask, temperature=temperature).exp()[0].numpy()


@pytest.mark.parametrize("model", ["crf", "valid_bio", "crf_with_word_shapes"])
def test_the_teacher_reads_each_word_as_its_tagger_does(
    crf_export_dir, valid_bio_export_dir, shapes_export_dir, model
):
    export = {"crf": crf_export_dir, "valid_bio": valid_bio_export_dir}.get(model, shapes_export_dir)
    decoding = "valid_bio" if model == "valid_bio" else "crf"
    teacher = Teacher(export, WNUT17_LABELS, temperature=2.0)
    teacher.stride = 8  # the tagger's below
    short = "Storm hits New York".split()
    # Longer than the model takes (512 positions): read from the windows that own its words.
    long = ["Storm", "hits", "New", "York", "and", "@someone", "says", "wow"] * 80
    for words in (short, long):
        (distribution,) = teacher.distributions([words])
        assert distribution.shape == (len(words), len(WNUT17_LABELS))
        scores = tagger_word_scores(export, " ".join(words), decoding)
        expected = expected_distribution(export, scores, decoding, 2.0)
        np.testing.assert_allclose(distribution, expected, atol=1e-5)
        np.testing.assert_allclose(distribution.sum(axis=1), 1.0, atol=1e-5)
        # Never I-X at a sentence's start: the teacher decodes within valid BIO.
        inside = [i for i, label in enumerate(WNUT17_LABELS) if label.startswith("I-")]
        assert distribution[0, inside].max() < 1e-6 < distribution[1:, inside].max()


def test_the_teacher_runs_each_distinct_sentence_once(crf_export_dir, monkeypatch):
    teacher = Teacher(crf_export_dir, WNUT17_LABELS)
    calls = []
    forward = teacher.model.forward
    monkeypatch.setattr(teacher.model, "forward", lambda **inputs: calls.append(1) or forward(**inputs))
    first = teacher.distributions([["a", "b"], ["c"], ["a", "b"]])
    assert len(calls) == 1 and np.array_equal(first[0], first[2])
    again = teacher.distributions([["c"], ["a", "b"]])
    assert len(calls) == 1 and np.array_equal(again[0], first[1])


def test_a_teacher_with_other_labels_is_refused_in_one_line(crf_export_dir):
    with pytest.raises(LitNerError, match=r"teacher '.*' has the labels \['O', .*needs the same labels"):
        Teacher(crf_export_dir, LABELS)


@pytest.fixture(scope="module")
def roberta_teacher(tmp_path_factory, wnut17_dir):
    """A tiny random RoBERTa (byte-level BPE: not the student's WordPiece) exported as a CRF model."""
    root = tmp_path_factory.mktemp("teacher")
    family = next(family for family in FAMILIES if family.name == "roberta")
    encoder = save_family_model(family, training_text(wnut17_dir / "wnut17train.conll"), root / "encoder")
    return word_level_export(root / "export", str(encoder), "crf", onnx=False)


def distill_fit(tmp_path, tiny_model_dir, train, name, *extra):
    cli_main(
        [
            "fit", "--config", str(REPO / "configs" / "wnut.yaml"),
            "--model.model_name_or_path", tiny_model_dir, "--model.head=crf", "--model.learning_rate=1e-3",
            f"--data.train_file={train}", f"--data.validation_file={train}", "--data.test_file=null",
            f"--data.label_names={json.dumps(WNUT17_LABELS)}", f"--data.cache_dir={tmp_path}",
            "--data.augment.mention_replacement=0.3", "--trainer.max_epochs=4",
            "--trainer.log_every_n_steps=1", "--trainer.enable_progress_bar=false",
            f"--trainer.logger.init_args.save_dir={tmp_path}", f"--trainer.logger.init_args.name={name}",
            "--seed_everything=1", "--test_after_fit=false", *extra,
        ]
    )  # fmt: skip
    with open(tmp_path / name / "version_0" / "metrics.csv") as file:
        return [row for row in csv.DictReader(file) if row.get("train/loss")]


@pytest.mark.slow
def test_a_student_learns_a_teacher_with_another_tokenizer(
    tiny_model_dir, roberta_teacher, wnut17_dir, tmp_path, no_wnut17_env
):
    train = wnut17_slice(wnut17_dir / "wnut17train.conll", tmp_path / "train.conll", 64)
    gold = distill_fit(tmp_path, tiny_model_dir, train, "gold", "--trainer.max_epochs=2")
    # Weight 0: the teacher runs, and the student trains exactly as without it.
    unweighted = distill_fit(
        tmp_path, tiny_model_dir, train, "unweighted", f"--model.teacher={roberta_teacher}",
        "--model.distill_weight=0", "--trainer.max_epochs=2",
    )  # fmt: skip
    assert [row["train/loss"] for row in unweighted] == [row["train/loss"] for row in gold]
    # Weight 1: the teacher's distributions alone; the student comes closer to them epoch by epoch
    # (4 epochs of 4 batches: each sentence seen 4 times, a third of its mentions redrawn each time).
    taught = distill_fit(
        tmp_path, tiny_model_dir, train, "taught", f"--model.teacher={roberta_teacher}",
        "--model.distill_weight=1", "--model.distill_temperature=2",
    )  # fmt: skip
    kl = [float(row["train/distill_loss"]) for row in taught]
    assert len(kl) == 16 and all(np.isfinite(kl))
    assert np.mean(kl[-4:]) < 0.5 * np.mean(kl[:4])


@pytest.mark.slow
def test_a_crf_student_learns_an_argmax_teacher_without_its_unreachable_sentence_starts(
    tiny_model_dir, export_dir, wnut17_dir, tmp_path, no_wnut17_env
):
    """An argmax teacher's softmax gives a sentence's first word some I-X probability, which a CRF
    student cannot have: it is read without it, so that the loss stays the size of a KL divergence
    (with it, thousands: the start constraint's -1e4 times that probability)."""
    train = wnut17_slice(wnut17_dir / "wnut17train.conll", tmp_path / "train.conll", 32)
    taught = distill_fit(
        tmp_path, tiny_model_dir, train, "argmax", f"--model.teacher={export_dir}",
        "--model.distill_weight=1", "--trainer.max_epochs=1",
    )  # fmt: skip
    kl = [float(row["train/distill_loss"]) for row in taught]
    assert len(kl) == 2 and all(0 < value < 5 for value in kl)


@pytest.mark.slow
def test_a_folder_of_runs_teaches_with_the_export_of_its_last_finished_fit(
    tiny_model_dir, wnut17_dir, tmp_path, no_wnut17_env
):
    """`model.teacher: runs/wnut-offline-base` (configs/offline-distilled.yaml) names a recipe's
    runs before they exist; the student's config.yaml records the export it was taught by."""
    train = wnut17_slice(wnut17_dir / "wnut17train.conll", tmp_path / "train.conll", 16)
    teachers = tmp_path / "teachers"
    for _ in range(2):
        distill_fit(teachers, tiny_model_dir, train, "base", "--trainer.max_epochs=1")
    latest = json.loads((teachers / "base" / "version_1" / "fit_summary.json").read_text())["export"]
    assert latest.endswith("version_1/hf_model")
    distill_fit(
        tmp_path,
        tiny_model_dir,
        train,
        "student",
        f"--model.teacher={teachers / 'base'}",
        "--trainer.max_epochs=1",
    )
    config = yaml.safe_load((tmp_path / "student" / "version_0" / "config.yaml").read_text())
    assert config["model"]["teacher"] == latest


def test_a_teacher_folder_without_a_finished_fit_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "version_0").mkdir(parents=True)  # a fit that never finished
    with pytest.raises(LitNerError, match=r"runs: neither a model .* nor runs with a fit_summary.json"):
        finished_export(str(tmp_path / "runs"))
    with pytest.raises(LitNerError, match=r"^\./runs/none-here: no such folder$"):
        finished_export("./runs/none-here")
    with pytest.raises(LitNerError, match=r"^runs/none-here: no such folder$"):  # runs/ is here: local
        finished_export("runs/none-here")
    # Anything else is a model's name for transformers to load: a Hub id, pkg://, an export.
    assert finished_export("org/model") == "org/model"
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "config.json").write_text("{}")
    assert finished_export(str(tmp_path / "export")) == str(tmp_path / "export")
