"""`lit_ner ensemble`: several fits of one recipe as one export whose logits are the mean of theirs
(a CRF's scores and the word-shape tables averaged in its config), tagged by lit_ner, by
transformers' pipeline with `trust_remote_code` where lit_ner cannot be imported, and by ONNX
Runtime; transformers without remote code refuses it rather than load one member's architecture.
With `--average weights`, a model soup: one plain model of the members' mean weights."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from lit_ner.__main__ import run_command
from lit_ner.errors import LitNerError
from lit_ner.export.ensemble import ensemble_model, soup_model
from lit_ner.export.hf import hf_model_from_checkpoint
from lit_ner.hub import load_token_classifier_model
from lit_ner.model.encoder import ClassifierParts
from lit_ner.portable.word_decoding import crf_scores
from lit_ner.portable.word_shapes import shape_scores
from lit_ner.tagging.tagger import Tagger
from lit_ner.wnut17 import WNUT17_LABELS

from .test_export import spans
from .test_inference import SPECIAL_TEXTS

TEXTS = [*SPECIAL_TEXTS, "Storm hits New York as @NYGovCuomo says #Sandy is over " * 3]


def member_checkpoint(directory, tiny_model_dir, seed, labels=WNUT17_LABELS, shape_dim=4):
    """A lit_ner checkpoint of a tiny random CRF model with word features: its seed's own head,
    CRF and shape scores, large enough that the members disagree."""
    torch.manual_seed(seed)
    parts = ClassifierParts(
        labels, tiny_model_dir, head="crf", word_features=True, word_features_dim=shape_dim
    )
    with torch.no_grad():
        for name, parameter in parts.named_parameters():
            if name.startswith(("crf.", "word_shapes.", "model.classifier.")):
                parameter.normal_(0.0, 2.0)
    hparams = {
        "label_names": labels, "model_name_or_path": tiny_model_dir, "head": "crf", "word_features": True,
        "word_features_dim": shape_dim, "decoding": "argmax",
    }  # fmt: skip
    path = directory / f"seed-{seed}.ckpt"
    torch.save({"state_dict": parts.state_dict(), "hyper_parameters": hparams, "epoch": 0}, path)
    return str(path)


@pytest.fixture(scope="module")
def members(tmp_path_factory, tiny_model_dir):
    directory = tmp_path_factory.mktemp("members")
    return [member_checkpoint(directory, tiny_model_dir, seed) for seed in (1, 2, 3)]


@pytest.fixture(scope="module")
def ensemble_dir(members, tmp_path_factory):
    out = tmp_path_factory.mktemp("ensemble") / "export"
    args = [f"--checkpoints+={path}" for path in members]
    run_command("ensemble", [*args, "--out_dir", str(out), "--onnx", "true"])
    return str(out)


def test_the_ensemble_is_one_model_whose_logits_and_scores_are_the_mean_of_its_members(members, ensemble_dir):
    loaded = load_token_classifier_model(ensemble_dir)  # lit_ner runs its own class, no remote code
    single = [hf_model_from_checkpoint(path)[0].eval() for path in members]
    inputs = {
        "input_ids": torch.randint(1000, 20000, (2, 12)),
        "attention_mask": torch.ones(2, 12, dtype=torch.long),
    }
    with torch.no_grad():
        mean = torch.stack([model(**inputs).logits for model in single]).mean(dim=0)
        torch.testing.assert_close(loaded(**inputs).logits, mean)
        assert not torch.allclose(single[0](**inputs).logits, mean, atol=0.1)  # members disagree
    for name in ("start", "transitions", "end"):
        members_scores = [crf_scores(model.config)[name] for model in single]
        np.testing.assert_allclose(
            crf_scores(loaded.config)[name], np.mean(members_scores, axis=0), atol=1e-6
        )
    tables = [shape_scores(model.config, len(WNUT17_LABELS)) for model in single]
    np.testing.assert_allclose(
        shape_scores(loaded.config, len(WNUT17_LABELS)), np.mean(tables, axis=0), atol=1e-6
    )


def test_the_ensemble_tags_alike_in_lit_ner_onnx_and_transformers_without_lit_ner(ensemble_dir):
    tagger = Tagger.from_pretrained(ensemble_dir, precision="32")
    assert tagger.decoding == "crf"
    expected = [spans(entities) for entities in tagger(TEXTS)]
    assert sum(map(len, expected)) > 5
    onnx = Tagger.from_pretrained(ensemble_dir, backend="onnx")
    assert [spans(entities) for entities in onnx(TEXTS)] == expected
    code = f"""
import json, sys
sys.modules["lit_ner"] = None  # any import of lit_ner now fails
from transformers import AutoConfig, pipeline
try:
    AutoConfig.from_pretrained({ensemble_dir!r}, trust_remote_code=False)
    refused = ""
