"""The Hugging Face token classifier a `TokenClassifier` trains, and what joins its logits: loading
it with a fresh head for the label set, the word-shape scores (`--model.word_features`), and the
training loss's per-label weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from lit_ner.hub import hub_errors, resolve_name_or_path
from lit_ner.word_shapes import SHAPES


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


def label_weights(
    label_names: Sequence[str], tags: Sequence[Sequence[str]], method: Literal["inverse", "inverse_sqrt"]
) -> torch.Tensor:
    """Per-label loss weights from the labels' frequencies among `tags` (the training words):
    `inverse` N / (labels x count), balanced so that every label weighs the same in total;
    `inverse_sqrt` its square root. A label absent from `tags` gets weight 1."""
    from collections import Counter

    counts = Counter(tag for sentence in tags for tag in sentence)
    total = sum(counts.values())
    weights = torch.tensor(
        [total / (len(label_names) * counts[name]) if counts[name] else 1.0 for name in label_names]
    )
    return weights.sqrt() if method == "inverse_sqrt" else weights


class WordShapeScores(nn.Module):
    """Label scores from word shapes: an embedding of each position's shape id
    (`lit_ner.word_shapes`) through a linear layer without bias. Added to the token classifier's
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
