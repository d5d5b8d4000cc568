"""An ensemble of token classifiers as one transformers model: `lit_ner ensemble` writes it, and
any transformers code loads it with `trust_remote_code=True` (this file ships in the export as
`lit_ner_ensemble.py`).

The members are models of one architecture and one tokenizer with the same labels (the seeds of
one recipe). The ensemble's logits are the mean of theirs: for a softmax head, the normalised
geometric mean of their probabilities; for a CRF, whose config holds the mean of the members'
start, transition and end scores, the log-linear pool of their sequence distributions, decoded by
the same Viterbi. A member's word-shape scores are a table added to its logits, so the mean table
(in the config) adds the mean of theirs.

Its model type is its own (`lit_ner_ensemble`): transformers without `trust_remote_code` refuses
the folder instead of loading one member's architecture over weights it does not have.

Self-contained for a machine without lit_ner: it imports torch and transformers only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForTokenClassification, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import TokenClassifierOutput

MODEL_TYPE = "lit_ner_ensemble"


def pipeline_entry() -> dict[str, Any]:
    return {
        "impl": "lit_ner_pipeline.LitNerTokenClassificationPipeline",
        "pt": ["AutoModelForTokenClassification"],
        "type": "text",
    }


class LitNerEnsembleConfig(PretrainedConfig):
    """The ensemble's config: `member` (the members' config, as a dict), `size` (how many), and
    the labels and lit_ner's decoding records, as a single model's config has them."""

    model_type = MODEL_TYPE

    def __init__(self, member: dict[str, Any] | None = None, size: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.member = member or {}
        self.size = size
        self.vocab_size = self.member.get("vocab_size")  # the members' vocabulary, as a single model's
        self.custom_pipelines = {"token-classification": pipeline_entry(), "ner": pipeline_entry()}

    def member_config(self) -> PretrainedConfig:
        member = dict(self.member)
        return AutoConfig.for_model(member.pop("model_type"), **member)

    def to_dict(self) -> dict[str, Any]:
        config = super().to_dict()
        config.pop("custom_pipelines", None)  # set again on loading
        return config


class LitNerEnsembleForTokenClassification(PreTrainedModel):
    """`size` token classifiers of `member`'s architecture; the logits are the mean of theirs."""

    config_class = LitNerEnsembleConfig
    base_model_prefix = "members"

    def __init__(self, config: LitNerEnsembleConfig) -> None:
        super().__init__(config)
        member = config.member_config()
        self.members = nn.ModuleList(
            AutoModelForTokenClassification.from_config(member) for _ in range(config.size)
        )
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        pass  # each member initialises its own; the weights come from the checkpoints anyway

    def forward(self, input_ids: torch.Tensor | None = None, **inputs: Any) -> TokenClassifierOutput:
        inputs = {name: value for name, value in inputs.items() if value is not None and name != "labels"}
        logits = torch.stack([member(input_ids=input_ids, **inputs).logits for member in self.members])
        return TokenClassifierOutput(logits=logits.mean(dim=0))


def register() -> None:
    """Lets transformers load an ensemble without `trust_remote_code` in this process (lit_ner
    runs its own code; a machine without lit_ner loads the copy the export ships)."""
    AutoConfig.register(MODEL_TYPE, LitNerEnsembleConfig, exist_ok=True)
    AutoModelForTokenClassification.register(
        LitNerEnsembleConfig, LitNerEnsembleForTokenClassification, exist_ok=True
    )
