"""What a `Tagger` runs the model with, on a padded batch of windows (`windows.TokenWindower`): by
PyTorch (`TorchModel`) or by ONNX Runtime (`OnnxModel`, from `lit_ner export --onnx`).

Light to import: numpy only. `OnnxModel` never imports torch or transformers (transformers
imports torch as soon as its tokenizers or configs load), so a serving image with the ONNX
backend can leave torch out.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from lit_ner import compat
from lit_ner.errors import LitNerError
from lit_ner.export.hf import TESTED_PRECISION_KEY
from lit_ner.export.onnx import ONNX_FILENAME


class TorchModel:
    """A transformers token-classification model run by PyTorch.

    Args:
        model: the model.
        device: where it runs.
        precision: `"auto"` (the precision `fit` tested the model in, as its export records it,
            bf16 only where the device multiplies in bf16 natively; without a record, bf16
            where the device does, see `bf16_is_native`), `"32"` or `"bf16"` (autocast).
    """

    def __init__(self, model: Any, device: str = "cpu", precision: str = "auto") -> None:
        import torch

        self.device = torch.device(device)
        self.device_type = self.device.type
        self.model = model.to(self.device).eval()
        self.config = model.config
        if precision not in ("auto", "32", "bf16"):
            raise LitNerError(f"precision must be 'auto', '32' or 'bf16', not {precision!r}")
        if precision == "auto":
            # As tested, so that tagging decodes what `fit`'s test decoded (bf16 and fp32 differ
            # in the third digit, which flips a close decision now and then).
            tested = getattr(model.config, TESTED_PRECISION_KEY, None)
            precision = "bf16" if tested != "32" and bf16_is_native(self.device) else "32"
        self.precision = precision

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")
        with torch.inference_mode(), autocast:
            logits = self.model(**{k: torch.from_numpy(v).to(self.device) for k, v in inputs.items()}).logits
        return logits.float().cpu().numpy()


class OnnxModel:
    """A `model.onnx` (from `lit_ner export --onnx`) run by ONNX Runtime, with its folder's
    `config.json` as `config`.

    Args:
        directory: the export folder.
        threads: on a CPU, batches run at once, each on one thread of its own (None: one per
            core the process may use). Single-threaded runs side by side beat every run
            splitting its matmuls over the cores: no hand-offs between threads at each of the
            graph's few hundred small ops (`make bench`, `tagging.onnx_runs`).
    """

    def __init__(self, directory: str | Path, threads: int | None = None) -> None:
        self.path = Path(directory) / ONNX_FILENAME
        if not self.path.is_file():
            raise LitNerError(
                f"{directory}: no {ONNX_FILENAME}; write it with "
                f"`lit_ner export {directory} {directory} --onnx`"
            )
        self.config = read_config(Path(directory))
        self.threads = threads
        self.to("cpu")

    def to(self, device: str) -> OnnxModel:
        """Runs on `device`: `"cpu"`, or `"cuda"` where onnxruntime-gpu is installed."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # Threads that spin between runs steal the CPU from everything else on the machine (the
        # HTTP server, the next batch's tokenisation).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if self.threads is not None and self.threads < 1:
            raise LitNerError(f"threads must be >= 1, not {self.threads}")
        cuda = device.startswith("cuda")
        if cuda and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise LitNerError("device cuda: this onnxruntime has no CUDA provider (install onnxruntime-gpu)")
        if not cuda and device != "cpu":
            raise LitNerError(f"device {device!r}: the onnx backend runs on 'cpu' or 'cuda'")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
        disabled, self.parallel = [], 1
        if not cuda:
            options.intra_op_num_threads = 1
            self.parallel = self.threads or usable_cores()
            # ONNX Runtime's fused SkipLayerNormalization CPU kernel is slower than the Add and
            # LayerNormalization it replaces (onnxruntime 1.32; `make bench`, `tagging.onnx_runs`).
            disabled = ["SkipLayerNormFusion"]
        self.session = onnxruntime.InferenceSession(
            str(self.path), options, providers=providers, disabled_optimizers=disabled
        )
        self.device_type = "cuda" if cuda else "cpu"
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.precision = self.session.get_modelmeta().custom_metadata_map.get("lit_ner_quantization", "32")
        return self

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(["logits"], {name: inputs[name] for name in self.input_names})[0]


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (which `taskset` and cpusets narrow;
    a CPU quota such as `docker --cpus` does not, so set `threads` there), or `os.cpu_count()`
    where the platform has no affinity."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def read_config(directory: Path) -> SimpleNamespace:
    """A model folder's config.json as attributes, without transformers."""
    path = directory / "config.json"
    if not path.is_file():
        raise LitNerError(f"{directory}: no config.json (not a Hugging Face model folder)")
    config = json.loads(path.read_text(encoding="utf-8"))
    config["id2label"] = {int(k): v for k, v in config.get("id2label", {}).items()}
    config.setdefault("num_labels", len(config["id2label"]))
    return SimpleNamespace(**config)


def bf16_is_native(device: Any) -> bool:
    """Whether bf16 matmuls run in hardware here (and so beat fp32): a CUDA GPU that supports
    bf16, or a CPU with AVX512-BF16 or AMX. Elsewhere bf16 is emulated and slower than fp32."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return compat.cpu_has_native_bf16()
    return False
