"""What a `TokenClassifier` trains, without Lightning: the Hugging Face token classifier loaded with
a fresh head for the label set, the word-shape scores added to its logits (`--model.word_features`)
and the CRF (`--model.head crf`), together as `ClassifierParts`, which is also how a checkpoint's
weights are read back (`export.hf.hf_model_from_checkpoint`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lit_ner.errors import LitNerError
from lit_ner.hub import first_line, hub_errors, resolve_name_or_path
from lit_ner.model.crf import CRF
from lit_ner.portable.word_shapes import SHAPES


def load_token_classifier(
    model_name_or_path: str, label_names: Sequence[str], trust_remote_code: bool = False
) -> nn.Module:
    """`AutoModelForTokenClassification` with a fresh head sized and named for `label_names`.

    Weights load from safetensors where the folder has them; code shipped with a Hub model runs
    only with `trust_remote_code`."""
    from transformers import AutoModelForTokenClassification

    id2label = dict(enumerate(label_names))
    with hub_errors(f"model '{model_name_or_path}'"):
        model = AutoModelForTokenClassification.from_pretrained(
            resolve_name_or_path(model_name_or_path),
            num_labels=len(label_names),
            id2label=id2label,
            label2id={label: i for i, label in id2label.items()},
            trust_remote_code=trust_remote_code,
        )
    # from_pretrained returns the model in eval mode, and Lightning (>= 2.2) keeps each module's
    # mode as it finds it: without this, dropout would stay off for the whole of training.
    return model.train()


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
    (`word_features`, else None). A lit_ner checkpoint's `state_dict` is exactly theirs (the
    `TokenClassifier` holds these three under the same names), so `from_checkpoint` reads one
    back without Lightning, and renaming a part breaks loading loudly, never silently."""

    def __init__(
        self,
        label_names: Sequence[str],
        model_name_or_path: str,
        trust_remote_code: bool = False,
        head: str = "softmax",
        word_features: bool = False,
        word_features_dim: int = 16,
    ) -> None:
        super().__init__()
        self.model = load_token_classifier(model_name_or_path, label_names, trust_remote_code)
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
