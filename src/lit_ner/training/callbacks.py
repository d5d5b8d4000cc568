"""Every Lightning callback lit_ner has: what a run writes, logs and shows.

Each works with a plain `lightning.Trainer`; `lit_ner`'s CLI adds them by default (see `cli.py`):
- `ReportWriter`: per-type report, `<stage>_report.json`, `predictions/<split>.conll` (in the data's
  tag scheme) and plots after `validate` and `test`;
- `PredictionWriter`: `predict`'s `predictions/<split>.conll` and `.jsonl`;
- `LastCheckpoint`: `last.ckpt` every N steps and each epoch, to resume a killed job from;
- `SentenceThroughput`: Lightning's `ThroughputMonitor`, counting sentences and subword tokens;
- `WandbReports`: per-type and sample-prediction tables and plots on a W&B dashboard;
- `NERProgressBar`: the rich progress bar showing loss, learning rate and validation F1;
- `LoggerSaveConfigCallback`: `config.yaml`, and the resolved config in every logger;
- `AugmentationCounts`: what training-data augmentation changed, logged each epoch;
- `TrialPruning`: a `lit_ner search` trial's validation F1 to its study, and its pruning.
"""

from __future__ import annotations

import json
import signal
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, Callback, RichProgressBar, ThroughputMonitor
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.trainer.states import RunningStage
from lightning.pytorch.utilities import rank_zero_info

from lit_ner import compat
from lit_ner.data.datamodule import NERDataModule
from lit_ner.errors import EXIT_RESUMABLE, LitNerError
from lit_ner.files import write_atomically
from lit_ner.formats import write_conll
from lit_ner.model.metrics import STAGE_SPLITS
from lit_ner.plots import SAMPLE_COLUMNS, draw_plots, sample_predictions
from lit_ner.portable.spans import get_entities
from lit_ner.portable.words import joined_words
from lit_ner.scoring import format_report, join_windows
from lit_ner.tag_schemes import TRAINING_SCHEME, from_bio
from lit_ner.training import study
from lit_ner.training.checkpoints import LAST
from lit_ner.training.resume import JOB_FILE, checkpoint_dir, job_id, run_directory
from lit_ner.training.signals import StopSignals, requeue_slurm_job


