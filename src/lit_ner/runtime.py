"""What a `Tagger` runs: texts cut into model windows (`Windower`, over the `tokenizers` library),
and the model on a padded batch of them, by PyTorch (`TorchModel`) or by ONNX Runtime
(`OnnxModel`, from `lit_ner export --onnx`).

Light to import: numpy and `tokenizers` only. `OnnxModel` and `Windower.from_directory` never
import torch or transformers (transformers imports torch as soon as its tokenizers or configs
load), so a serving image with the ONNX backend can leave torch out.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from lit_ner.errors import LitNerError

ONNX_FILENAME = "model.onnx"


class Windower:
    """A text as the model's windows: the tokenizer's encoding, cut at the model's maximum length
    into windows that share `stride` tokens (as the pipeline's `stride` option does), with the
    character offsets and the special-token mask of each.

    Args:
        tokenizer: a `tokenizers.Tokenizer` (a fast tokenizer's `backend_tokenizer`); a copy is
            configured, the original is left as it is.
        model_max_length: the positions of a window, special tokens included.
        unk_token_id, pad_token_id: the tokenizer's unknown and padding tokens.
        input_names: the model inputs to build (`input_ids`, `attention_mask` and, for BERT,
            `token_type_ids`).
    """

    def __init__(
        self,
        tokenizer: Any,
        model_max_length: int,
        unk_token_id: int | None,
        pad_token_id: int | None,
        input_names: list[str],
    ) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self.tokenizer.no_padding()
        self.model_max_length = model_max_length
        self.unk_token_id = unk_token_id
        self.pad_token_id = pad_token_id or 0
        self.input_names = input_names
        self.stride = 0
        self.num_special_tokens = self.tokenizer.post_processor.num_special_tokens_to_add(False)

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> Windower:
        """From a transformers fast tokenizer."""
        if not getattr(tokenizer, "is_fast", False):
            raise LitNerError("tagging needs a fast tokenizer (for character offsets)")
        return cls(
            tokenizer.backend_tokenizer,
            tokenizer.model_max_length,
            tokenizer.unk_token_id,
            tokenizer.pad_token_id,
            list(tokenizer.model_input_names),
        )

    @classmethod
    def from_directory(cls, directory: str | Path, input_names: list[str]) -> Windower:
        """From a model folder's `tokenizer.json` and `tokenizer_config.json`, without transformers."""
        from tokenizers import Tokenizer

        directory = Path(directory)
        if not (directory / "tokenizer.json").is_file():
            raise LitNerError(f"{directory}: no tokenizer.json (a fast tokenizer is needed)")
        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        config_file = directory / "tokenizer_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}

        def token_id(name: str) -> int | None:
            token = config.get(name)
            token = token.get("content") if isinstance(token, dict) else token
            return tokenizer.token_to_id(token) if token else None

        return cls(
            tokenizer, int(config.get("model_max_length", 512)), token_id("unk_token"), token_id("pad_token"),
            input_names,
        )  # fmt: skip

    @property
    def budget(self) -> int:
        """The text tokens a window holds."""
        return self.model_max_length - self.num_special_tokens

    def set_stride(self, stride: int) -> None:
        if not 0 <= stride < self.budget:
            raise LitNerError(f"stride {stride} must be below the {self.budget} text positions of a window")
        self.stride = stride
        self.tokenizer.enable_truncation(self.model_max_length, stride=stride)

    def __call__(self, text: str) -> list[dict[str, np.ndarray]]:
        """The windows of a text (none for an empty one), each with `input_ids`,
        `attention_mask`, `token_type_ids`, `offsets` and `special` (1 on special tokens)."""
        if not text:
            return []
        encoding = self.tokenizer.encode(text)
        return [
            {
                "input_ids": np.asarray(window.ids, dtype=np.int64),
                "attention_mask": np.asarray(window.attention_mask, dtype=np.int64),
                "token_type_ids": np.asarray(window.type_ids, dtype=np.int64),
                "offsets": np.asarray(window.offsets, dtype=np.int64).reshape(-1, 2),
                "special": np.asarray(window.special_tokens_mask, dtype=np.int64),
            }
            for window in [encoding, *encoding.overflowing]
        ]

    def batch(self, windows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The model inputs of windows, padded on the right to the longest."""
        width = max(len(window["input_ids"]) for window in windows)
        pad = {"input_ids": self.pad_token_id, "attention_mask": 0, "token_type_ids": 0}
        inputs = {
            name: np.full((len(windows), width), pad[name], dtype=np.int64) for name in self.input_names
        }
        for row, window in enumerate(windows):
            for name in self.input_names:
                inputs[name][row, : len(window[name])] = window[name]
        return inputs


class TorchModel:
    """A transformers token-classification model run by PyTorch.

    Args:
        model: the model.
        device: where it runs.
        precision: `"auto"` (bf16 where the device multiplies in bf16, see `bf16_is_native`),
            `"32"` or `"bf16"` (autocast).
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
            precision = "bf16" if bf16_is_native(self.device) else "32"
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
                f"`lit_ner export {directory} {directory} --onnx true`"
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
        # Private helpers of torch.cpu (present since 2.1); a torch without them gets fp32.
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, check, lambda: False)() for check in checks)
    return False
