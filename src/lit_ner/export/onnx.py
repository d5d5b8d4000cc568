"""`model.onnx` beside an export (`lit_ner export --onnx`): torch.onnx's dynamo exporter, dynamic
batch and sequence axes, checked against torch, optionally int8 by ONNX Runtime's dynamic
quantization; what `Tagger(..., backend="onnx")` runs."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

from lit_ner import compat
from lit_ner.errors import LitNerError

ONNX_FILENAME = "model.onnx"  # in the export folder, beside the Hugging Face files


def export_onnx(model: Any, input_names: list[str], directory: Path, quantize: str | None = None) -> Path:
    """`directory/model.onnx`: the model's logits for `input_names` (int64, `(batch, sequence)`,
    both axes dynamic), by torch.onnx's dynamo exporter, checked against the torch model on a
    batch, then (`quantize="int8"`) quantized by ONNX Runtime's dynamic quantization (int8
    weights, activations quantized on the fly: no calibration data)."""
    import onnx

    # Imported before any work (the check and the quantizer use it): without the `onnx` extra
    # the export fails at once, not after exporting.
    import onnxruntime.quantization  # noqa: F401
    import torch

    if quantize not in (None, "int8"):
        raise LitNerError(f"quantize must be 'int8' or unset, not {quantize!r}")
    input_names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in input_names]
    model = model.float().eval()
    attention = switch_to_eager_attention(model)
    example = example_inputs(model, input_names)
    path = directory / ONNX_FILENAME
    fp32 = directory / "model.fp32.onnx" if quantize else path
    try:
        dynamo_export(logits_only(model), example, fp32)
        with torch.inference_mode():
            expected = logits_only(model)(**example).numpy()
    finally:
        if compat.attention_implementation(model) != attention:
            with quiet_logging():
                model.set_attn_implementation(attention)
    check_against_torch(fp32, example, expected, type(model).__name__)
    if quantize:
        quantize_int8(fp32, path)
        for leftover in directory.glob("model.fp32.onnx*"):
            leftover.unlink()
    graph = onnx.load(str(path))
    onnx.helper.set_model_props(graph, {"lit_ner_quantization": quantize or "32"})
    onnx.save(graph, str(path))
    return path


def logits_only(model: Any) -> Any:
    """The model as a module that takes the inputs as arguments and returns its logits alone: what
    the exporter traces."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits

    return Logits(model)


def switch_to_eager_attention(model: Any) -> str | None:
    """Switches the model to eager attention where it can, and returns the attention it had (to
    switch back to after the export)."""
    # Eager attention exports as plain MatMul/Softmax; SDPA's export adds slicing and NaN guards
    # that cost ONNX Runtime time for nothing. A model that cannot switch (no
    # `set_attn_implementation`, or transformers declines with a warning) exports as it is.
    attention = compat.attention_implementation(model)
    if attention not in (None, "eager"):
        with contextlib.suppress(AttributeError, ValueError), quiet_logging():
            model.set_attn_implementation("eager")
    return attention


def example_inputs(model: Any, input_names: list[str]) -> dict[str, Any]:
    """A fixed batch of two rows, the second padded, to trace and check the export on (its own
    seeded generator: the global RNG is left alone)."""
    import torch

    vocab = int(model.config.vocab_size)
    generator = torch.Generator().manual_seed(0)
    example = {
        "input_ids": torch.randint(1000 % vocab, vocab, (2, 11), generator=generator),
        "attention_mask": torch.tensor([[1] * 11, [1] * 7 + [0] * 4]),
        "token_type_ids": torch.zeros(2, 11, dtype=torch.long),
    }
    return {name: example[name] for name in input_names}


def dynamo_export(logits: Any, example: dict[str, Any], fp32: Path) -> None:
    """Exports `logits` (`logits_only`) to `fp32` by torch.onnx's dynamo exporter, the batch and
    sequence axes of every input dynamic."""
    import torch

    input_names = list(example)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), quiet_logging():
        warnings.simplefilter("ignore")  # the exporter's progress lines and deprecation notes
        program = torch.onnx.export(
            logits, (), kwargs=example, dynamo=True, input_names=input_names,
            output_names=["logits"], verbose=False,
            dynamic_shapes={name: {0: batch, 1: sequence} for name in input_names},
        )  # fmt: skip
    program.save(str(fp32))


def check_against_torch(fp32: Path, example: dict[str, Any], expected: Any, model_name: str) -> None:
    """Refuses an export whose logits on `example`, run by ONNX Runtime, differ from torch's."""
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {name: value.numpy() for name, value in example.items()})[0]
    if not np.allclose(got, expected, atol=1e-3):
        raise LitNerError(
            f"ONNX export of {model_name}: its logits differ from torch's by "
            f"{np.abs(got - expected).max():.3g}"
        )


def quantize_int8(fp32: Path, path: Path) -> None:
    """`path`: the fp32 model at `fp32` with its MatMul weights int8 (ONNX Runtime's dynamic
    quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # MatMul weights only, one scale per output channel: per-tensor scales (the default) cost
    # the offline recipe's model ~1.7 points of test F1, per-channel ones a few tenths; the
    # embeddings stay fp32 (`make bench`: tagging.int8_choices, docs/tagging.md).
    with quiet_logging():
        quantize_dynamic(
            str(fp32),
            str(path),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )


@contextlib.contextmanager
def quiet_logging() -> Any:
    """The exporter's and the quantizer's log lines (skipped torchvision ops, advice to
    pre-process) held back: warnings and below."""
    import logging

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)
