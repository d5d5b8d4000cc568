"""`lit_ner` / `python -m lit_ner`: LightningCLI wiring of `NERDataModule` and `TokenClassifier`.

Typed `__init__` arguments are the whole configuration (see `--print_config`); the two values the
model needs from the data are linked, never typed twice:
- `model.model_name_or_path` -> `data.tokenizer_name_or_path` (when the config is parsed),
- `data.label_names` -> `model.label_names` (once the data module exists and has read its labels).
"""

from __future__ import annotations

import html
import importlib
import json
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info

from lit_ner.checkpoints import (
    LAST,
    LastCheckpoint,
    SafeCheckpointIO,
    checkpoint_errors,
    find_last_checkpoint,
    load_checkpoint,
)
from lit_ner.data import NERDataModule, write_atomically, write_conll
from lit_ner.errors import LitNerError, exit_with
from lit_ner.hub import first_line, is_unreachable
from lit_ner.inference import PredictionWriter, model_card
from lit_ner.metrics import entity_confusion, format_report
from lit_ner.model import STAGE_SPLITS, TokenClassifier
from lit_ner.plots import plot_entity_confusion, plot_per_type_f1

EXPORT_DIRNAME = "hf_model"
# Model options that say how to read a trained model, not what it is: given on the command line
# they win over a checkpoint's own.
EVALUATION_OPTIONS = ("decoding", "scoring_mode")


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
                directory.mkdir(parents=True, exist_ok=True)
                self.parser.save(
                    self.config,
                    str(directory / self.config_filename),
                    skip_none=False,
                    overwrite=self.overwrite,
                    multifile=self.multifile,
                )
            self.save_config(trainer, pl_module, stage)
            self.already_saved = True
        self.already_saved = trainer.strategy.broadcast(self.already_saved)

    def save_config(self, trainer: Any, pl_module: Any, stage: str) -> None:
        import yaml

        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        config.setdefault("model", {})["label_names"] = list(pl_module.label_names)
        for logger in trainer.loggers:
            logger.log_hyperparams({"config": config})


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
                images = draw_plots(results, Path(scratch), stage, pl_module.hparams.scoring_mode)
                for logger in loggers:
                    for name, path in zip(("per_type_f1", "confusion"), images):
                        logger.log_image(key=f"{stage}/{name}", images=[str(path)])


class Throughput(Callback):
    """Training throughput, logged every step as `train/sentences_per_s` (on the progress bar
    too): sentences over the wall time of the last `window` batches, data loading included,
    counted across all processes. Restarted each epoch, so validation time never counts.

    Args:
        window: how many batches the rate is averaged over.
    """

    def __init__(self, window: int = 20) -> None:
        self.window = window
        self._marks: deque[tuple[float, int]] = deque(maxlen=window + 1)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._marks.clear()
        self._marks.append((time.perf_counter(), 0))

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self._marks:  # resumed mid-epoch: the epoch start was skipped
            self.on_train_epoch_start(trainer, pl_module)
            return
        self._marks.append((time.perf_counter(), int(batch["input_ids"].size(0))))
        elapsed = self._marks[-1][0] - self._marks[0][0]
        sentences = sum(count for _, count in list(self._marks)[1:])
        if elapsed > 0:
            rate = sentences / elapsed * trainer.world_size
            pl_module.log("train/sentences_per_s", rate, on_step=True, on_epoch=False, prog_bar=True)


