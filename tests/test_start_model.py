"""Starting from a fine-tuned token classifier: its head's rows are matched to lit_ner's labels by
name (reordered, kept, freshly initialised or dropped), one line says so, and a plain encoder
still gets a fresh head, silently."""

import logging

import pytest
import torch
from torch import nn

from lit_ner.errors import LitNerError
from lit_ner.model.encoder import ClassifierParts, classification_layer, load_token_classifier
from lit_ner.model.module import TokenClassifier

# The fine-tuned classifiers' labels, in their id order.
SAVED = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
SENTENCES = [
    "Alice flew from Paris to New York on Monday .",
    "the quick brown fox jumps over the lazy dog",
    "Bob Dylan played in Berlin , Tokyo and Rio de Janeiro",
]


def tiny_token_classifier(family: str, vocab_size: int):
    """A 2-layer, 32-wide random token classifier of `family` labelled with SAVED, its head's
    weights large and its biases non-zero so that every row (and every reordering) shows in
    what it predicts."""
    from transformers import (
        BertConfig,
        BertForTokenClassification,
        DistilBertConfig,
        DistilBertForTokenClassification,
    )

    labels = {"id2label": dict(enumerate(SAVED)), "label2id": {label: i for i, label in enumerate(SAVED)}}
    if family == "distilbert":
        config = DistilBertConfig(
            vocab_size=vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
            max_position_embeddings=128, **labels,
        )  # fmt: skip
        model = DistilBertForTokenClassification(config)
    else:
        config = BertConfig(
            vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=128, **labels,
        )  # fmt: skip
        model = BertForTokenClassification(config)
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 1.0)
        model.classifier.bias.normal_(0.0, 0.5)
    return model


@pytest.fixture(scope="module", params=["distilbert", "bert"])
def fine_tuned_dir(request, tmp_path_factory, tokenizer) -> str:
    """A tiny random token classifier (DistilBERT, then BERT) saved with SAVED as its labels."""
    torch.manual_seed(3)
    directory = tmp_path_factory.mktemp(f"fine-tuned-{request.param}")
    tiny_token_classifier(request.param, tokenizer.vocab_size).save_pretrained(directory)
    return str(directory)


