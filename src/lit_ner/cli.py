"""`lit_ner` / `python -m lit_ner`: LightningCLI wiring of `NERDataModule` and `TokenClassifier`.

Typed `__init__` arguments are the whole configuration (see `--print_config`); the two values the
model needs from the data are linked, never typed twice:
- `model.model_name_or_path` -> `data.tokenizer_name_or_path` (when the config is parsed),
- `data.label_names` -> `model.label_names` (once the data module exists and has read its labels).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
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


class LoggerSaveConfigCallback(SaveConfigCallback):
    """Writes `config.yaml` as LightningCLI does, and logs the whole resolved config (every value,
    with the label names the data module linked to the model) to the run's loggers, so that a W&B
    run shows the exact configuration that produced it."""

    def save_config(self, trainer: Any, pl_module: Any, stage: str) -> None:
        import yaml

        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        config.setdefault("model", {})["label_names"] = list(pl_module.label_names)
        for logger in trainer.loggers:
            logger.log_hyperparams({"config": config})


class WandbTables(Callback):
    """W&B tables, logged by rank 0 after every validation and test when a `WandbLogger` is in
    use (nothing otherwise): the per-type report, and for a fixed set of sentences (the split's
    first `sample_sentences`) the text, the gold and predicted entities and how they differ, so
    that the dashboard shows what the model learnt sentence by sentence, epoch after epoch.

    Args:
        sample_sentences: how many sentences the sample-predictions table shows.
    """

    def __init__(self, sample_sentences: int = 20) -> None:
        self.sample_sentences = sample_sentences

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        self._log_tables(trainer, pl_module, "val")

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        self._log_tables(trainer, pl_module, "test")

    def _log_tables(self, trainer: Any, pl_module: Any, stage: str) -> None:
        loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        results = pl_module.reports.get(stage)
        if not loggers or not results or trainer.sanity_checking or not trainer.is_global_zero:
            return
        from seqeval.metrics.sequence_labeling import get_entities

        report = [
            [type_, row["precision"], row["recall"], row["f1"], int(row["support"])]
            for type_, row in results["report"].items()
        ]
        sentences = results["sentences"]
        samples = []
        for words, gold, predicted in list(
            zip(sentences.get("words", []), sentences["y_true"], sentences["y_pred"])
        )[: self.sample_sentences]:
            spans = [
                {(" ".join(words[start : end + 1]), type_) for type_, start, end in get_entities(tags)}
                for tags in (gold, predicted)
            ]
            samples.append(
                [
                    " ".join(words),
                    listed(spans[0]),
                    listed(spans[1]),
                    listed(spans[0] - spans[1]),  # missed
                    listed(spans[1] - spans[0]),  # spurious
                ]
            )
        for logger in loggers:
            logger.log_table(
                f"{stage}/per_type", columns=["type", "precision", "recall", "f1", "support"], data=report
            )
            if samples:
                logger.log_table(
                    f"{stage}/samples",
                    columns=["text", "gold", "predicted", "missed", "spurious"],
                    data=samples,
                )


def listed(entities: set[tuple[str, str]]) -> str:
    """Entities as `text (type); ...`, sorted: one cell of the sample-predictions table."""
    return "; ".join(f"{text} ({type_})" for text, type_ in sorted(entities))


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
        # With a WandbLogger: the per-type report and sample predictions as W&B tables.
        parser.add_lightning_class_args(WandbTables, "wandb_tables")
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

    def _parse_ckpt_path(self) -> None:
        # LightningCLI reads the checkpoint's hyperparameters into the config before anything
        # else: a missing, truncated or corrupt file is one clear line here, not a traceback.
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and ckpt_path not in {"last", "best", "hpc", "registry"}:
            with checkpoint_errors(ckpt_path):  # checked first, read once (by LightningCLI)
                super()._parse_ckpt_path()
            return
        super()._parse_ckpt_path()

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> Any:
        # Checkpoints written atomically and loaded weights-only, unless the config names its own
        # checkpoint IO.
        plugins = config.get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            config = {**config, "plugins": [*plugins, SafeCheckpointIO()]}
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
        if self.config[self.subcommand].get("test_after_fit", True) and data.has_split("test"):
            # Loads the best weights into `model` before testing, so the export below is them too.
            trainer.test(model, datamodule=data, ckpt_path=best or None)
        elif best:
            checkpoint = load_checkpoint(best)
            model.load_state_dict(checkpoint["state_dict"])
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
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):  # the run's summary: what its table of runs shows
                logger.experiment.summary.update(summary)
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
        """The logger's version directory, else `trainer.default_root_dir` (a DDP collective)."""
        return Path(self.trainer.log_dir or self.trainer.default_root_dir)

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
        images = [
            plot_per_type_f1(
                results["report"], run_dir / f"{stage}_per_type_f1.png", f"{split}: per-type scores"
            ),
            plot_entity_confusion(
                *entity_confusion(sentences["y_true"], sentences["y_pred"], mode),
                run_dir / f"{stage}_confusion.png",
                f"{split}: entity types (exact spans)",
            ),
        ]
        for logger in self.trainer.loggers:
            if hasattr(logger, "log_image"):  # W&B (and other loggers that take images)
                logger.log_image(key=f"{stage}/plots", images=[str(path) for path in images])
        print(f"report and plots: {report_path}, {images[0].name}, {images[1].name}")


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


def main() -> None:
    """Entry point of the `lit_ner` console script and of `python -m lit_ner`.

    `lit_ner evaluate ...` scores prediction files (see `lit_ner.evaluate`); every other
    subcommand is LightningCLI's (`fit`, `validate`, `test`, `predict`).
    """
    if sys.argv[1:2] == ["evaluate"]:
        from lit_ner.evaluate import main as evaluate_main

        evaluate_main(sys.argv[2:])
        return
    if sys.argv[1:2] == ["tag"]:
        from lit_ner.inference import main as tag_main

        tag_main(sys.argv[2:])
        return
    if sys.argv[1:2] == ["export"]:
        from lit_ner.inference import export_main

        export_main(sys.argv[2:])
        return
    cli_main()
