"""What a `TokenClassifier` trains, without Lightning: the Hugging Face token classifier with a head
for the label set (fresh, or a fine-tuned classifier's own, matched by label name), the word-shape
scores added to its logits (`--model.word_features`) and the CRF (`--model.head crf`), together as
`ClassifierParts`, which is also how a checkpoint's weights are read back
(`export.hf.hf_model_from_checkpoint`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from lit_ner.errors import LitNerError
from lit_ner.hub import first_line, hub_errors, resolve_name_or_path
from lit_ner.model.crf import CRF
from lit_ner.portable.word_shapes import SHAPES


def load_token_classifier(
    model_name_or_path: str,
    label_names: Sequence[str],
    trust_remote_code: bool = False,
    info: Callable[[str], None] | None = None,
) -> nn.Module:
    """`AutoModelForTokenClassification` with a head sized and named for `label_names`.

    A plain encoder (or a classifier whose labels are transformers' default `LABEL_i`) gets a
    fresh head. A fine-tuned token classifier (a `*ForTokenClassification` whose `id2label`
    names its labels) keeps what its head learnt, matched by label name: its rows are reordered
    to `label_names`, a label it lacks gets a fresh row, one `label_names` lacks is dropped; one
    line saying so goes to `info` (None: silent).

    Weights load from safetensors where the folder has them; code shipped with a Hub model runs
    only with `trust_remote_code`."""
    from transformers import AutoConfig, AutoModelForTokenClassification

    label_names = list(label_names)
    with hub_errors(f"model '{model_name_or_path}'", model_name_or_path):
        path = resolve_name_or_path(model_name_or_path)
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        saved_labels = token_classifier_labels(config)
        if saved_labels is None:
            set_labels(config, label_names)  # a fresh head, sized and named for label_names
        model = AutoModelForTokenClassification.from_pretrained(
            path, config=config, trust_remote_code=trust_remote_code
        )
    if saved_labels is not None:
        message = carry_over_head(model, saved_labels, label_names, model_name_or_path)
        if info is not None:
            info(f"model '{model_name_or_path}' has a token-classification head for {message}")
    # from_pretrained returns the model in eval mode, and Lightning (>= 2.2) keeps each module's
    # mode as it finds it: without this, dropout would stay off for the whole of training.
    return model.train()


def token_classifier_labels(config: Any) -> list[str] | None:
    """The label names, in id order, of a fine-tuned token classifier's config: its
    architecture a `*ForTokenClassification` and its `id2label` not transformers' default
    `LABEL_0, LABEL_1, ...`; None for anything else (a plain encoder, an unnamed head)."""
    architectures = getattr(config, "architectures", None) or []
    id2label = getattr(config, "id2label", None) or {}
    if not any(name.endswith("ForTokenClassification") for name in architectures):
        return None
    ids = sorted(int(i) for i in id2label)
    if ids != list(range(len(ids))):
        return None
    names = [id2label[i] for i in ids]
    if all(name == f"LABEL_{i}" for i, name in enumerate(names)):
        return None
    return names


def set_labels(config: Any, label_names: Sequence[str]) -> None:
    """Sizes and names a config's labels for `label_names`, in that order."""
    config.num_labels = len(label_names)
    config.id2label = dict(enumerate(label_names))
    config.label2id = {label: i for i, label in enumerate(label_names)}


def classification_layer(model: nn.Module, name: str) -> tuple[str, nn.Linear]:
    """The attribute name and linear layer of a token classifier's head: `classifier` (BERT,
    DistilBERT, RoBERTa, DeBERTa, ...) or `score` (decoder models)."""
    for attribute in ("classifier", "score"):
        layer = getattr(model, attribute, None)
        if isinstance(layer, nn.Linear):
            return attribute, layer
    raise LitNerError(
        f"model '{name}' ({type(model).__name__}): no linear classification layer (`classifier` "
        "or `score`) whose rows lit_ner could match to its labels"
    )


def carry_over_head(
    model: nn.Module, saved_labels: Sequence[str], label_names: Sequence[str], name: str
) -> str:
    """Replaces a fine-tuned token classifier's head (labelled `saved_labels`) by one for
    `label_names`: the row (weight and bias) of each label both name is copied, a new label's
    row is initialised as transformers initialises a fresh head (normal, `initializer_range`;
    bias zero), the others are dropped; the config is sized and named for `label_names`.
    Returns what happened, for one line."""
    attribute, old = classification_layer(model, name)
    if old.out_features != len(saved_labels):
        raise LitNerError(
            f"model '{name}': its classification layer has {old.out_features} rows for "
            f"{len(saved_labels)} labels in its config"
        )
    duplicates = sorted({label for label in saved_labels if list(saved_labels).count(label) > 1})
    if duplicates:
        raise LitNerError(f"model '{name}': its config names label {duplicates[0]!r} more than once")
    saved_ids = {label: i for i, label in enumerate(saved_labels)}
    shared = [label for label in label_names if label in saved_ids]
    new = [label for label in label_names if label not in saved_ids]
    dropped = [label for label in saved_labels if label not in set(label_names)]
    if new or dropped or list(label_names) != list(saved_labels):
        layer = nn.Linear(
            old.in_features,
            len(label_names),
            bias=old.bias is not None,
            device=old.weight.device,
            dtype=old.weight.dtype,
        )
        with torch.no_grad():
            # What a fresh head's rows get from transformers: N(0, initializer_range), bias zero.
            layer.weight.normal_(0.0, initializer_range(model.config))
            if layer.bias is not None:
                layer.bias.zero_()
            for i, label in enumerate(label_names):
                if label in saved_ids:
                    layer.weight[i] = old.weight[saved_ids[label]]
                    if old.bias is not None:
                        layer.bias[i] = old.bias[saved_ids[label]]
        setattr(model, attribute, layer)
    set_labels(model.config, label_names)
    if hasattr(model, "num_labels"):
        model.num_labels = len(label_names)  # what the model's own loss reshapes its logits by
    head = f"{len(saved_labels)} {plural(len(saved_labels), 'label')}"
    if not new and not dropped:
        order = "same order" if list(label_names) == list(saved_labels) else "rows reordered"
        return f"{head}: all {len(shared)} matched by name ({order})"
    keep = "label keeps its row" if len(shared) == 1 else "labels keep their rows"
    parts = [f"{len(shared)} {keep}"]
    if new:
        parts.append(f"{len(new)} initialised ({listing(new)})")
    if dropped:
        parts.append(f"{len(dropped)} dropped ({listing(dropped)})")
    return f"{head}: {', '.join(parts)}"


def initializer_range(config: Any) -> float:
    """The standard deviation transformers draws a fresh linear layer's weights from."""
    for key in ("initializer_range", "init_std"):
        value = getattr(config, key, None)
        if value:
            return float(value)
    return 0.02  # transformers' default across the library


def plural(count: int, word: str) -> str:
    return word if count == 1 else f"{word}s"


def listing(labels: Sequence[str], most: int = 8) -> str:
    """Labels joined by commas, at most `most` of them named."""
    named = ", ".join(labels[:most])
    return named if len(labels) <= most else f"{named}, and {len(labels) - most} more"


class WordShapeScores(nn.Module):
    """Label scores from word shapes: an embedding of each position's shape id
    (`lit_ner.portable.word_shapes`) through a linear layer without bias. Added to the token classifier's
    logits, it is exactly its linear head applied to the encoder output concatenated with the
    shape embedding (the classifier's dropout falls on the encoder output alone: the shapes are a
    handful of values, not features to co-adapt). Its weights start at zero, so a fresh model
    scores as it would without; exports carry its `table()`."""

    def __init__(self, dim: int, num_labels: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(len(SHAPES), dim, padding_idx=0)
        self.head = nn.Linear(dim, num_labels, bias=False)
        nn.init.zeros_(self.head.weight)

    def forward(self, shape_ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(shape_ids))

    def table(self) -> torch.Tensor:
        """The `(shapes, labels)` scores it adds for each shape id (row 0, no word: zeros)."""
        return self.head(self.embedding.weight).detach().float()


class ClassifierParts(nn.Module):
    """The parts a `TokenClassifier` trains, built for a label set: `model`, the Hugging Face token
    classifier; `crf`, the CRF (`head="crf"`, else None); `word_shapes`, the word-shape scores
    (`word_features`, else None); `info` gets the line saying how a fine-tuned classifier's head
    was matched to `label_names` (`load_token_classifier`). A lit_ner checkpoint's `state_dict`
    is exactly theirs (the `TokenClassifier` holds these three under the same names), so
    `from_checkpoint` reads one back without Lightning (silently), and renaming a part breaks
    loading loudly, never silently."""

    def __init__(
        self,
        label_names: Sequence[str],
        model_name_or_path: str,
        trust_remote_code: bool = False,
        head: str = "softmax",
        word_features: bool = False,
        word_features_dim: int = 16,
        info: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self.model = load_token_classifier(model_name_or_path, label_names, trust_remote_code, info)
        self.crf = CRF(len(label_names), label_names) if head == "crf" else None
        self.word_shapes = WordShapeScores(word_features_dim, len(label_names)) if word_features else None

    @classmethod
    def from_checkpoint(
        cls, checkpoint: dict[str, Any], path: str, trust_remote_code: bool = False
    ) -> ClassifierParts:
        """The parts of a loaded lit_ner checkpoint, built from its hyper-parameters and holding
        its weights."""
        hparams = checkpoint.get("hyper_parameters", {})
        if "label_names" not in hparams or "model_name_or_path" not in hparams:
            raise LitNerError(f"{path}: not a lit_ner checkpoint (no label_names/model_name_or_path)")
        # The checkpoint's own settings of the parts; this class's defaults for any it lacks.
        settings = {
            key: hparams[key] for key in ("head", "word_features", "word_features_dim") if key in hparams
        }
        parts = cls(hparams["label_names"], hparams["model_name_or_path"], trust_remote_code, **settings)
        try:
            parts.load_state_dict(checkpoint["state_dict"])
        except RuntimeError as exc:
            raise LitNerError(
                f"{path}: its weights are not those of its hyper-parameters ({first_line(exc)})"
            ) from None
        return parts