class ReportWriter(Callback):
    """What `validate` and `test` leave behind, in the run directory (`run_directory`): the
    per-type report printed and written as `<stage>_report.json` (scores, report, WNUT-17 surface
    forms), the scored sentences as `predictions/<split>.conll` (token, gold, predicted: what
    `lit_ner evaluate` scores) and the per-type F1 and confusion PNGs. Validation inside `fit`
    writes nothing (loggers hold its scores); the test after `fit` is written.

    Args:
        output_dir: where the files go (default: the run directory).
        plots: draw the two PNGs (matplotlib, ~0.5 s).
    """

    def __init__(self, output_dir: str | None = None, plots: bool = True) -> None:
        self.output_dir = output_dir
        self.plots = plots

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn != "fit":
            self.write(trainer, pl_module, "val")

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.write(trainer, pl_module, "test")

    def write(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        run_dir = Path(self.output_dir) if self.output_dir else run_directory(trainer)  # a collective
        results = getattr(pl_module, "reports", {}).get(stage)
        if not results or not trainer.is_global_zero:
            return
        mode = pl_module.hparams.scoring_mode
        print(f"\n{stage} entity scores per type (seqeval, {mode} mode):\n{format_report(results['report'])}")
        if results["surface"]:
            surface = results["surface"]["overall"]
            print(
                f"{stage} unique surface forms (WNUT-17): precision {surface['precision']:.4f}, "
                f"recall {surface['recall']:.4f}, f1 {surface['f1']:.4f}"
            )
        saved = {name: results[name] for name in ("scores", "report", "surface")}
        report_path = write_atomically(
            run_dir / f"{stage}_report.json", json.dumps({"mode": mode, **saved}, indent=2) + "\n"
        )
        sentences = results["sentences"]
        split = STAGE_SPLITS[stage]
        if "words" in sentences:
            scheme = data_scheme(trainer)
            path = write_conll(
                run_dir / "predictions" / f"{split}.conll",
                sentences["words"],
                *([from_bio(tags, scheme) for tags in sentences[key]] for key in ("y_true", "y_pred")),
            )
            print(f"predictions: {path} (score them again with: {evaluate_command(path, scheme)})")
        if self.plots:
            images = draw_plots(results, run_dir, stage, split, mode)
            print(f"report and plots: {report_path}, {images[0].name}, {images[1].name}")
        else:
            print(f"report: {report_path}")


class PredictionWriter(BasePredictionWriter):
    """`predict`'s output: the predicted split as `predictions/<split>.conll` (token, gold,
    predicted; what `lit_ner evaluate` scores) and `predictions/<split>.jsonl`, one object per
    sentence in `lit_ner tag`'s form: `{"sentence_id", "text", "entities": [{"entity_group",
    "score", "word", "start", "end"}]}`, the text being the words joined by single spaces and
    each entity a BIO span of words (seqeval's default reading) with its words' mean probability.

    Under DDP every process's predictions are gathered first; rank 0 writes each sentence once
    (the sampler's repeats dropped, a long sentence's windows joined).

    Args:
        output_dir: where `predictions/` goes (default: the run directory).
    """

    def __init__(self, output_dir: str | None = None) -> None:
        super().__init__(write_interval="epoch")
        self.output_dir = output_dir

    def write_on_epoch_end(self, trainer: Any, pl_module: Any, predictions: Any, batch_indices: Any) -> None:
        pieces = [piece for batch in predictions for piece in batch]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, pieces)
            pieces = [piece for part in gathered for piece in part]
        run_dir = Path(self.output_dir) if self.output_dir else run_directory(trainer)
        if not trainer.is_global_zero:
            return
        ids, tags, word_scores, windowed = join_windows(
            [p["sentence_id"] for p in pieces],
            [p["word_offset"] for p in pieces],
            [p["tags"] for p in pieces],
            [[p["word_scores"]] for p in pieces],
            [[p["windowed"]] for p in pieces],
        )
        confidences = []
        for k, (windows, is_windowed) in enumerate(zip(word_scores, windowed)):
            sentence_scores = torch.cat(windows)
            if any(is_windowed):  # a long sentence's windows: decoded again whole, as test decodes it
                tags[k] = pl_module.decode_sentence(sentence_scores)
            confidences.append(pl_module.entity_scores(sentence_scores, tags[k]))
        data = trainer.datamodule
        split = data.hparams.predict_split
        words, gold, scheme = data.words(split), data.tags(split), data_scheme(trainer)
        conll = write_conll(
            run_dir / "predictions" / f"{split}.conll",
            [words[i] for i in ids],
            [from_bio(gold[i], scheme) for i in ids],
            [from_bio(sentence_tags, scheme) for sentence_tags in tags],
        )
        lines = [
            json.dumps(sentence_record(i, words[i], sentence_tags, confidence), ensure_ascii=False)
            for i, sentence_tags, confidence in zip(ids, tags, confidences)
        ]
        jsonl = run_dir / "predictions" / f"{split}.jsonl"
        write_atomically(jsonl, "".join(line + "\n" for line in lines))
        print(f"predictions: {conll} (score them with: {evaluate_command(conll, scheme)}) and {jsonl}")


def data_scheme(trainer: Any) -> str:
    """The tag scheme of the data being scored (`NERDataModule.tag_scheme`): predictions files are
    written in it, gold and predicted tags alike, so the data's own scorer reads them."""
    return getattr(getattr(trainer, "datamodule", None), "tag_scheme", TRAINING_SCHEME)


def evaluate_command(path: Path, scheme: str) -> str:
    return f"lit_ner evaluate {path}" + (f" --tag_scheme {scheme}" if scheme != TRAINING_SCHEME else "")