def saved_head(directory: str) -> tuple[nn.Module, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The saved classifier as transformers loads it (eval mode), and its head's weight and bias
    rows by label name."""
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(directory).eval()
    assert [model.config.id2label[i] for i in range(len(SAVED))] == SAVED
    layer = model.classifier
    weights = {label: layer.weight[i].detach().clone() for i, label in enumerate(SAVED)}
    biases = {label: layer.bias[i].detach().clone() for i, label in enumerate(SAVED)}
    return model, weights, biases


def batch(tokenizer) -> dict[str, torch.Tensor]:
    return tokenizer(SENTENCES, padding=True, return_tensors="pt")


def predicted_names(logits: torch.Tensor, attention_mask: torch.Tensor, names: list[str]) -> list[list[str]]:
    """Each sentence's predicted label name per (non-padding) token."""
    ids = logits.argmax(-1)
    return [
        [names[i] for i, keep in zip(row.tolist(), mask.tolist()) if keep]
        for row, mask in zip(ids, attention_mask)
    ]


def test_the_same_labels_in_another_order_predict_what_the_fine_tuned_model_predicts(
    fine_tuned_dir, tokenizer, caplog
):
    shuffled = ["I-LOC", "O", "B-LOC", "I-PER", "B-PER"]
    original, weights, biases = saved_head(fine_tuned_dir)
    inputs = batch(tokenizer)
    with torch.no_grad():
        expected = predicted_names(original(**inputs).logits, inputs["attention_mask"], SAVED)
    # A head whose rows were left in the saved order would predict other names, unless the
    # model predicted one label everywhere: it does not.
    assert len({name for sentence in expected for name in sentence}) >= 3

    with caplog.at_level(logging.INFO):
        module = TokenClassifier(label_names=shuffled, model_name_or_path=fine_tuned_dir).eval()
    with torch.no_grad():
        logits = module(inputs["input_ids"], inputs["attention_mask"])
    assert predicted_names(logits, inputs["attention_mask"], shuffled) == expected

    head = module.model.classifier
    for i, label in enumerate(shuffled):
        assert torch.equal(head.weight[i], weights[label]), label
        assert torch.equal(head.bias[i], biases[label]), label
    assert module.model.config.id2label == dict(enumerate(shuffled))
    assert module.model.config.label2id == {label: i for i, label in enumerate(shuffled)}
    assert (
        f"model '{fine_tuned_dir}' has a token-classification head for 5 labels: "
        "all 5 matched by name (rows reordered)"
    ) in caplog.messages


def test_another_label_set_keeps_the_shared_rows_and_initialises_the_new_ones(fine_tuned_dir, tokenizer):
    labels = ["B-LOC", "O", "I-LOC", "B-ORG", "I-ORG", "B-MISC"]  # 3 shared, 3 new; B-PER, I-PER go
    _, weights, biases = saved_head(fine_tuned_dir)
    messages: list[str] = []
    torch.manual_seed(0)
    model = load_token_classifier(fine_tuned_dir, labels, info=messages.append)

    assert messages == [
        f"model '{fine_tuned_dir}' has a token-classification head for 5 labels: "
        "3 labels keep their rows, 3 initialised (B-ORG, I-ORG, B-MISC), 2 dropped (B-PER, I-PER)"
    ]
    head = model.classifier
    assert head.weight.shape == (6, 32) and head.bias.shape == (6,)
    for i, label in enumerate(labels[:3]):
        assert torch.equal(head.weight[i], weights[label]), label
        assert torch.equal(head.bias[i], biases[label]), label
    new_rows = head.weight[3:].detach()
    for row in new_rows:
        assert not any(torch.equal(row, copied) for copied in weights.values())
    # As transformers initialises a fresh head: N(0, initializer_range) weights, zero biases
    # (the saved rows were drawn N(0, 1), a Linear's own init has std ~0.1).
    assert torch.equal(head.bias[3:], torch.zeros(3))
    assert new_rows.std().item() == pytest.approx(model.config.initializer_range, rel=0.25)

    assert model.config.num_labels == model.num_labels == 6
    assert model.config.id2label == dict(enumerate(labels))
    assert model.config.label2id == {label: i for i, label in enumerate(labels)}
    assert model.training  # dropout on for training, as for a fresh head
    inputs = batch(tokenizer)
    assert model(**inputs).logits.shape == (*inputs["input_ids"].shape, 6)


def test_a_checkpoint_started_from_a_fine_tuned_model_loads_its_own_weights_silently(
    fine_tuned_dir, capsys, caplog
):
    labels = ["O", "B-ORG", "I-ORG"]
    torch.manual_seed(4)
    trained = ClassifierParts(labels, fine_tuned_dir, head="crf")
    checkpoint = {
        "state_dict": {
            name: value + 1 if value.is_floating_point() else value
            for name, value in trained.state_dict().items()
        },
        "hyper_parameters": {"label_names": labels, "model_name_or_path": fine_tuned_dir, "head": "crf"},
    }
    capsys.readouterr()
    with caplog.at_level(logging.INFO):
        parts = ClassifierParts.from_checkpoint(checkpoint, "epoch=0.ckpt")
    assert "token-classification head" not in "".join(capsys.readouterr()) + caplog.text
    loaded = parts.state_dict()
    assert all(torch.equal(loaded[name], value) for name, value in checkpoint["state_dict"].items())


def test_a_plain_encoder_gets_a_fresh_head_as_before_and_nothing_is_said(tiny_model_dir, capsys, caplog):
    from transformers import AutoModelForTokenClassification

    labels = ["O", "B-PER", "I-PER"]
    torch.manual_seed(7)
    before = AutoModelForTokenClassification.from_pretrained(
        tiny_model_dir,
        num_labels=3,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    messages: list[str] = []
    torch.manual_seed(7)
    model = load_token_classifier(tiny_model_dir, labels, info=messages.append)
    assert messages == []
    expected = before.state_dict()
    assert list(model.state_dict()) == list(expected)
    assert all(torch.equal(value, expected[name]) for name, value in model.state_dict().items())
    assert model.config.id2label == dict(enumerate(labels))
    assert torch.equal(model.classifier.bias, torch.zeros(3))

    capsys.readouterr()
    with caplog.at_level(logging.INFO):
        TokenClassifier(label_names=labels, model_name_or_path=tiny_model_dir)
    assert "token-classification head" not in "".join(capsys.readouterr()) + caplog.text


def test_a_head_without_a_linear_classification_layer_is_refused_naming_the_model():
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.classifier = nn.Sequential(nn.Linear(4, 3))

    with pytest.raises(LitNerError, match=r"model 'org/tagger' \(Tagger\): no linear classification layer"):
        classification_layer(Tagger(), "org/tagger")
    score = nn.Module()
    score.score = nn.Linear(4, 3)
    assert classification_layer(score, "org/decoder") == ("score", score.score)
