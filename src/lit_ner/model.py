"""The LightningModule: a Hugging Face token classifier plus loss, metrics and optimisation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from lit_ner.data import IGNORE_INDEX
from lit_ner.hub import hub_errors, resolve_name_or_path
from lit_ner.metrics import NERMetrics


def load_token_classifier(model_name_or_path: str, label_names: Sequence[str]) -> nn.Module:
    """`AutoModelForTokenClassification` with a fresh head sized and named for `label_names`."""
    from transformers import AutoModelForTokenClassification

    id2label = dict(enumerate(label_names))
    with hub_errors(f"model '{model_name_or_path}'"):
        model = AutoModelForTokenClassification.from_pretrained(
            resolve_name_or_path(model_name_or_path),
            num_labels=len(label_names),
            id2label=id2label,
            label2id={label: i for i, label in id2label.items()},
        )
    # from_pretrained returns the model in eval mode, and Lightning (>= 2.2) keeps each module's
    # mode as it finds it: without this, dropout would stay off for the whole of training.
    return model.train()


class TokenClassifier(L.LightningModule):
    """Fine-tunes a transformer encoder for word-level NER.

    Args:
        label_names: tag strings in label-id order; linked from `data.label_names`.
        model_name_or_path: Hub id, local directory or `pkg://PACKAGE/DIR` of a pretrained
            encoder (or of a token classifier, whose head is replaced).
        learning_rate: AdamW peak learning rate.
        weight_decay: AdamW weight decay, applied to all weights but biases and LayerNorm.
        warmup_steps: linear warm-up length: a fraction of all optimizer steps when below 1,
            else a number of steps (as `warmup_steps` in transformers 5). The learning rate then
            decays linearly to 0.
        adam_epsilon: AdamW epsilon.
        scoring_mode: seqeval's entity rules for `val/*` and `test/*`: `"default"` (lenient, as
            conlleval and the tutorial) or `"strict"` (IOB2: an I- that continues no B- of its
            type is no entity).
    """

    def __init__(
        self,
        label_names: list[str],
        model_name_or_path: str = "distilbert/distilbert-base-uncased",
        learning_rate: float = 2e-5,
        weight_decay: float = 0.01,
        warmup_steps: float = 0.0,
        adam_epsilon: float = 1e-8,
        scoring_mode: Literal["default", "strict"] = "default",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.label_names = list(label_names)
        self.model = load_token_classifier(model_name_or_path, self.label_names)
        # One metric instance per stage: their states must never mix.
        self.val_metrics = NERMetrics(self.label_names, mode=scoring_mode)
        self.test_metrics = NERMetrics(self.label_names, mode=scoring_mode)
        # The last scores and per-type report of each stage, for the CLI to print and save.
        self.reports: dict[str, dict[str, dict]] = {}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, T, num_labels)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # In fp32 whatever the autocast precision: a bf16 log-softmax loses the small losses.
        return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss = self._loss(logits, batch["labels"])
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["input_ids"].size(0))
        return loss

    def _evaluation_step(self, batch: dict[str, torch.Tensor], stage: str, metrics: NERMetrics) -> None:
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss = self._loss(logits, batch["labels"])
        self.log(f"{stage}/loss", loss, batch_size=batch["input_ids"].size(0), sync_dist=True)
        metrics.update(logits.argmax(dim=-1), batch["labels"], batch.get("sentence_id"))

    def _log_metrics(self, stage: str, metrics: NERMetrics) -> None:
        # compute() gathers every process's sentences first, so the values agree on all ranks
        # (sync_dist then averages equal numbers; it only keeps Lightning from warning).
        scores = metrics.compute()
        report = scores.pop("report")
        self.log_dict(
            {f"{stage}/{name}": value for name, value in scores.items()},
            prog_bar=stage == "val",
            sync_dist=True,
        )
        # Per entity type as well, so loggers can plot each type's curve.
        per_type = {
            f"{stage}/{type_}/{name}": row[name]
            for type_, row in report.items()
            if not type_.endswith(" avg")
            for name in ("precision", "recall", "f1")
        }
        self.log_dict(per_type, sync_dist=True)
        if not self.trainer.sanity_checking:
            self.reports[stage] = {"scores": scores, "report": report}
        metrics.reset()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, "val", self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_metrics)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, "test", self.test_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.test_metrics)

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> list[list[str]]:
        """Predicted tags per sentence, one per word (its first subword's prediction)."""
        predictions = self(batch["input_ids"], batch["attention_mask"]).argmax(dim=-1)
        first_subwords = batch["labels"] != IGNORE_INDEX
        return [
            [self.label_names[i] for i in sentence[mask].tolist()]
            for sentence, mask in zip(predictions, first_subwords)
        ]

    def configure_optimizers(self) -> dict[str, Any]:
        from transformers import get_linear_schedule_with_warmup

        hp = self.hparams
        decay, no_decay, seen = [], [], set()
        for module in self.model.modules():
            for name, param in module.named_parameters(recurse=False):
                if not param.requires_grad or id(param) in seen:  # tied weights appear twice
                    continue
                seen.add(id(param))
                # As the HF Trainer: no decay for biases and normalisation weights.
                (no_decay if name == "bias" or isinstance(module, nn.LayerNorm) else decay).append(param)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": hp.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=hp.learning_rate,
            eps=hp.adam_epsilon,
        )
        total_steps = int(self.trainer.estimated_stepping_batches)
        warmup = round(hp.warmup_steps * total_steps) if hp.warmup_steps < 1 else int(hp.warmup_steps)
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def save_hf_model(self, directory: str | Path, tokenizer: Any) -> Path:
        """Writes a Hugging Face model folder (safetensors, config with label maps, tokenizer)
        that `transformers.pipeline("token-classification", model=directory)` loads."""
        directory = Path(directory)
        self.model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        return directory