def sentence_record(
    sentence_id: int, words: Sequence[str], tags: Sequence[str], entity_scores: Sequence[float]
) -> dict:
    """One sentence's predictions as `lit_ner tag` writes a text's: character offsets into the
    words joined by single spaces; `entity_scores` in `get_entities(tags)` order.

    >>> record = sentence_record(0, ["Hi", "New", "York"], ["O", "B-location", "I-location"], [0.7])
    >>> record["text"], record["entities"]
    ('Hi New York', [{'entity_group': 'location', 'score': 0.7, 'word': 'New York', 'start': 3, 'end': 11}])
    """
    text, starts = joined_words(words)
    entities = []
    for (type_, first, last), score in sorted(
        zip(get_entities(list(tags)), entity_scores), key=lambda entity: entity[0][1]
    ):
        start, end = starts[first], starts[last] + len(words[last])
        entities.append(
            {
                "entity_group": type_,
                "score": round(score, 6),
                "word": text[start:end],
                "start": start,
                "end": end,
            }
        )
    return {"sentence_id": sentence_id, "text": text, "entities": entities}


class LastCheckpoint(Callback):
    """Keeps `last.ckpt` (beside the best checkpoints) current: after every training epoch and
    every `every_n_train_steps` optimizer steps, so that a killed job loses at most that many.

    And stops a job asked to stop, resumably: on SIGUSR1 (what SLURM sends ahead of a time limit
    or a preemption, with `sbatch --signal=SIGUSR1@90`) or SIGTERM (what torchrun's elastic agent,
    Kubernetes and most schedulers send), training goes on to the end of the step in progress,
    every process agrees, `last.ckpt` is saved there, and the process exits with status
    `errors.EXIT_RESUMABLE` (75, EX_TEMPFAIL: try again) as the next step begins, without
    testing or exporting. On SIGUSR1 in a SLURM job, rank 0 first asks SLURM to requeue it
    (`scontrol requeue $SLURM_JOB_ID`, `signals.requeue_slurm_job`); when SLURM (or torchrun,
    after a SIGTERM) starts the job again with the same command, `fit` resumes from that
    checkpoint by itself (`resume.restarted_by`). Lightning's own SLURM
    handler saves from inside the signal handler, mid-step, into `default_root_dir`; this one
    saves between steps, into the run's own checkpoint directory, and replaces it during `fit`.

    It is the only writer of `last.ckpt`: Lightning's `ModelCheckpoint(save_last=True)` would
    write the same name, so lit_ner leaves that off (and refuses both at once). Lightning's own
    `ModelCheckpoint` cannot stand in: its step and epoch triggers are mutually exclusive.

    Each save also holds the wall minutes the fit has run so far, over all its processes, so
    that a fit stopped and resumed reports its whole cost (`earlier_minutes`, what the processes
    before this one ran until their last save), not its last part's.

    Args:
        every_n_train_steps: steps between saves within an epoch; 0 saves at epoch ends only.
    """

    def __init__(self, every_n_train_steps: int = 50) -> None:
        self.every_n_train_steps = every_n_train_steps
        self._last_saved_step = -1
        self._signals = StopSignals()
        self._stopping = False  # saved (and requeued): exit at the next step or epoch start
        self._clock = time.perf_counter()
        self.earlier_minutes = 0.0

    def state_dict(self) -> dict[str, float]:
        return {"minutes": self.earlier_minutes + (time.perf_counter() - self._clock) / 60}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        # A resumed fit: its checkpoint's minutes ran before this process started.
        self.earlier_minutes = state_dict.get("minutes", 0.0)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        best = trainer.checkpoint_callback
        if best is not None and best.save_last:
            raise LitNerError(
                "checkpoint.save_last and last_checkpoint both write last.ckpt: leave checkpoint.save_last "
                "off (last_checkpoint keeps last.ckpt current)"
            )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After Lightning has set its own handlers for the fit (after `on_fit_start`): these
        # replace them until training ends, so that Lightning's SIGTERM handling does not also
        # stop the fit (a SIGTERMException: exit status 0, no checkpoint).
        self._stopping = False
        job = job_id()
        if job and trainer.logger is not None and trainer.is_global_zero:
            # Which job's run this is, for its restarts to find (a logger's run directory only:
            # without a logger the checkpoint directory's parent may be shared by many runs).
            write_atomically(Path(checkpoint_dir(trainer)).parent / JOB_FILE, job + "\n")
        self._signals.install()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._signals.restore()
        self._exit_if_stopping()

    # The exit waits for the next step or epoch to begin: by then Lightning has logged the step
    # (and epoch) the checkpoint holds, so the resumed run's logs miss nothing.
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._exit_if_stopping()

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self._exit_if_stopping()

    def _exit_if_stopping(self) -> None:
        if self._stopping:
            raise SystemExit(EXIT_RESUMABLE)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, error: BaseException) -> None:
        self._signals.restore()

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        step = trainer.global_step
        if self.every_n_train_steps and step % self.every_n_train_steps == 0:
            self._save(trainer)
        self._stop_if_asked(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After the epoch's validation, so the best-checkpoint state it holds is current: saved
        # even when the epoch's last step was just saved, since that save preceded the validation.
        self._save(trainer, again=True)
        self._stop_if_asked(trainer, epoch_end=True)

    def _save(self, trainer: L.Trainer, again: bool = False) -> None:
        # A step spans several batches under gradient accumulation: save it once.
        if trainer.fast_dev_run or trainer.sanity_checking:
            return
        if trainer.global_step == self._last_saved_step and not again:
            return
        self._last_saved_step = trainer.global_step
        # The full state (optimizer, loops, callbacks), not weights only: it is what resumes.
        trainer.save_checkpoint(Path(checkpoint_dir(trainer)) / LAST, weights_only=False)

    def _stop_if_asked(self, trainer: L.Trainer, epoch_end: bool = False) -> None:
        loop = trainer.fit_loop
        if not epoch_end and (
            compat.between_accumulated_batches(loop) or loop.epoch_loop.batch_progress.is_last_batch
        ):
            # Not between two optimizer steps (the accumulated gradients are in no checkpoint), or
            # the epoch's validation is still to come: decided at the epoch's end instead, so that
            # the requeue (after which SLURM soon kills the job) comes after the validation.
            return
        # Every process decides together (a signal may reach one process and not yet another), so
        # that all save the same step and none waits alone in a collective.
        asked = torch.tensor(
            [self._signals.asked is not None, self._signals.asked == signal.SIGUSR1],
            dtype=torch.float32,
            device=trainer.strategy.root_device,
        )
        stop, requeue = (trainer.strategy.reduce(asked, reduce_op="sum") > 0).tolist()
        if not stop or self._stopping:
            return
        self._save(trainer)  # the step's (a no-op when it was just saved)
        # On disk before the requeue and before any process exits: the scheduler's next signal
        # (or torchrun's, once another process has exited) may kill this one at once.
        wait = getattr(trainer.strategy.checkpoint_io, "wait", None)
        if wait is not None:
            wait()
        name = "SIGUSR1" if requeue else "SIGTERM"
        where = f"step {trainer.global_step}, epoch {trainer.current_epoch}"
        if requeue and trainer.is_global_zero:
            rank_zero_info(f"{name} at {where}: last.ckpt saved; {requeue_slurm_job()}")
        else:
            rank_zero_info(f"{name} at {where}: last.ckpt saved; resume with --ckpt_path last")
        trainer.strategy.barrier("lit_ner-stop")
        self._stopping = True


def sentences_in(batch: dict[str, torch.Tensor]) -> int:
    return int(batch["input_ids"].size(0))


def tokens_in(batch: dict[str, torch.Tensor]) -> int:
    """Real subword positions, padding excluded."""
    return int(batch["attention_mask"].sum())


class SentenceThroughput(ThroughputMonitor):
    """Lightning's `ThroughputMonitor` set up for NER batches: samples are sentences (windows of
    long ones), items are real subword tokens (padding excluded), so every `log_every_n_steps`
    the loggers get `train/device/samples_per_sec`, `train/device/items_per_sec` and
    `train/device/batches_per_sec` (this process; under DDP also `train/samples_per_sec` etc.,
    all processes together) once `window_size` batches have run, and the same for validation
    and test.

    Args:
        window_size: batches the rates are averaged over.
    """

    def __init__(self, window_size: int = 20) -> None:
        super().__init__(batch_size_fn=sentences_in, length_fn=tokens_in, window_size=window_size)
        self._resumed: dict[str, float] = {}

    # The training totals (batches, samples, items, time) travel in checkpoints, so that a resumed
    # fit's logged totals go on from where the interrupted one's stood.
    def state_dict(self) -> dict[str, float]:
        totals = compat.throughput_totals(self, RunningStage.TRAINING)
        if totals is None:  # not training, or not rank 0 (the monitor runs on rank 0)
            return {}
        started = totals.pop("started")
        return {**totals, "time": time.perf_counter() - started}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self._resumed = dict(state_dict)

    def on_train_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_start(trainer, *args)
        if self._resumed:
            compat.restore_throughput_totals(self, RunningStage.TRAINING, self._resumed)
        self._resumed = {}


class NERProgressBar(RichProgressBar):
    """Lightning's rich progress bar showing what a run is watched for, formatted to read at a
    glance: training loss, learning rate and the last validation entity F1 (every logged value
    stays in the loggers; Lightning's plain bar would show them all). Its own rate (it/s) is
    batches per second; `SentenceThroughput` logs sentences and tokens per second."""

    SHOWN = {
        "train/loss": ("loss", "{:.3f}"),
        "train/lr": ("lr", "{:.2e}"),
        "val/f1": ("val_f1", "{:.4f}"),
    }

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        shown = {
            short: template.format(float(metrics[key]))
            for key, (short, template) in self.SHOWN.items()
            if key in metrics
        }
        if "v_num" in metrics:  # the run's version (or W&B id): which folder this is
            shown["v_num"] = str(metrics["v_num"])
        return shown


class WandbReports(Callback):
    """What a W&B dashboard shows of each validation and test, logged by rank 0 when a
    `WandbLogger` is in use (nothing otherwise): the per-type report as a table; for a fixed set
    of sentences (the split's first `sample_sentences`) the text, the gold and predicted entities
    and how they differ, as a table; and the per-type F1 and entity confusion-matrix images. So the
    dashboard shows what the model learnt sentence by sentence and type by type, epoch after epoch.

    Args:
        sample_sentences: how many sentences the sample-predictions table shows.
        images: log the per-type F1 and confusion-matrix images (drawn with matplotlib, ~0.5 s).
    """

    def __init__(self, sample_sentences: int = 20, images: bool = True) -> None:
        self.sample_sentences = sample_sentences
        self.images = images

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        self._log(trainer, pl_module, "val")

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        self._log(trainer, pl_module, "test")

    def _log(self, trainer: Any, pl_module: Any, stage: str) -> None:
        loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        results = pl_module.reports.get(stage)
        if not loggers or not results or trainer.sanity_checking or not trainer.is_global_zero:
            return
        report = [
            [type_, row["precision"], row["recall"], row["f1"], int(row["support"])]
            for type_, row in results["report"].items()
        ]
        samples = sample_predictions(results["sentences"], self.sample_sentences)
        if samples:
            import wandb

            samples = [[text, wandb.Html(html_, inject=False), *rest] for text, html_, *rest in samples]
        for logger in loggers:
            logger.log_table(
                f"{stage}/per_type", columns=["type", "precision", "recall", "f1", "support"], data=report
            )
            if samples:
                logger.log_table(f"{stage}/samples", columns=SAMPLE_COLUMNS, data=samples)
        if self.images:
            # W&B copies an image into the run when it is logged, so a scratch folder will do.
            with tempfile.TemporaryDirectory(prefix="lit_ner_plots_") as scratch:
                images = draw_plots(
                    results, Path(scratch), stage, STAGE_SPLITS[stage], pl_module.hparams.scoring_mode
                )
                for logger in loggers:
                    for name, path in zip(("per_type_f1", "confusion"), images):
                        logger.log_image(key=f"{stage}/{name}", images=[str(path)])


class LoggerSaveConfigCallback(SaveConfigCallback):
    """Writes `config.yaml` as LightningCLI does, and logs the whole resolved config (every value,
    with the label names the data module linked to the model) to the run's loggers, so that a W&B
    run shows the exact configuration that produced it."""

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        # Lightning's own setup, writing into the run's directory (`run_directory`) rather than
        # `trainer.log_dir`, which for W&B is the folder every run shares.
        if self.already_saved:
            return
        directory = run_directory(trainer) if self.save_to_log_dir else None
        if trainer.is_global_zero:
            if directory is not None:
                # Lightning's own save, but written atomically (lit_ner's CLI always overwrites).
                dumped = self.parser.dump(self.config, skip_none=False)
                write_atomically(directory / self.config_filename, dumped)
            self.save_config(trainer, pl_module, stage)
            self.already_saved = True
        self.already_saved = trainer.strategy.broadcast(self.already_saved)

    def save_config(self, trainer: Any, pl_module: Any, stage: str) -> None:
        import yaml

        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        config.setdefault("model", {})["label_names"] = list(pl_module.label_names)
        for logger in trainer.loggers:
            logger.log_hyperparams({"config": config})


def log_wandb_run_end(
    logger: WandbLogger, summary: dict[str, Any], export_dir: Path, test_scores: dict[str, float] | None
) -> None:
    """The W&B run's summary (what its table of runs shows), and with `log_model` the Hugging Face
    export as a `model` artifact beside Lightning's checkpoint artifact: in offline mode both wait
    in the run (and W&B's staging folder, `WANDB_DATA_DIR`) for `wandb sync`."""
    run = logger.experiment
    run.summary.update(summary)
    if not compat.logs_model(logger):  # the checkpoint artifact follows the same flag
        return
    import wandb

    artifact = wandb.Artifact(
        name=f"hf_model-{run.id}",
        type="model",
        description="lit_ner's Hugging Face export of the best checkpoint (transformers format)",
        metadata={"best_checkpoint": summary["best_checkpoint"], "test": test_scores or {}},
    )
    artifact.add_dir(str(export_dir), policy=logger.add_file_policy)
    run.log_artifact(artifact, aliases=["latest", "best"])


class AugmentationCounts(Callback):
    """Logs what training-data augmentation (`data.augment`) did to each epoch's sentences, from
    the data module's `augmentation_counts`: `train/replaced_mentions`, and a line saying how
    many of the training mentions mention replacement swapped. Nothing without augmentation."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        data = trainer.datamodule
        counts = data.augmentation_counts(trainer.current_epoch) if isinstance(data, NERDataModule) else None
        if not counts:
            return
        # The same draw in every process (a function of the seed and the epoch).
        pl_module.log("train/replaced_mentions", float(counts["replaced"]), sync_dist=True)
        kept = counts["kept_for_length"]
        rank_zero_info(
            f"epoch {trainer.current_epoch}: mention replacement swapped {counts['replaced']:,} of the "
            f"{counts['mentions']:,} training mentions, in {counts['sentences']:,} sentences"
            + (f" ({kept} drawn sentences kept as they were: their windows changed)" if kept else "")
        )


class TrialPruning(Callback):
    """In a `lit_ner search` trial's `fit` (`study.TRIAL_ENV` set by its worker): at each epoch's
    end, reports that epoch's validation F1 to the trial and, when the pruner says so, stops
    training there and writes the trial's `pruned_file`. Rank 0 asks; every rank stops. The
    epoch's last validation is what counts (with `val_check_interval` below 1 there are several;
    the pruner compares trials epoch by epoch)."""

    def __init__(self, report: study.TrialReport) -> None:
        self.report = report
        self._trial: Any = None
        self._validated: tuple[int, float] | None = None  # (epoch, validation F1)

    @classmethod
    def from_environment(cls) -> TrialPruning | None:
        report = study.TrialReport.from_environment()
        return cls(report) if report else None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.is_global_zero and self._trial is None:
            self._trial = study.trial_of(self.report)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        score = trainer.callback_metrics.get("val/f1")
        if not trainer.sanity_checking and score is not None:
            self._validated = (trainer.current_epoch, float(score))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch, score = self._validated or (None, None)
        if epoch != trainer.current_epoch:  # no validation this epoch (check_val_every_n_epoch)
            return
        prune = False
        if trainer.is_global_zero:
            with warnings.catch_warnings():  # an epoch reported before a kill, reported again
                warnings.filterwarnings("ignore", message=".*already reported")
                self._trial.report(score, step=epoch)
            prune = self._trial.should_prune()
        if trainer.strategy.broadcast(prune):
            trainer.should_stop = True
            if trainer.is_global_zero:
                record = {"epoch": epoch + 1, "val_f1": score}
                write_atomically(self.report.pruned_file, json.dumps(record) + "\n")