except ValueError as error:
    refused = str(error)
tagger = pipeline("ner", model={ensemble_dir!r}, trust_remote_code=True)
texts = {TEXTS!r}
spans = [[(e["entity_group"], e["start"], e["end"]) for e in tagger(t)] if t else [] for t in texts]
print(json.dumps([refused, spans]))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    refused, got = json.loads(result.stdout.strip().splitlines()[-1])
    assert "trust_remote_code" in refused  # not a member's architecture over weights it lacks
    assert [[tuple(span) for span in text] for text in got] == expected


def test_checkpoints_of_different_recipes_are_refused_in_one_line(members, tmp_path, tiny_model_dir):
    other = member_checkpoint(tmp_path, tiny_model_dir, 4, labels=["O", "B-person", "I-person"])
    with pytest.raises(
        LitNerError, match=r"seed-4.ckpt: its config \(.*id2label.*\) differs from .*one recipe"
    ):
        ensemble_model([members[0], other])
    with pytest.raises(LitNerError, match="an ensemble needs at least 2 checkpoints"):
        ensemble_model(members[:1])
    wider = member_checkpoint(tmp_path, tiny_model_dir, 5, shape_dim=8)  # another word_features_dim
    with pytest.raises(LitNerError, match=r"seed-5.ckpt: its weights differ .* in name or shape"):
        soup_model([members[0], wider])


def test_a_soup_is_one_model_of_the_members_mean_weights(members, tmp_path):
    out = tmp_path / "soup"
    args = [f"--checkpoints+={path}" for path in members]
    run_command("ensemble", [*args, "--out_dir", str(out), "--average", "weights"])
    soup = load_token_classifier_model(str(out))
    assert type(soup).__name__ == "DistilBertForTokenClassification"  # one plain model, no remote code
    states = [torch.load(path, weights_only=True)["state_dict"] for path in members]
    for name in ("model.classifier.weight", "model.distilbert.transformer.layer.0.attention.q_lin.weight"):
        mean = torch.stack([state[name] for state in states]).mean(dim=0)
        torch.testing.assert_close(soup.state_dict()[name.removeprefix("model.")], mean)
    transitions = torch.stack([state["crf.transitions"] for state in states]).mean(dim=0)
    np.testing.assert_allclose(crf_scores(soup.config)["transitions"], transitions.numpy(), atol=1e-6)
    # The shape scores are those of the mean embedding and head, not the mean of the tables.
    embedding, head = (
        torch.stack([state[f"word_shapes.{name}.weight"] for state in states]).mean(dim=0)
        for name in ("embedding", "head")
    )
    expected = (embedding @ head.T).numpy()
    np.testing.assert_allclose(shape_scores(soup.config, len(WNUT17_LABELS)), expected, atol=1e-5)
    tables = [
        (state["word_shapes.embedding.weight"] @ state["word_shapes.head.weight"].T) for state in states
    ]
    assert not np.allclose(expected, torch.stack(tables).mean(dim=0).numpy(), atol=1e-2)
    assert Tagger.from_pretrained(str(out), precision="32").decoding == "crf"


def test_an_ensemble_of_another_tokenizer_family_tags_as_the_mean_of_its_members(tmp_path, wnut17_dir):
    """Byte-level BPE RoBERTa members (not the WordPiece DistilBERT above): the same mean, and the
    Tagger reads it with its own tokenizer."""
    from .tokenizer_families import FAMILIES, save_family_model, training_text

    family = next(family for family in FAMILIES if family.name == "roberta")
    encoder = save_family_model(family, training_text(wnut17_dir / "wnut17train.conll"), tmp_path / "roberta")
    members = [member_checkpoint(tmp_path, str(encoder), seed) for seed in (1, 2)]
    model, tokenizer = ensemble_model(members)
    single = [hf_model_from_checkpoint(path)[0].eval() for path in members]
    inputs = tokenizer(["Storm hits New York", "@bob went to Paris"], padding=True, return_tensors="pt")
    inputs = {name: inputs[name] for name in ("input_ids", "attention_mask")}
    with torch.no_grad():
        mean = torch.stack([member(**inputs).logits for member in single]).mean(dim=0)
        torch.testing.assert_close(model(**inputs).logits, mean)
    run_command(
        "ensemble", [*(f"--checkpoints+={path}" for path in members), "--out_dir", str(tmp_path / "out")]
    )
    tagger = Tagger.from_pretrained(str(tmp_path / "out"), precision="32")
    assert type(tagger.model.model).__name__ == "LitNerEnsembleForTokenClassification"
    assert tagger.decoding == "crf" and tagger.windower.tokenizer.token_to_id("<s>") == 0  # RoBERTa's
    assert all(entity["entity_group"] for entity in tagger("Storm hits New York as @NYGovCuomo says"))
