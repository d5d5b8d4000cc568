"""Every private attribute lit_ner uses of the libraries it builds on, in one place, and the
versions they were tested with.

Lightning, LitServe, W&B (through Lightning's `WandbLogger`) and Optuna keep some of what lit_ner
needs private: resuming a run in place, stopping between accumulated batches, throughput totals
that survive a restart, a server that stops cleanly, a search trial that another process reports
to. A new release may move any of it, so each package
whose private attributes are used here is checked against the range it was tested with (`require`,
also the bounds in pyproject.toml) and an untested version is refused in one line naming the
range, rather than breaking a resume or a shutdown silently. `LIT_NER_UNTESTED_VERSIONS=1` lets
such a version through with a warning (`make test-latest` runs the suite so).

Importing this module imports none of those packages; each function takes the object it reaches
into. `CLIHooks` (LightningCLI's private steps under public names) is built on first access.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import warnings
from typing import Any

from lit_ner.errors import LitNerError

# distribution -> the versions tested (pyproject.toml's dependency bounds say the same; a test
# holds them equal).
SUPPORTED = {
    "lightning": ">=2.5,<2.7",
    "litserve": ">=0.2.10,<0.3",
    "wandb": ">=0.18,<0.32",
    "optuna": ">=4.0,<6",
}
UNTESTED_VERSIONS = "LIT_NER_UNTESTED_VERSIONS"


@functools.cache
def require(distribution: str) -> str:
    """The installed version of `distribution`, checked against `SUPPORTED`: a `LitNerError` (one
    line naming the range) outside it, a warning with `LIT_NER_UNTESTED_VERSIONS=1`."""
    from packaging.specifiers import SpecifierSet

    version = importlib.metadata.version(distribution)
    supported = SpecifierSet(SUPPORTED[distribution])
    if version not in supported:
        message = (
            f"{distribution} {version} is installed; lit_ner is tested with {distribution}{supported} "
            f"and uses private parts of it (lit_ner.compat): install a version in that range"
        )
        if os.environ.get(UNTESTED_VERSIONS) != "1":
            raise LitNerError(f"{message}, or set {UNTESTED_VERSIONS}=1 to try this one")
        warnings.warn(f"{message}; trying it anyway ({UNTESTED_VERSIONS}=1)", stacklevel=2)
    return version


# --- Lightning ---------------------------------------------------------------------------------


@functools.cache
def _cli_hooks() -> type:
    require("lightning")
    from lightning.pytorch.cli import LightningCLI

    class CLIHooks(LightningCLI):
        """LightningCLI with three private steps of its run under public names, for a subclass to
        override: `parse_ckpt_path` (the checkpoint's hyper-parameters read into the config),
        `run_subcommand` (the trainer's method called) and `build_trainer` (the Trainer made
        from its config and the extra callbacks); and its private `subcommand_parser`."""

        def _parse_ckpt_path(self) -> None:
            self.parse_ckpt_path()

        def parse_ckpt_path(self) -> None:
            super()._parse_ckpt_path()

        def _run_subcommand(self, subcommand: str) -> None:
            self.run_subcommand(subcommand)

        def run_subcommand(self, subcommand: str) -> None:
            super()._run_subcommand(subcommand)

        def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> Any:
            return self.build_trainer(config, callbacks)

        def build_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> Any:
            return super()._instantiate_trainer(config, callbacks)

        def subcommand_parser(self, subcommand: str | None) -> Any:
            """The parser of `subcommand` (the one whose `dump` writes its config)."""
            return self._parser(subcommand)

    return CLIHooks


def __getattr__(name: str) -> Any:
    if name == "CLIHooks":
        return _cli_hooks()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def attached_trainer(module: Any) -> Any:
    """The Trainer a LightningModule is attached to, or None (`module.trainer` raises then)."""
    return module._trainer


def between_accumulated_batches(fit_loop: Any) -> bool:
    """Whether the fit loop is inside a gradient accumulation (the next batch adds to gradients
    that no optimizer step has used yet)."""
    return fit_loop._should_accumulate()


def throughput_totals(monitor: Any, stage: Any) -> dict[str, float] | None:
    """A `ThroughputMonitor`'s running totals for `stage`: batches, samples, lengths, and
    `started`, its `time.perf_counter()` start; None when it is not counting that stage (or not
    on this rank: it counts on rank 0)."""
    if stage not in monitor._t0s:
        return None
    return {
        "batches": monitor._batches[stage],
        "samples": monitor._samples[stage],
        "lengths": monitor._lengths[stage],
        "started": monitor._t0s[stage],
    }


def restore_throughput_totals(monitor: Any, stage: Any, totals: dict[str, float]) -> None:
    """Puts totals (batches, samples, lengths, and `time`, seconds already counted) back into a
    monitor that has started counting `stage`; nothing when it is not counting it."""
    if stage not in monitor._t0s:
        return
    monitor._batches[stage] = int(totals["batches"])
    monitor._samples[stage] = int(totals["samples"])
    monitor._lengths[stage] = int(totals["lengths"])
    monitor._t0s[stage] -= totals["time"]


def logs_model(logger: Any) -> bool:
    """Whether a `WandbLogger` uploads checkpoints (`log_model`, kept private by Lightning)."""
    return bool(logger._log_model)


def resume_wandb_run(logger: Any, run_id: str) -> None:
    """Makes a `WandbLogger` that has not started its run yet continue the W&B run `run_id`."""
    require("wandb")
    logger._id = logger._wandb_init["id"] = run_id
    logger._wandb_init["resume"] = "allow"


def reuse_version(logger: Any, version: int | str) -> None:
    """Makes a CSV or TensorBoard logger that has not written yet log into its version `version`."""
    logger._version = version


def purge_tensorboard_from(logger: Any, step: int) -> None:
    """Makes a TensorBoard logger drop the events of its run from `step` on when it opens it."""
    logger._kwargs["purge_step"] = step


# --- LitServe ----------------------------------------------------------------------------------


def litserve_http_processes() -> list[Any]:
    """The HTTP server processes a `LitServer` started (named `LitServer-...`)."""
    import multiprocessing

    return [p for p in multiprocessing.active_children() if p.name.startswith("LitServer-")]


def stop_litserve(server: Any) -> None:
    """Ends `LitServer.run`'s wait, after which it stops its model workers and returns."""
    server._shutdown_event.set()


# --- Optuna ------------------------------------------------------------------------------------


def optuna_trial(study: Any, number: int) -> Any:
    """The `optuna.Trial` of trial `number` (asked by another process: a `lit_ner search` worker
    asks, its `fit` reports), which Optuna builds only inside its own `optimize` loop."""
    import optuna

    require("optuna")
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    return optuna.trial.Trial(study, trial_id)


# --- the Hugging Face Hub's libraries ------------------------------------------------------------


def set_hub_offline() -> None:
    """Offline mode for huggingface_hub, transformers and datasets in this process and the
    processes it starts: each read `HF_HUB_OFFLINE` from the environment once, at import, into a
    module constant, which is what they consult on every call."""
    from huggingface_hub import constants

    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True
    try:
        import datasets.config
    except ImportError:  # `lit_ner tag` runs without datasets
        return
    datasets.config.HF_HUB_OFFLINE = True


# --- torch and transformers --------------------------------------------------------------------


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX), by torch.cpu's private
    checks (present since torch 2.1); False where they are missing."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def copy_state_dict_metadata(original: Any, copied: Any) -> None:
    """Gives `copied` (a rebuilt copy of `original`, a checkpoint or part of one) the `_metadata`
    of every module state_dict in `original`: the modules' versions, which `load_state_dict`
    reads, kept by torch in a private attribute that rebuilding a dict drops."""
    import copy

    if isinstance(original, dict) and isinstance(copied, dict):
        if hasattr(original, "_metadata"):
            copied._metadata = copy.deepcopy(original._metadata)
        for key, value in original.items():
            copy_state_dict_metadata(value, copied.get(key))
    elif isinstance(original, (list, tuple)) and isinstance(copied, (list, tuple)):
        for value, copied_value in zip(original, copied, strict=False):
            copy_state_dict_metadata(value, copied_value)


def is_compiled(module: Any) -> bool:
    """Whether `nn.Module.compile` has compiled `module` in place."""
    return getattr(module, "_compiled_call_impl", None) is not None


def attention_implementation(model: Any) -> str | None:
    """The attention implementation a transformers model runs (`eager`, `sdpa`, ...), or None."""
    return getattr(model.config, "_attn_implementation", None)
