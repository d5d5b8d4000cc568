"""`lit_ner fit|validate|test|predict`: LightningCLI wiring of `NERDataModule` and `TokenClassifier`.

Typed `__init__` arguments are the whole configuration (see `--print_config`); what the model
and the data module share is linked, never typed twice:
- `model.model_name_or_path` -> `data.tokenizer_name_or_path` and `model.trust_remote_code` ->
  `data.trust_remote_code` (when the config is parsed),
- `data.label_names` -> `model.label_names` and `data.label_counts` -> `model.label_counts`
  (once the data module exists and has read its data).
lit_ner's own commands (`evaluate`, `convert`, `tag`, `serve`, `export`, `summarize`,
`debug-data`) are in the command table of `__main__.py`, which imports this module only for
these four.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from lightning.fabric.plugins import CheckpointIO
from lightning.fabric.plugins.environments import ClusterEnvironment, SLURMEnvironment
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import LightningArgumentParser
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info

from lit_ner import compat
from lit_ner.data.datamodule import NERDataModule
from lit_ner.data.sources import data_name
from lit_ner.errors import LitNerError, exit_with
from lit_ner.export.hf import (
    EXPORT_DIRNAME,
    hf_model,
    record_retrieved_context,
    record_tested_precision,
    record_windows,
    save_hf_model,
)
from lit_ner.export.model_card import model_card
from lit_ner.export.push import push_to_hub
from lit_ner.model.checkpoint import checkpoint_errors, checkpoint_run_dir, load_checkpoint
from lit_ner.model.module import TokenClassifier
from lit_ner.training.callbacks import (
    AugmentationCounts,
    LastCheckpoint,
    LoggerSaveConfigCallback,
    NERProgressBar,
    PredictionWriter,
    ReportWriter,
    SentenceThroughput,
    TrialPruning,
    WandbReports,
    log_wandb_run_end,
)
from lit_ner.training.checkpoints import LAST, SafeCheckpointIO
from lit_ner.training.resume import (
    continue_run,
    find_last_checkpoint,
    job_id,
    restarted_by,
    run_directory,
    runs_root,
)
from lit_ner.training.summary import finished_export, fit_seeds, parse_seeds, write_fit_summary

# Model options that say how to read a trained model, not what it is: given on the command line
# they win over a checkpoint's own.
EVALUATION_OPTIONS = ("decoding", "scoring_mode")


class LitNerCLI(compat.CLIHooks):
    """LightningCLI with lit_ner's links, callbacks, checkpoint IO and end of `fit` (test the best
    checkpoint, export it, summarise the run)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("model.model_name_or_path", "data.tokenizer_name_or_path")
        parser.link_arguments("model.trust_remote_code", "data.trust_remote_code")
        parser.link_arguments("data.label_names", "model.label_names", apply_on="instantiate")
        parser.link_arguments("data.label_counts", "model.label_counts", apply_on="instantiate")
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
        # Sentences and subword tokens per second, in the loggers. Before `last_checkpoint`:
        # callbacks run in this order, and a step's save must hold the step's counts.
        parser.add_lightning_class_args(SentenceThroughput, "throughput")
        # And `last.ckpt` every N steps, so that a killed job resumes with `--ckpt_path last`.
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")
        # `predict` writes predictions/<split>.conll and .jsonl, each sentence once under DDP.
        parser.add_lightning_class_args(PredictionWriter, "prediction_writer")
        # With a WandbLogger: per-type and sample-prediction tables, and plots, each validation.
        parser.add_lightning_class_args(WandbReports, "wandb_reports")
        # `validate` and `test` write the per-type report, predictions and plots.
        parser.add_lightning_class_args(ReportWriter, "report_writer")
        # What data augmentation changed, logged each epoch.
        parser.add_lightning_class_args(AugmentationCounts, "augmentation_counts")
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
        parser.add_argument(
            "--seeds",
            type=str | None,
            default=None,
            help="fit only: one fit per seed, each in its own process, then their mean and standard "
            "deviation: a count (3: seeds 42, 43, 44) or a list (1,7,9); each run's seed_everything is "
            "its seed",
        )
        parser.add_argument(
            "--summary_file",
            type=str | None,
            default=None,
            help="fit only: also write the run's fit_summary.json here (run directory, best checkpoint, "
            "scores)",
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        self._command_line = list(args) if isinstance(args, list) else sys.argv[1:]
        super().parse_arguments(parser, args)

    def parse_ckpt_path(self) -> None:
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
                super().parse_ckpt_path()
        else:
            super().parse_ckpt_path()
        for key, value in chosen.items():
            self.config[subcommand].model[key] = value

    def before_instantiate_classes(self) -> None:
        self._started = time.perf_counter()  # the run's minutes in fit_summary.json count from here
        # Lightning refuses WandbLogger(offline=True, log_model=True) (it predates W&B's offline
        # artifacts); W&B's own offline mode logs artifacts for `wandb sync` to upload. So the
        # flag becomes WANDB_MODE=offline, set before any DDP process is started.
        config = self.config[self.subcommand] if self.subcommand else self.config
        loggers = config.trainer.logger
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            init_args = getattr(logger, "init_args", None)
            name = init_args.get("name") if init_args is not None else None
            if isinstance(name, str) and "{data}" in name:
                # Runs are named after their data (configs/wnut.yaml: "{data}"), so that two data
                # sets never share a run directory by accident.
                data = config.data
                init_args.name = name.replace(
                    "{data}",
                    data_name(data.dataset_name, data.dataset_config_name, data.train_file, data.data_dir),
                )
            if (
                str(getattr(logger, "class_path", "")).endswith("WandbLogger")
                and init_args is not None
                and init_args.get("offline")
                and init_args.get("log_model")
            ):
                init_args.offline = False
                os.environ["WANDB_MODE"] = "offline"

        if self.subcommand == "fit" and config.model.get("teacher"):
            # A folder of runs (configs/offline-distilled.yaml: the base recipe's) teaches with
            # its latest finished fit's export, recorded as such in the run's config.yaml.
            config.model.teacher = finished_export(config.model.teacher)
        if self.subcommand == "fit" and config.data.get("train_with_validation"):
            # Validation is trained on: its F1 chooses nothing, the last epoch is kept and tested.
            config.checkpoint.monitor = None
            config.checkpoint.save_top_k = 1  # without a monitor, Lightning keeps the latest alone
            config.checkpoint.filename = "epoch={epoch}"

    def instantiate_classes(self) -> None:
        if self._seeds() is None:  # `fit --seeds` builds nothing itself: each seed's fit does
            super().instantiate_classes()

    def run_subcommand(self, subcommand: str) -> None:
        seeds = self._seeds()
        if seeds is None:
            return super().run_subcommand(subcommand)
        config = self.config[subcommand].clone()
        config.seeds = None
        self.seeds_summary = fit_seeds(
            self.subcommand_parser(subcommand).dump(config, skip_none=False), parse_seeds(seeds)
        )

    def _seeds(self) -> str | None:
        return self.config.get("fit", {}).get("seeds") if self.subcommand == "fit" else None

    def build_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> Any:
        # Checkpoints written atomically and loaded weights-only, unless the config names its own
        # checkpoint IO.
        plugins = config.get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            # A W&B logger that uploads checkpoints looks for each file as soon as it is saved.
            loggers = config.get("logger")
            loggers = loggers if isinstance(loggers, (list, tuple)) else [loggers]
            uploads = any(isinstance(logger, WandbLogger) and compat.logs_model(logger) for logger in loggers)
            plugins = [*plugins, SafeCheckpointIO(background=not uploads)]
        if SLURMEnvironment.detect() and not any(isinstance(p, ClusterEnvironment) for p in plugins):
            # lit_ner's LastCheckpoint stops and requeues SLURM jobs; Lightning's own requeue
            # (a mid-step hpc_ckpt in default_root_dir, which any later fit there would resume) off.
            plugins = [*plugins, SLURMEnvironment(auto_requeue=False)]
        config = {**config, "plugins": plugins}
        pruning = TrialPruning.from_environment()  # a `lit_ner search` trial reports to its study
        if pruning is not None:
            callbacks = [*callbacks, pruning]
        # lit_ner's rich progress bar (and with it Lightning's rich model summary), unless the
        # progress bar is off or the config names its own.
        named = config.get("callbacks") or []
        named = [*(named if isinstance(named, list) else [named]), *callbacks]
        if config.get("enable_progress_bar", True) is not False and not any(
            isinstance(callback, ProgressBar) for callback in named
        ):
            callbacks = [*callbacks, NERProgressBar()]
        return super().build_trainer(config, callbacks)

    def before_fit(self) -> None:
        """`--ckpt_path last` resumes from the newest `last.ckpt` of the logger's runs (a killed
        job's), continuing that run: its directory, its best checkpoint so far, its logs (see
        `resume.continue_run`). With none yet (a job's first start), training starts afresh.
        A job its launcher restarted (SLURM after a requeue, torchrun's elastic agent) resumes so
        without the flag: the same command line starts it and restarts it."""
        config = self.config_init[self.subcommand]
        ckpt_path = config.get("ckpt_path")
        launcher = restarted_by()
        if launcher and ckpt_path != "last":
            # A restart goes on from where this job stopped; a checkpoint the command names (or
            # none) is only where the job's first start began.
            own = find_last_checkpoint(runs_root(self.trainer), job_id())
            if own is not None or ckpt_path is None:
                rank_zero_info(f"restarted by {launcher}: resuming as with --ckpt_path last")
                ckpt_path = "last"
        if ckpt_path == "last":
            run_root = runs_root(self.trainer)
            # A restarted job resumes its own run (by its job id), never a newer one beside it;
            # otherwise this job's run first, else the newest (another job's is resumed as a new
            # run: see continue_run).
            job = job_id()
            last = find_last_checkpoint(run_root, job) if job else None
            if last is None and not launcher:
                last = find_last_checkpoint(run_root)
            if last is None:
                rank_zero_info(f"--ckpt_path last: no {LAST} under {run_root} yet; training from the start")
                config["ckpt_path"] = None
                return
            rank_zero_info(f"--ckpt_path last: resuming from {last}")
            config["ckpt_path"] = ckpt_path = str(last)
        if ckpt_path and continue_run(self.trainer, ckpt_path):
            rank_zero_info(f"continuing the run in {checkpoint_run_dir(ckpt_path)}")

    def after_fit(self) -> None:
        """Scores the best checkpoint on the test split, exports it in Hugging Face format and
        writes the run's summary."""
        trainer, model, data = self.trainer, self.model, self.datamodule
        config = self.config[self.subcommand]
        checkpoint = trainer.checkpoint_callback
        best = checkpoint.best_model_path if checkpoint else ""
        best_epoch = None
        if best:
            # The best weights, loaded here for the test and the export below rather than by
            # `trainer.test(ckpt_path=best)`: that restore would let a weight-averaging callback
            # (EMAWeightAveraging) still holding its average put the checkpoint's non-averaged
            # weights back, while validation chose the average the checkpoint's state_dict holds.
            # Rank 0 wrote it in the background and waited for it as `fit` ended; the others
            # wait for rank 0 before they read it.
            trainer.strategy.barrier("lit_ner-best-written")
            saved = load_checkpoint(best)
            model.load_state_dict(saved["state_dict"])
            best_epoch = saved.get("epoch", -1) + 1  # counted from 1, as the epochs a person counts
        if config.get("test_after_fit", True) and data.has_split("test"):
            trainer.test(model, datamodule=data)  # ReportWriter writes its report
        run_dir = run_directory(trainer)  # a collective: every rank asks before rank 0 alone exports
        if trainer.fast_dev_run or not trainer.is_global_zero:
            return
        test = model.reports.get("test")
        scores = test["scores"] if test else None
        card = model_card(dict(model.hparams), dict(data.hparams), scores)
        exported = hf_model(model, model.hparams.decoding)
        record_tested_precision(exported.config, trainer.precision)
        record_windows(exported.config, data.tokenizer, data.hparams.max_length, data.hparams.stride)
        record_retrieved_context(exported.config, data.hparams.get("retrieved_context", 0))
        export_dir = save_hf_model(exported, data.tokenizer, run_dir / EXPORT_DIRNAME, card)
        seed = config.get("seed_everything")
        best_score = checkpoint.best_model_score if checkpoint is not None else None
        last = next((each for each in trainer.callbacks if isinstance(each, LastCheckpoint)), None)
        summary = write_fit_summary(
            run_dir, config.get("summary_file"), seed if isinstance(seed, int) else None, best, best_epoch,
            best_score, export_dir, scores, self._started, last.earlier_minutes if last else 0.0,
        )  # fmt: skip
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                log_wandb_run_end(logger, summary, export_dir, scores)
        if config.get("push_to_hub"):
            # After the export is on disk: a failed upload (no network, no token) loses nothing.
            url = push_to_hub(export_dir, config["push_to_hub"], private=config.get("hub_private", True))
            print(f"pushed to the Hub: {url}")


def cli_main(args: list[str] | None = None) -> LitNerCLI:
    """Runs the CLI on `args` (default: `sys.argv`) and returns it, for use from Python.

    A `LitNerError` (the user's mistake, or an unreachable Hub) ends the process with one line on
    stderr and exit status 2.
    """

    def end_process_group() -> None:
        # A DDP process group left to the interpreter's shutdown can abort the process after the
        # work is done (gloo's threads still joinable: "terminate called without an active exception").
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()

    try:
        # Versioned logger directories never collide; without a logger, config.yaml in
        # default_root_dir records the latest run.
        cli = LitNerCLI(
            TokenClassifier,
            NERDataModule,
            save_config_callback=LoggerSaveConfigCallback,
            save_config_kwargs={"overwrite": True},
            args=args,
            parser_kwargs={"prog": "lit_ner"},  # not `__main__.py`, whether run as lit_ner or python -m
        )
    except LitNerError as exc:
        end_process_group()
        exit_with(exc)
    end_process_group()
    return cli
