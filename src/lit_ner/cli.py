"""`lit_ner` / `python -m lit_ner`: LightningCLI wiring of `NERDataModule` and `TokenClassifier`.

Typed `__init__` arguments are the whole configuration (see `--print_config`); the two values the
model needs from the data are linked, never typed twice:
- `model.model_name_or_path` -> `data.tokenizer_name_or_path` (when the config is parsed),
- `data.label_names` -> `model.label_names` (once the data module exists and has read its labels).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from lit_ner.data import NERDataModule
from lit_ner.errors import LitNerError
from lit_ner.metrics import format_report
from lit_ner.model import TokenClassifier

EXPORT_DIRNAME = "hf_model"


class LitNerCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("model.model_name_or_path", "data.tokenizer_name_or_path")
        parser.link_arguments("data.label_names", "model.label_names", apply_on="instantiate")
        # Always keep the best checkpoint by validation entity F1 (and the last one, to resume).
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/f1",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "epoch={epoch}-val_f1={val/f1:.4f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=True,
            help="fit only: score the test split with the best checkpoint when training ends",
        )

    def after_fit(self) -> None:
        """Scores the best checkpoint on the test split and exports it in Hugging Face format."""
        trainer, model, data = self.trainer, self.model, self.datamodule
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if self.config[self.subcommand].get("test_after_fit", True) and data.has_split("test"):
            # Loads the best weights into `model` before testing, so the export below is them too.
            trainer.test(model, datamodule=data, ckpt_path=best or None)
        elif best:
            checkpoint = torch.load(best, map_location="cpu", weights_only=True)
            model.load_state_dict(checkpoint["state_dict"])
        self._report("test")
        run_dir = self.run_dir  # a collective: every rank asks before rank 0 alone exports
        if trainer.fast_dev_run or not trainer.is_global_zero:
            return
        export_dir = model.save_hf_model(run_dir / EXPORT_DIRNAME, data.tokenizer)
        print(f"\nbest checkpoint: {best or '(none saved)'}\nHugging Face export: {export_dir}")

    def after_validate(self) -> None:
        self._report("val")

    def after_test(self) -> None:
        self._report("test")

    @property
    def run_dir(self) -> Path:
        """The logger's version directory, else `trainer.default_root_dir` (a DDP collective)."""
        return Path(self.trainer.log_dir or self.trainer.default_root_dir)

    def _report(self, stage: str) -> None:
        """Prints the stage's per-type report and saves it as `<run dir>/<stage>_report.json`."""
        run_dir = self.run_dir
        results = self.model.reports.get(stage)
        if results and self.trainer.is_global_zero:
            mode = self.model.hparams.scoring_mode
            table = format_report(results["report"])
            print(f"\n{stage} entity scores per type (seqeval, {mode} mode):\n{table}")
            run_dir.mkdir(parents=True, exist_ok=True)
            path = run_dir / f"{stage}_report.json"
            path.write_text(json.dumps({"mode": mode, **results}, indent=2) + "\n")
            print(f"saved to {path}")


def cli_main(args: list[str] | None = None) -> LitNerCLI:
    """Runs the CLI on `args` (default: `sys.argv`) and returns it, for use from Python.

    A `LitNerError` (the user's mistake, or an unreachable Hub) ends the process with one line on
    stderr and exit status 2.
    """
    try:
        # Versioned logger directories never collide; without a logger, config.yaml in
        # default_root_dir records the latest run.
        return LitNerCLI(TokenClassifier, NERDataModule, save_config_kwargs={"overwrite": True}, args=args)
    except LitNerError as exc:
        print(f"lit_ner: error: {exc}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    """Entry point of the `lit_ner` console script and of `python -m lit_ner`."""
    cli_main()