class NERProgressBar(RichProgressBar):
    """Lightning's rich progress bar showing what a run is watched for, formatted to read at a
    glance: training loss, learning rate, sentences/s and the last validation entity F1 (every
    logged value stays in the loggers; Lightning's plain bar would show them all)."""

    SHOWN = {
        "train/loss": ("loss", "{:.3f}"),
        "train/lr": ("lr", "{:.2e}"),
        "train/sentences_per_s": ("sent/s", "{:.0f}"),
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


SAMPLE_COLUMNS = ["text", "differences", "gold", "predicted", "missed", "spurious"]


def sample_predictions(sentences: dict[str, Any], count: int) -> list[list[str]]:
    """Rows of the sample-predictions table (`SAMPLE_COLUMNS`) for the first `count` sentences:
    the text, the differences highlighted (HTML), then the gold, predicted, missed and spurious
    entities as `text (type)`, exact spans as seqeval matches them."""
    from lit_ner.metrics import get_entities

    rows = []
    for words, gold, predicted in list(
        zip(sentences.get("words", []), sentences["y_true"], sentences["y_pred"])
    )[:count]:
        gold_spans, predicted_spans = (set(get_entities(tags)) for tags in (gold, predicted))

        def listed(spans: set[tuple[str, int, int]]) -> str:
            return "; ".join(
                f"{' '.join(words[start : end + 1])} ({type_})"
                for type_, start, end in sorted(spans, key=lambda span: (span[1], span[0]))
            )

        rows.append(
            [
                " ".join(words),
                highlighted(words, gold_spans, predicted_spans),
                listed(gold_spans),
                listed(predicted_spans),
                listed(gold_spans - predicted_spans),
                listed(predicted_spans - gold_spans),
            ]
        )
    return rows


# Background colours of the highlighted differences: found, missed (gold only), spurious.
FOUND, MISSED_COLOUR, SPURIOUS_COLOUR = "#c7e9c0", "#fdd49e", "#fcbba1"


def highlighted(
    words: Sequence[str], gold: set[tuple[str, int, int]], predicted: set[tuple[str, int, int]]
) -> str:
    """The sentence twice, as HTML: the gold line marks entities found (green) and missed
    (orange), the predicted line entities found (green) and spurious (red), each with its type.
    Spans are `(type, first word, last word)`; within one line they never overlap (BIO)."""

    def line(spans: set[tuple[str, int, int]], other: set[tuple[str, int, int]], colour: str) -> str:
        starts = {start: (type_, end) for type_, start, end in spans}
        parts, i = [], 0
        while i < len(words):
            if i in starts:
                type_, end = starts[i]
                background = FOUND if (type_, i, end) in other else colour
                text = html.escape(" ".join(words[i : end + 1]))
                parts.append(
                    f'<span style="background:{background};padding:1px 3px;border-radius:3px">'
                    f"{text} <sub>{html.escape(type_)}</sub></span>"
                )
                i = end + 1
            else:
                parts.append(html.escape(words[i]))
                i += 1
        return " ".join(parts)

    return (
        '<div style="font-family:sans-serif;line-height:1.9">'
        f"<div><b>gold</b> {line(gold, predicted, MISSED_COLOUR)}</div>"
        f"<div><b>predicted</b> {line(predicted, gold, SPURIOUS_COLOUR)}</div></div>"
    )


def draw_plots(results: dict[str, Any], directory: Path, stage: str, mode: str) -> list[Path]:
    """`<stage>_per_type_f1.png` and `<stage>_confusion.png` of one stage's results."""
    split = STAGE_SPLITS[stage]
    sentences = results["sentences"]
    return [
        plot_per_type_f1(
            results["report"], directory / f"{stage}_per_type_f1.png", f"{split}: per-type scores"
        ),
        plot_entity_confusion(
            *entity_confusion(sentences["y_true"], sentences["y_pred"], mode),
            directory / f"{stage}_confusion.png",
            f"{split}: entity types (exact spans)",
        ),
    ]


class LitNerCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("model.model_name_or_path", "data.tokenizer_name_or_path")
        parser.link_arguments("model.trust_remote_code", "data.trust_remote_code")
        parser.link_arguments("data.label_names", "model.label_names", apply_on="instantiate")
        # Always keep the best checkpoint by validation entity F1; `last_checkpoint` keeps
        # last.ckpt (to resume from) current.
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/f1",
                "checkpoint.mode": "max",
                "checkpoint.save_last": False,
                "checkpoint.filename": "epoch={epoch}-val_f1={val/f1:.4f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        # And `last.ckpt` every N steps, so that a killed job resumes with `--ckpt_path last`.
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")
        # `predict` writes predictions/<split>.conll and .jsonl, each sentence once under DDP.
        parser.add_lightning_class_args(PredictionWriter, "prediction_writer")
        # With a WandbLogger: per-type and sample-prediction tables, and plots, each validation.
        parser.add_lightning_class_args(WandbReports, "wandb_reports")
        # Sentences per second, logged and shown on the progress bar.
        parser.add_lightning_class_args(Throughput, "throughput")
        parser.add_argument(
            "--push_to_hub",
            type=str | None,
            default=None,
            help="fit only: upload the Hugging Face export to this Hub repo id (user/name) after training",
        )
        parser.add_argument("--hub_private", type=bool, default=True, help="create the Hub repo private")
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=True,
            help="fit only: score the test split with the best checkpoint when training ends",
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        self._command_line = list(args) if isinstance(args, list) else sys.argv[1:]
        super().parse_arguments(parser, args)

    def _parse_ckpt_path(self) -> None:
        # LightningCLI reads the checkpoint's hyperparameters into the config before anything
        # else: a missing, truncated or corrupt file is one clear line here, not a traceback.
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        # The checkpoint's hyperparameters override the command line in LightningCLI; but how
        # to read a trained model (decoding, scoring) is the reader's choice when given there:
        # `test --ckpt_path X --model.decoding argmax` scores X both ways without retraining.
        chosen = {}
        if subcommand:
            model = self.config[subcommand].get("model")
            for key in EVALUATION_OPTIONS:
                flag = f"--model.{key}"
                if any(
                    arg == flag or arg.startswith(flag + "=") for arg in getattr(self, "_command_line", [])
                ):
                    chosen[key] = model.get(key)
        if ckpt_path and ckpt_path not in {"last", "best", "hpc", "registry"}:
            with checkpoint_errors(ckpt_path):  # checked first, read once (by LightningCLI)
                super()._parse_ckpt_path()
        else:
            super()._parse_ckpt_path()
        for key, value in chosen.items():
            self.config[subcommand].model[key] = value

    def before_instantiate_classes(self) -> None:
        # Lightning refuses WandbLogger(offline=True, log_model=True) (it predates W&B's offline
        # artifacts); W&B's own offline mode logs artifacts for `wandb sync` to upload. So the
        # flag becomes WANDB_MODE=offline, set before any DDP process is started.
        config = self.config[self.subcommand] if self.subcommand else self.config
        loggers = config.trainer.logger
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            init_args = getattr(logger, "init_args", None)
            if (
                str(getattr(logger, "class_path", "")).endswith("WandbLogger")
                and init_args is not None
                and init_args.get("offline")
                and init_args.get("log_model")
            ):
                init_args.offline = False
                os.environ["WANDB_MODE"] = "offline"

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> Any:
        # Checkpoints written atomically and loaded weights-only, unless the config names its own
        # checkpoint IO.
        plugins = config.get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            config = {**config, "plugins": [*plugins, SafeCheckpointIO()]}
        # lit_ner's rich progress bar (and with it Lightning's rich model summary), unless the
        # progress bar is off or the config names its own.
        named = config.get("callbacks") or []
        named = [*(named if isinstance(named, list) else [named]), *callbacks]
        if config.get("enable_progress_bar", True) is not False and not any(
            isinstance(callback, ProgressBar) for callback in named
        ):
            callbacks = [*callbacks, NERProgressBar()]
        return super()._instantiate_trainer(config, callbacks)

    def before_fit(self) -> None:
        """`--ckpt_path last` resumes from the newest `last.ckpt` of the logger's runs (a killed
        job's), continuing in a new run directory so that no log of the killed run is lost; with
        none yet (a job's first start), training starts afresh."""
        config = self.config_init[self.subcommand]
        if config.get("ckpt_path") != "last":
            return
        trainer = self.trainer
        callback = trainer.checkpoint_callback
        if callback is not None and callback.dirpath:  # the config names the checkpoint directory
            run_root = callback.dirpath
        elif trainer.logger is not None:  # as ModelCheckpoint resolves it: save_dir/name/version
            run_root = os.path.join(
                trainer.logger.save_dir or trainer.default_root_dir, str(trainer.logger.name)
            )
        else:
            run_root = trainer.default_root_dir
        last = find_last_checkpoint(run_root)
        if last is None:
            rank_zero_info(f"--ckpt_path last: no {LAST} under {run_root} yet; training from the start")
            config["ckpt_path"] = None
        else:
            rank_zero_info(f"--ckpt_path last: resuming from {last}")
            config["ckpt_path"] = str(last)

    def after_fit(self) -> None:
        """Scores the best checkpoint on the test split and exports it in Hugging Face format."""
        trainer, model, data = self.trainer, self.model, self.datamodule
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if best:
            # The best weights, loaded here for the test and the export below rather than by
            # `trainer.test(ckpt_path=best)`: that restore would let a weight-averaging callback
            # (EMAWeightAveraging) still holding its average put the checkpoint's non-averaged
            # weights back, while validation chose the average the checkpoint's state_dict holds.
            model.load_state_dict(load_checkpoint(best)["state_dict"])
        if self.config[self.subcommand].get("test_after_fit", True) and data.has_split("test"):
            trainer.test(model, datamodule=data)
        self._report("test")
        run_dir = self.run_dir  # a collective: every rank asks before rank 0 alone exports
        if trainer.fast_dev_run or not trainer.is_global_zero:
            return
        test = model.reports.get("test")
        card = model_card(dict(model.hparams), dict(data.hparams), test["scores"] if test else None)
        export_dir = model.save_hf_model(run_dir / EXPORT_DIRNAME, data.tokenizer, card)
        best_score = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
        # The run in one block at the very end, where a terminal's last screen shows it.
        lines = ["", "lit_ner fit: done"]
        if best_score is not None:
            lines.append(f"  best val/f1: {float(best_score):.4f}")
        if test:
            scores = test["scores"]
            lines.append(
                f"  test f1: {scores['f1']:.4f} (precision {scores['precision']:.4f}, recall "
                f"{scores['recall']:.4f}, accuracy {scores['accuracy']:.4f})"
            )
        lines += [
            f"  run directory: {run_dir}",
            f"  best checkpoint: {best or '(none saved)'}",
            f"  Hugging Face export: {export_dir}",
        ]
        print("\n".join(lines))
        summary = {"best_checkpoint": best, "export": str(export_dir)}
        if best_score is not None:
            summary["best/val_f1"] = float(best_score)
        if test:
            summary.update({f"test/{name}": value for name, value in test["scores"].items()})
        # The run in one file, for `lit_ner summarize` (and `fit --seeds`) to read.
        seed = self.config[self.subcommand].get("seed_everything")
        record = {"seed": seed if isinstance(seed, int) else None, "run_dir": str(run_dir), **summary}
        write_atomically(run_dir / "fit_summary.json", json.dumps(record, indent=2) + "\n")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                log_wandb_run_end(logger, summary, export_dir, test["scores"] if test else None)
        repo_id = self.config[self.subcommand].get("push_to_hub")
        if repo_id:
            # After the export is on disk: a failed upload (no network, no token) loses nothing.
            url = push_to_hub(
                export_dir, repo_id, private=self.config[self.subcommand].get("hub_private", True)
            )
            print(f"pushed to the Hub: {url}")

    def after_validate(self) -> None:
        self._report("val")

    def after_test(self) -> None:
        self._report("test")

    @property
    def run_dir(self) -> Path:
        """The run's directory (`run_directory`; a DDP collective)."""
        return run_directory(self.trainer)

    def _report(self, stage: str) -> None:
        """Prints the stage's per-type report and writes, in the run directory, the report as
        `<stage>_report.json`, the predictions as `predictions/<split>.conll` and two PNGs."""
        run_dir = self.run_dir
        results = self.model.reports.get(stage)
        if not results or not self.trainer.is_global_zero:
            return
        mode = self.model.hparams.scoring_mode
        print(f"\n{stage} entity scores per type (seqeval, {mode} mode):\n{format_report(results['report'])}")
        if results["surface"]:
            surface = results["surface"]["overall"]
            print(
                f"{stage} unique surface forms (WNUT-17): precision {surface['precision']:.4f}, "
                f"recall {surface['recall']:.4f}, f1 {surface['f1']:.4f}"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        saved = {name: results[name] for name in ("scores", "report", "surface")}
        report_path = run_dir / f"{stage}_report.json"
        write_atomically(report_path, json.dumps({"mode": mode, **saved}, indent=2) + "\n")
        sentences = results["sentences"]
        split = STAGE_SPLITS[stage]
        if "words" in sentences:
            path = run_dir / "predictions" / f"{split}.conll"
            write_predictions(path, sentences["words"], sentences["y_true"], sentences["y_pred"])
            print(f"predictions: {path} (score them again with: lit_ner evaluate {path})")
        images = draw_plots(results, run_dir, stage, mode)
        print(f"report and plots: {report_path}, {images[0].name}, {images[1].name}")


def run_directory(trainer: Any) -> Path:
    """Where a run's config, reports, predictions and export go (a DDP collective): the logger's
    version directory, `trainer.default_root_dir` without a logger. W&B's logger gives its shared
    `save_dir` as log directory, so there it is `save_dir/<project>/<run id>`, the folder that
    Lightning keeps the run's checkpoints in."""
    log_dir = trainer.log_dir  # broadcast from rank 0
    logger = trainer.logger
    if isinstance(logger, WandbLogger):
        directory = os.path.join(
            logger.save_dir or trainer.default_root_dir, str(logger.name), str(logger.version)
        )
        return Path(trainer.strategy.broadcast(directory))
    return Path(log_dir or trainer.default_root_dir)


def log_wandb_run_end(
    logger: WandbLogger, summary: dict[str, Any], export_dir: Path, test_scores: dict[str, float] | None
) -> None:
    """The W&B run's summary (what its table of runs shows), and with `log_model` the Hugging Face
    export as a `model` artifact beside Lightning's checkpoint artifact: in offline mode both wait
    in the run (and W&B's staging folder, `WANDB_DATA_DIR`) for `wandb sync`."""
    run = logger.experiment
    run.summary.update(summary)
    if not logger._log_model:  # Lightning keeps the flag private; the checkpoint follows it too
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


def push_to_hub(directory: str | Path, repo_id: str, private: bool = True) -> str:
    """Uploads an export folder to a Hub model repo (created if needed); a `LitNerError` naming
    the local copy when the Hub cannot be reached or refuses."""
    from huggingface_hub import HfApi

    try:
        api = HfApi()
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(folder_path=str(directory), repo_id=repo_id, repo_type="model")
    except Exception as exc:  # network, token, permission: all leave the export where it is
        reason = "the Hub cannot be reached" if is_unreachable(exc) else first_line(exc)
        raise LitNerError(
            f"push to the Hub repo '{repo_id}' failed ({reason}); the export stays at {directory}"
        ) from exc
    return str(getattr(commit, "commit_url", commit))


def write_predictions(
    path: str | Path,
    words: Sequence[Sequence[str]],
    y_true: Sequence[Sequence[str]],
    y_pred: Sequence[Sequence[str]],
) -> Path:
    """Writes `token<TAB>gold<TAB>predicted` lines, a blank line after each sentence: the file
    `lit_ner evaluate PATH` scores."""
    return write_conll(path, words, y_true, y_pred)


def cli_main(args: list[str] | None = None) -> LitNerCLI:
    """Runs the CLI on `args` (default: `sys.argv`) and returns it, for use from Python.

    A `LitNerError` (the user's mistake, or an unreachable Hub) ends the process with one line on
    stderr and exit status 2.
    """
    try:
        # Versioned logger directories never collide; without a logger, config.yaml in
        # default_root_dir records the latest run.
        return LitNerCLI(
            TokenClassifier,
            NERDataModule,
            save_config_callback=LoggerSaveConfigCallback,
            save_config_kwargs={"overwrite": True},
            args=args,
        )
    except LitNerError as exc:
        exit_with(exc)


# lit_ner's own commands beside LightningCLI's: name -> (module, function taking the arguments).
COMMANDS = {
    "evaluate": ("lit_ner.evaluate", "main"),
    "tag": ("lit_ner.inference", "main"),
    "export": ("lit_ner.inference", "export_main"),
    "debug-data": ("lit_ner.debug_data", "main"),
    "summarize": ("lit_ner.seeds", "summarize_main"),
    "fit --seeds": ("lit_ner.seeds", "seeds_main"),
}


def main() -> None:
    """Entry point of the `lit_ner` console script and of `python -m lit_ner`.

    lit_ner's own commands (`COMMANDS`: evaluate, tag, export, debug-data, summarize, and `fit`
    with `--seeds`) go to their modules; every other subcommand is LightningCLI's (`fit`,
    `validate`, `test`, `predict`).
    """
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "fit" and any(arg == "--seeds" or arg.startswith("--seeds=") for arg in sys.argv):
        command = "fit --seeds"
    if command in COMMANDS:
        module, function = COMMANDS[command]
        getattr(importlib.import_module(module), function)(sys.argv[2:])
        return
    cli_main()
