"""The LightningModule: a Hugging Face token classifier plus loss, metrics and optimisation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.utilities import GradClipAlgorithmType, rank_zero_info, rank_zero_warn
from torch import nn

from lit_ner import compat
from lit_ner.data.alignment import IGNORE_INDEX
from lit_ner.data.datamodule import NERDataModule
from lit_ner.errors import LitNerError
from lit_ner.model.checkpoint import rng_states, set_rng_states
from lit_ner.model.crf import bio_constraints, labelled_positions, viterbi_decode
from lit_ner.model.encoder import ClassifierParts
from lit_ner.model.metrics import STAGE_SPLITS, NERMetrics, StageResults
from lit_ner.model.teacher import Teacher
from lit_ner.portable import word_decoding
from lit_ner.portable.spans import get_entities
from lit_ner.portable.word_decoding import IMPOSSIBLE


class TokenClassifier(L.LightningModule):
    """Fine-tunes a transformer encoder for word-level NER.

    Args:
        label_names: tag strings in label-id order; linked from `data.label_names`.
        model_name_or_path: Hub id, local directory or `pkg://PACKAGE/DIR` of a pretrained
            encoder, or of a fine-tuned token classifier (`dslim/bert-base-NER`), whose head's
            rows are matched to `label_names` by name: shared labels keep theirs, new ones start
            fresh (one line says which).
        learning_rate: AdamW peak learning rate.
        weight_decay: AdamW weight decay, applied to all weights but biases and LayerNorm.
        warmup_steps: linear warm-up length: a fraction of all optimizer steps when below 1,
            else a number of steps (as `warmup_steps` in transformers 5). The learning rate then
            decays linearly to 0.
        adam_epsilon: AdamW epsilon.
        scoring_mode: seqeval's entity rules for `val/*` and `test/*`: `"default"` (lenient, as
            conlleval and the tutorial) or `"strict"` (IOB2: an I- that continues no B- of its
            type is no entity).
        nonfinite_loss: what a NaN or infinite training loss does: `"stop"` ends training with
            a message naming the step and batch (the checkpoints written so far stay as they
            were); `"skip"` drops that batch's update, and the skipped batches are counted and
            reported.
        trust_remote_code: run modelling code that a Hub model ships (off: only transformers'
            own architectures load). Linked to the data module's tokenizer loading.
        compile: compile the token classifier with `torch.compile(dynamic=True)` (one graph for
            every batch shape) before training or evaluating. Off by default: on the CPU
            benchmark its compile time outweighs what it saves in one epoch (docs/speed.md).
        decoding: how word labels are read from the classifier's scores, in validation, test,
            predict and (through the export's config) `lit_ner tag`: `"argmax"` (each word its
            first subword's best label, as the tutorial) or `"valid_bio"` (Viterbi over the
            log-probabilities with invalid BIO transitions forbidden; see `lit_ner.model.crf`).
        head: `"softmax"` (the token classifier's linear layer, cross-entropy) or `"crf"` (a
            linear-chain CRF over the first-subword positions on top of it, trained by sequence
            likelihood and decoded by Viterbi, always valid BIO).
        class_weights: weights of the training cross-entropy per label: `"none"`, `"inverse"`
            (N / (labels x count) from the training split's word tags), `"inverse_sqrt"` (its
            square root, milder), or one weight per label in id order. Softmax head only;
            validation and test losses stay unweighted.
        o_weight: multiplies the `O` label's training weight (below 1 pushes towards recall).
        label_smoothing: cross-entropy label smoothing of the training loss (softmax head).
        crf_lr_factor: the CRF's learning rate as a multiple of `learning_rate` (its scores
            start from zero).
        word_features: give the encoder each word's shape, from its original characters
            (casing, digits, `@`/`#`, URL, emoji: `lit_ner.portable.word_shapes`), which an uncased
            tokenizer throws away: a learned embedding of the shape is concatenated to every
            subword's encoder output before the linear head, for both heads. Saved in
            checkpoints; exports carry it as a score table that `lit_ner tag`, the Tagger, ONNX
            and the export's pipeline code all apply.
        word_features_dim: the size of the shape embedding.
        word_features_lr_factor: the shape embedding's and its head's learning rate as a
            multiple of `learning_rate` (learnt from scratch, as the CRF).
        label_counts: how often each label tags a training word; linked from
            `data.label_counts` (what `class_weights` "inverse" and "inverse_sqrt" weigh by).
        teacher: knowledge distillation: a finished model (an export folder such as
            `runs/.../hf_model`, a Hub id, or with `lit_ner fit` a folder of runs such as
            `runs/wnut-offline-base`: the export of its latest finished fit) with the same
            labels, any tokenizer, whose word
            label distributions over each training sentence (mention-replaced ones included)
            the student also learns (`lit_ner.model.teacher`). Training only: validation, test
            and the export never run it.
        distill_weight: the training loss is `(1 - w) * gold loss + w * T^2 * KL(teacher ||
            student)`, the KL divergence per word between the teacher's word distributions and
            the student's (a CRF's marginals, a softmax head's probabilities), both at
            temperature `T`.
        distill_temperature: `T`, dividing every score of teacher and student before
            normalising (above 1: softer distributions, more of the teacher's second choices).
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
        nonfinite_loss: Literal["stop", "skip"] = "stop",
        trust_remote_code: bool = False,
        compile: bool = False,
        decoding: Literal["argmax", "valid_bio"] = "argmax",
        head: Literal["softmax", "crf"] = "softmax",
        class_weights: Literal["none", "inverse", "inverse_sqrt"] | list[float] = "none",
        o_weight: float = 1.0,
        label_smoothing: float = 0.0,
        crf_lr_factor: float = 100.0,
        word_features: bool = False,
        word_features_dim: int = 16,
        word_features_lr_factor: float = 100.0,
        label_counts: dict[str, int] | None = None,
        teacher: str | None = None,
        distill_weight: float = 0.5,
        distill_temperature: float = 1.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.label_names = list(label_names)
        self._check_arguments(
            head, class_weights, o_weight, label_smoothing, word_features, word_features_dim
        )
        if not 0.0 <= distill_weight <= 1.0 or distill_temperature <= 0:
            raise LitNerError("model.distill_weight must be in [0, 1] and model.distill_temperature > 0")
        # The trained parts, as a checkpoint holds them (export.hf.hf_model_from_checkpoint reads
        # a checkpoint into the same ClassifierParts): the HF classifier, the CRF, the shapes.
        parts = ClassifierParts(
            self.label_names,
            model_name_or_path,
            trust_remote_code,
            head,
            word_features,
            word_features_dim,
            info=rank_zero_info,
        )
        self.model, self.crf, self.word_shapes = parts.model, parts.crf, parts.word_shapes
        start, transitions = bio_constraints(self.label_names)
        self.register_buffer("bio_start", start, persistent=False)
        self.register_buffer("bio_transitions", transitions, persistent=False)
        # The training loss's per-label weights (None: unweighted); set up when fitting, from the
        # training split's label counts for the frequency weights (see `setup`).
        self.register_buffer("class_weight", None, persistent=False)
        # A batch of 16 sentences x 32 tokens, about a WNUT-17 batch: the model summary shows the
        # FLOPs of one forward of it, and each layer's input and output shapes.
        example = torch.ones(16, 32, dtype=torch.long)
        self.example_input_array = (example, example, example)  # input ids, mask, shape ids
        # Read by Lightning's ThroughputMonitor (`callbacks.SentenceThroughput`): None, since a
        # batch's FLOPs change with its length; the model summary shows those of the batch above.
        self.flops_per_batch = None
        # One metric instance per stage: their states must never mix.
        self.val_metrics = NERMetrics(self.label_names, mode=scoring_mode)
        self.test_metrics = NERMetrics(self.label_names, mode=scoring_mode)
        # Words no subword position reached are scored as predicted "O" (never dropped).
        self.outside_id = self.label_names.index("O") if "O" in self.label_names else 0
        self.skipped_batches = 0  # non-finite losses skipped under nonfinite_loss="skip"
        self._positions: torch.Tensor | None = None  # see training_step
        self._resumed_positions: tuple[int, list[float]] | None = None
        # The last results of each stage, for the callbacks to print, save and log.
        self.reports: dict[str, StageResults] = {}
        # Loaded when training starts, never saved: not a submodule (see `teacher_distributions`).
        self._teacher: Teacher | None = None

    def _check_arguments(
        self,
        head: str,
        class_weights: str | list[float],
        o_weight: float,
        label_smoothing: float,
        word_features: bool,
        word_features_dim: int,
    ) -> None:
        """Refuses settings that contradict each other or the label set, before any weights load."""
        if head == "crf" and (class_weights != "none" or o_weight != 1.0 or label_smoothing):
            raise LitNerError(
                "model.class_weights, model.o_weight and model.label_smoothing shape the softmax "
                "head's cross-entropy; the CRF head trains on the sequence likelihood: leave them unset"
            )
        if isinstance(class_weights, list) and len(class_weights) != len(self.label_names):
            raise LitNerError(
                f"model.class_weights has {len(class_weights)} weights for {len(self.label_names)} "
                f"labels {self.label_names}"
            )
        if word_features and word_features_dim < 1:
            raise LitNerError(f"model.word_features_dim must be at least 1, not {word_features_dim}")
        if not 0.0 <= label_smoothing < 1.0 or o_weight < 0:
            raise LitNerError("model.label_smoothing must be in [0, 1) and model.o_weight >= 0")

    def configure_model(self) -> None:
        # In place (`nn.Module.compile`): parameter names, checkpoints and the export stay those
        # of the plain model.
        if self.hparams.compile and not compat.is_compiled(self.model):
            self.model.compile(dynamic=True)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, shape_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, T, num_labels)
        if self.word_shapes is None:
            return logits
        if shape_ids is None:
            raise LitNerError("model.word_features: this model needs each position's word shape (shape_ids)")
        return logits + self.word_shapes(shape_ids)

    def _logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self(batch["input_ids"], batch["attention_mask"], batch.get("shape_ids"))

    def setup(self, stage: str) -> None:
        # WNUT-17's surface-form scores need each scored sentence's words: the metrics get them
        # from lit_ner's data module (another data module's sentences are scored without them).
        data = self.trainer.datamodule
        for stage_, metrics in (("val", self.val_metrics), ("test", self.test_metrics)):
            split = STAGE_SPLITS[stage_]
            has_words = isinstance(data, NERDataModule) and data.has_split(split)
            metrics.words = data.words(split) if has_words else None
            metrics.decode = self.decode  # a long sentence's windows are decoded again whole
        hp = self.hparams
        if stage == "fit" and (hp.class_weights != "none" or hp.o_weight != 1.0):
            self.class_weight = self._class_weight().to(self.device)  # setup may follow the move
        if stage == "fit" and hp.teacher is not None and self._teacher is None:
            # Before the first step, so that a teacher that does not fit stops the run at once.
            if not isinstance(data, NERDataModule):
                raise LitNerError(
                    "model.teacher: distillation reads training words from lit_ner's data module"
                )
            self._teacher = Teacher(
                hp.teacher, self.label_names, hp.distill_temperature, trust_remote_code=hp.trust_remote_code
            )
            rank_zero_info(f"distilling from the teacher {hp.teacher} ({self._teacher.decoding} decoding)")

    def _class_weight(self) -> torch.Tensor:
        """The training loss's weight per label (`class_weights`, `o_weight`), logged once."""
        hp = self.hparams
        if isinstance(hp.class_weights, list):
            weights = torch.tensor(hp.class_weights, dtype=torch.float32)
        elif hp.class_weights == "none":
            weights = torch.ones(len(self.label_names))
        else:
            counts = hp.label_counts
            if counts is None and isinstance(self.trainer.datamodule, NERDataModule):
                counts = self.trainer.datamodule.label_counts  # not linked (from Python), or a Hub data set
            if counts is None:
                raise LitNerError(
                    f"model.class_weights {hp.class_weights}: needs the training split's label counts "
                    "(model.label_counts, linked from the data module's)"
                )
            weights = label_weights(self.label_names, counts, hp.class_weights)
        if "O" in self.label_names:
            weights[self.label_names.index("O")] *= hp.o_weight
        rank_zero_info(
            "training loss weights per label: "
            + ", ".join(f"{name} {weight:.3g}" for name, weight in zip(self.label_names, weights.tolist()))
        )
        return weights

    def _loss(
        self, logits: torch.Tensor, batch: dict[str, torch.Tensor], training: bool = False
    ) -> torch.Tensor:
        """The training loss (weighted and smoothed as configured), or with `training=False` the
        plain one that validation and test report."""
        labels = batch["labels"]
        if self.crf is not None:
            emissions, tags, mask = labelled_positions(logits, labels)
            # A window of a long sentence opens or closes it only where it starts or ends it.
            opens = batch["word_offset"] == 0 if "word_offset" in batch else None
            return self.crf.neg_log_likelihood(emissions, tags, mask, opens, batch.get("closes_sentence"))
        # In fp32 whatever the autocast precision: a bf16 log-softmax loses the small losses.
        return F.cross_entropy(
            logits.float().flatten(0, 1),
            labels.flatten(),
            weight=self.class_weight if training else None,
            ignore_index=IGNORE_INDEX,
            label_smoothing=self.hparams.label_smoothing if training else 0.0,
        )

    def on_train_epoch_start(self) -> None:
        self._positions = None

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        mask = batch["attention_mask"]
        # (positions, padding positions) trained on this epoch, kept on the device so counting
        # never waits for the GPU. Started here too: a run resumed mid-epoch skips the epoch start.
        counts = torch.stack([torch.tensor(mask.numel(), device=mask.device), (mask == 0).sum()])
        if self._positions is None and self._resumed_positions is not None:
            # An epoch resumed midway counts on from its checkpoint's counts.
            epoch, saved = self._resumed_positions
            self._resumed_positions = None
            if epoch == self.current_epoch:
                self._positions = torch.tensor(saved, dtype=counts.dtype, device=counts.device)
        self._positions = counts if self._positions is None else self._positions + counts
        logits = self._logits(batch)
        loss = self._loss(logits, batch, training=True)
        if self.hparams.teacher is not None:
            distill = self._distillation_loss(logits, batch)
            self.log("train/distill_loss", distill, batch_size=batch["input_ids"].size(0))
            weight = self.hparams.distill_weight
            loss = (1 - weight) * loss + weight * self.hparams.distill_temperature**2 * distill
        # Every process decides together: under DDP one process skipping or stopping alone would
        # leave the others waiting in the gradient all-reduce.
        if not self.trainer.strategy.reduce_boolean_decision(bool(torch.isfinite(loss)), all=True):
            return self._nonfinite_loss(loss, batch, batch_idx)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["input_ids"].size(0))
        # The learning rate this step trains with (what the scheduler set after the last step).
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], prog_bar=True)
        return loss

    def _distillation_loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean over the batch's words of KL(teacher || student) at the temperature."""
        targets = self.teacher_distributions(batch).to(logits.device)
        words = batch["word_labels"] != IGNORE_INDEX
        temperature = self.hparams.distill_temperature
        scores = self.word_scores(logits, batch)
        if self.crf is not None:
            opens = batch["word_offset"] == 0 if "word_offset" in batch else torch.ones_like(words[:, 0])
            student = self.crf.log_marginals(scores, words, opens, batch.get("closes_sentence"), temperature)
            # A sentence's first word cannot be I-X for this CRF: a teacher that gives it some
            # probability (an argmax model's softmax) is read without it, not as an unreachable target.
            first = targets[:, 0] * (self.crf.start_constraint > IMPOSSIBLE / 2).to(targets.dtype)
            first = first / first.sum(dim=-1, keepdim=True).clamp_min(1e-12)
            targets = targets.clone()
            targets[:, 0] = torch.where(opens.bool().unsqueeze(1), first, targets[:, 0])
        else:
            student = (scores / temperature).log_softmax(dim=-1)
        # Only words the student sees (a word no subword reached is O by fiat, not by the model).
        _, rows, indices = first_subwords(batch)
        seen = torch.zeros_like(words)
        seen[rows, indices] = True
        seen &= words
        kl = (targets * (targets.clamp_min(1e-12).log() - student)).sum(dim=-1)
        return (kl * seen).sum() / seen.sum().clamp_min(1)

    def teacher_distributions(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """`(batch, words, labels)`: the teacher's distribution of each of the batch's words (zero
        where a row has no word), read from the whole sentence the row is a window of, as this
        epoch's data has it."""
        assert self._teacher is not None, "the teacher is loaded in setup('fit')"
        self._teacher.to(self.device)  # where the student is now (a no-op once there)
        words = self.trainer.datamodule.training_words(self.current_epoch)
        sentence_ids = batch["sentence_id"].tolist()
        offsets = batch["word_offset"].tolist() if "word_offset" in batch else [0] * len(sentence_ids)
        counts = (batch["word_labels"] != IGNORE_INDEX).sum(dim=1).tolist()
        distributions = self._teacher.distributions([words[i] for i in sentence_ids])
        targets = torch.zeros(*batch["word_labels"].shape, len(self.label_names), dtype=torch.float32)
        for row, (distribution, offset, count) in enumerate(zip(distributions, offsets, counts)):
            targets[row, :count] = torch.from_numpy(distribution[offset : offset + count])
        return targets

    def _nonfinite_loss(self, loss: torch.Tensor, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        sentences = batch["sentence_id"].tolist() if "sentence_id" in batch else "unknown"
        where = (
            f"non-finite training loss at step {self.global_step}, epoch {self.current_epoch}, batch "
            f"{batch_idx} (this process: loss {loss.item()}, train sentences {sentences})"
        )
        if self.hparams.nonfinite_loss == "stop":
            raise LitNerError(
                f"{where}: training stopped, the checkpoints written before it are intact; try a lower "
                "--model.learning_rate, --trainer.precision 32-true, or --model.nonfinite_loss skip"
            )
        self.skipped_batches += 1
        self.log("train/skipped_batches", float(self.skipped_batches), reduce_fx="max")
        rank_zero_warn(f"{where}: batch skipped ({self.skipped_batches} so far)")
        return None

    def on_train_epoch_end(self) -> None:
        if self._positions is None:  # no batch trained on (an epoch resumed at its very end)
            return
        positions, padding = self.trainer.strategy.reduce(self._positions.double(), reduce_op="sum").tolist()
        if positions:
            # Logged once per epoch; equal on every process after the reduction.
            self.log("train/padded_fraction", padding / positions)
            rank_zero_info(
                f"epoch {self.current_epoch}: {padding / positions:.1%} of the {int(positions):,} trained "
                "subword positions were padding"
            )

    def on_train_end(self) -> None:
        self._teacher = None  # its memory back before the test and the export
        if self.skipped_batches:
            n = self.skipped_batches
            rank_zero_warn(f"{n} training batch{'es' * (n != 1)} skipped for a non-finite loss")

    def word_scores(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Each word's label scores, `(batch, n_words, labels)`, taken at its first subword:
        log-probabilities for the softmax head, emissions for the CRF. A word that has no
        subword position scores `O` certain, so that it counts as a miss where it belongs to an
        entity instead of vanishing from the scores."""
        token_scores = logits.float() if self.crf is not None else logits.float().log_softmax(dim=-1)
        scores = torch.full((*batch["word_labels"].shape, logits.shape[-1]), IMPOSSIBLE, device=logits.device)
        scores[..., self.outside_id] = 0.0
        starts, rows, words = first_subwords(batch)
        scores[rows, words] = token_scores[starts]
        return scores

    def decode(self, word_scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Word label ids from word scores (`model.head`, `model.decoding`), `(batch, n_words)`."""
        if self.crf is not None:
            return self.crf.decode(word_scores, mask)
        if self.hparams.decoding == "valid_bio":
            return viterbi_decode(word_scores, mask, self.bio_transitions, self.bio_start)
        return word_scores.argmax(dim=-1)

    def word_predictions(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Word-level predicted label ids, `(batch, n_words)`, decoded from `word_scores`."""
        return self.decode(self.word_scores(logits, batch), batch["word_labels"] != IGNORE_INDEX)

    def _evaluation_step(self, batch: dict[str, torch.Tensor], stage: str, metrics: NERMetrics) -> None:
        logits = self._logits(batch)
        loss = self._loss(logits, batch)
        self.log(f"{stage}/loss", loss, batch_size=batch["input_ids"].size(0), sync_dist=True)
        word_scores = self.word_scores(logits, batch)
        metrics.update(
            self.decode(word_scores, batch["word_labels"] != IGNORE_INDEX),
            batch["word_labels"],
            batch.get("sentence_id"),
            batch.get("word_offset"),
            word_scores,
            batch.get("n_windows"),
        )

    def _log_metrics(self, stage: str, metrics: NERMetrics) -> None:
        # compute() gathers every process's sentences first, so the values agree on all ranks
        # (sync_dist then averages equal numbers; it only keeps Lightning from warning).
        scores = metrics.compute()
        report, surface, sentences = scores.pop("report"), scores.pop("surface"), scores.pop("sentences")
        if surface is not None:
            for name in ("precision", "recall", "f1"):
                scores[f"surface_{name}"] = surface["overall"][name]
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
            self.reports[stage] = {
                "scores": scores,
                "report": report,
                "surface": surface,
                "sentences": sentences,
            }
        metrics.reset()

    # Resuming exactly: the RNG state travels in every checkpoint and is put back right before the
    # first training batch after a restore, so dropout draws what the uninterrupted run drew.

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_states"] = rng_states()
        trainer = compat.attached_trainer(self)
        if trainer is not None and trainer.world_size > 1 and torch.distributed.is_initialized():
            # Every process draws its own dropout masks: each gets its own RNG state back (every
            # process saves, rank 0 writes).
            gathered: list[Any] = [None] * self.trainer.world_size
            torch.distributed.all_gather_object(gathered, checkpoint["rng_states"])
            checkpoint["rng_states_per_rank"] = gathered
        if trainer is not None and self._positions is not None:
            # The epoch's padding counts so far, every process's together (every process saves).
            counts = self.trainer.strategy.reduce(self._positions.double(), reduce_op="sum")
            checkpoint["epoch_positions"] = [self.current_epoch, counts.tolist()]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("hyper_parameters", {}).get("label_names")
        if saved is not None and list(saved) != self.label_names:
            trainer = compat.attached_trainer(self)
            where = getattr(trainer, "ckpt_path", None) if trainer else None
            raise LitNerError(
                f"{where or 'checkpoint'}: its labels {list(saved)} differ from the data's "
                f"{self.label_names}; use it with data of its label set (or pass --data.label_names)"
            )
        per_rank = checkpoint.get("rng_states_per_rank")
        trainer = compat.attached_trainer(self)
        if per_rank and trainer is not None and len(per_rank) == trainer.world_size:
            self._rng_states_to_restore = per_rank[self.global_rank]
        else:
            self._rng_states_to_restore = checkpoint.get("rng_states")
        if "epoch_positions" in checkpoint:
            epoch, counts = checkpoint["epoch_positions"]
            # The sum of every process's counts goes on in one process.
            self._resumed_positions = (epoch, counts if self.global_rank == 0 else [0.0, 0.0])

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if getattr(self, "_rng_states_to_restore", None) is not None:
            set_rng_states(self._rng_states_to_restore)
            self._rng_states_to_restore = None

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, "val", self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_metrics)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, "test", self.test_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.test_metrics)

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> list[dict[str, Any]]:
        """Per example (a sentence, or a window of a long one): its sentence's id in the split,
        the index of its first word in that sentence, and per word it owns the predicted tag (the
        word's first subword's; `O` for a word that has no subword position) and that tag's
        probability (0 for a word without a subword), and its words' scores (`word_scores`): a
        long sentence's windows are decoded again whole once joined (`decode_sentence`), and
        entities are scored from them (`entity_scores`)."""
        logits = self._logits(batch)
        word_scores = self.word_scores(logits, batch)
        predictions = self.decode(word_scores, batch["word_labels"] != IGNORE_INDEX)
        # The predicted tag's probability at each word's first subword (the softmax of the
        # CRF's emissions for the CRF head); 0 for a word without a subword.
        probabilities = word_scores.softmax(dim=-1).gather(2, predictions.unsqueeze(2)).squeeze(2)
        scores = torch.zeros(predictions.shape, dtype=torch.float32, device=logits.device)
        _, rows, words = first_subwords(batch)
        scores[rows, words] = probabilities[rows, words]
        n_words = (batch["word_labels"] != IGNORE_INDEX).sum(dim=1).tolist()
        sentence_ids = batch["sentence_id"].tolist() if "sentence_id" in batch else [-1] * len(n_words)
        offsets = batch["word_offset"].tolist() if "word_offset" in batch else [0] * len(n_words)
        windows = batch["n_windows"].tolist() if "n_windows" in batch else [1] * len(n_words)
        pieces = []
        for row, (sentence_id, offset, n) in enumerate(zip(sentence_ids, offsets, n_words)):
            piece = {
                "sentence_id": sentence_id,
                "word_offset": offset,
                "tags": [self.label_names[i] for i in predictions[row, :n].tolist()],
                "scores": scores[row, :n].tolist(),
                "word_scores": word_scores[row, :n].cpu(),
                "windowed": windows[row] > 1 and sentence_id >= 0,
            }
            pieces.append(piece)
        return pieces

    def decode_sentence(self, word_scores: torch.Tensor) -> list[str]:
        """A whole sentence's tags from its words' scores `(words, labels)` (a long sentence's
        windows' joined), decoded as validation decodes."""
        scores = word_scores.to(self.device)[None]
        labels = self.decode(scores, torch.ones(scores.shape[:2], dtype=torch.bool, device=self.device))
        return [self.label_names[i] for i in labels[0].tolist()]

    def entity_scores(self, word_scores: torch.Tensor, tags: Sequence[str]) -> list[float]:
        """Each entity's score (in `spans.get_entities(tags)` order) from its sentence's word
        scores, as every tagging path scores it (`word_decoding.entity_scores`): the CRF's
        probability of the entity, or the mean probability of its words' labels."""
        labels = [self.label_names.index(tag) for tag in tags]
        decoding, edges = "argmax", (None, None, None)
        if self.crf is not None:
            decoding = "crf"
            edges = tuple(value.detach().float().cpu().numpy() for value in self.crf.scores())
        return word_decoding.entity_scores(
            word_scores.float().cpu().numpy(),
            labels,
            get_entities(list(tags)),
            self.label_names,
            decoding,
            edges,
        )

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        plugin = self.trainer.precision_plugin
        scaled = isinstance(plugin, MixedPrecision) and plugin.scaler is not None
        algorithm = GradClipAlgorithmType(gradient_clip_algorithm or "norm")
        positive = gradient_clip_val is not None and gradient_clip_val > 0  # Lightning ignores <= 0
        if positive and not scaled and algorithm == "norm" and self.device.type == "cpu":
            clip_grad_norm_on_cpu(list(plugin.main_params(optimizer)), gradient_clip_val)
        elif gradient_clip_val and isinstance(plugin, MixedPrecision) and not scaled:
            # bf16-mixed scales no loss, so there is nothing for the fused AdamW to unscale and
            # Lightning's refusal to clip for a fused optimizer does not apply: clip as in fp32.
            Precision.clip_gradients(plugin, optimizer, gradient_clip_val, algorithm)
        else:
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

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
        groups = [
            {"params": decay, "weight_decay": hp.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        # A few hundred scores learnt from scratch: at the encoder's learning rate they would
        # barely move in a fine-tuning run.
        for module, factor in ((self.crf, hp.crf_lr_factor), (self.word_shapes, hp.word_features_lr_factor)):
            if module is not None:
                groups.append(
                    {
                        "params": list(module.parameters()),
                        "weight_decay": 0.0,
                        "lr": hp.learning_rate * factor,
                    }
                )
        optimizer = torch.optim.AdamW(
            groups,
            lr=hp.learning_rate,
            eps=hp.adam_epsilon,
            # One kernel for all parameters (as the HF Trainer's default `adamw_torch_fused`): the
            # same update as the per-tensor loop, several times faster on CPU and GPU. Not under
            # fp16's loss scaling: a fused step unscales the gradients only after they are clipped.
            fused=self.device.type in ("cpu", "cuda")
            and getattr(self.trainer.precision_plugin, "scaler", None) is None,
        )
        total_steps = int(self.trainer.estimated_stepping_batches)
        warmup = round(hp.warmup_steps * total_steps) if hp.warmup_steps < 1 else int(hp.warmup_steps)
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def clip_grad_norm_on_cpu(parameters: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """`torch.nn.utils.clip_grad_norm_`, to the bit, without its pass over every gradient when
    the norm is already within `max_norm`: torch multiplies by the clip coefficient clamped to 1.0
    either way (on a GPU, reading the norm back to decide would stall the device; on a CPU it is
    free), and that pass cost a CPU fine-tuning run a few percent of its time."""
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = torch.nn.utils.get_total_norm(grads)
    # torch's clip coefficient, unclamped: scaled by unless it is 1.0 or more (NaN scales too)
    if grads and not float(max_norm / (total_norm + 1e-6)) >= 1.0:
        torch.nn.utils.clip_grads_with_norm_(parameters, max_norm, total_norm)
    return total_norm


def first_subwords(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where each word starts: the mask of first-subword positions `(batch, tokens)`, and for each
    of them its row and its word's index in the row's words (`word_index`)."""
    starts = batch["word_index"] >= 0
    return starts, starts.nonzero(as_tuple=True)[0], batch["word_index"][starts]


def label_weights(
    label_names: Sequence[str], counts: Mapping[str, int], method: Literal["inverse", "inverse_sqrt"]
) -> torch.Tensor:
    """Per-label loss weights from how often each label tags a training word (`counts`):
    `inverse` N / (labels x count), balanced so that every label weighs the same in total;
    `inverse_sqrt` its square root. A label absent from `counts` gets weight 1."""
    total = sum(counts.values())
    weights = torch.tensor(
        [total / (len(label_names) * counts[name]) if counts.get(name) else 1.0 for name in label_names]
    )
    return weights.sqrt() if method == "inverse_sqrt" else weights
