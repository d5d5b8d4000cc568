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


def export_onnx(model: Any, input_names: list[str], directory: Path, quantize: str | None = None) -> Path:
    """`directory/model.onnx`: the model's logits for `input_names` (int64, `(batch, sequence)`,
    both axes dynamic), by torch.onnx's dynamo exporter, checked against the torch model on a
    batch, then (`quantize="int8"`) quantized by ONNX Runtime's dynamic quantization (int8
    weights, activations quantized on the fly: no calibration data)."""
    import numpy as np
    import onnx
    import onnxruntime
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from lit_ner.tagging.runtime import ONNX_FILENAME

    if quantize not in (None, "int8"):
        raise LitNerError(f"quantize must be 'int8' or unset, not {quantize!r}")
    input_names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in input_names]

    class Logits(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits

    model = model.float().eval()
    # Eager attention exports as plain MatMul/Softmax; SDPA's export adds slicing and NaN guards
    # that cost ONNX Runtime time for nothing. A model that cannot switch (no
    # `set_attn_implementation`, or transformers declines with a warning) exports as it is.
    attention = compat.attention_implementation(model)
    if attention not in (None, "eager"):
        with contextlib.suppress(AttributeError, ValueError), quiet_logging():
            model.set_attn_implementation("eager")
    vocab = int(model.config.vocab_size)
    generator = torch.Generator().manual_seed(0)
    example = {
        "input_ids": torch.randint(1000 % vocab, vocab, (2, 11), generator=generator),
        "attention_mask": torch.tensor([[1] * 11, [1] * 7 + [0] * 4]),
        "token_type_ids": torch.zeros(2, 11, dtype=torch.long),
    }
    example = {name: example[name] for name in input_names}
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    path = directory / ONNX_FILENAME
    fp32 = directory / "model.fp32.onnx" if quantize else path
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), quiet_logging():
            warnings.simplefilter("ignore")  # the exporter's progress lines and deprecation notes
            program = torch.onnx.export(
                Logits(model), (), kwargs=example, dynamo=True, input_names=input_names,
                output_names=["logits"], verbose=False,
                dynamic_shapes={name: {0: batch, 1: sequence} for name in input_names},
            )  # fmt: skip
        program.save(str(fp32))
        with torch.inference_mode():
            expected = Logits(model)(**example).numpy()
    finally:
        if compat.attention_implementation(model) != attention:
            with quiet_logging():
                model.set_attn_implementation(attention)
    session = onnxruntime.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {name: value.numpy() for name, value in example.items()})[0]
    if not np.allclose(got, expected, atol=1e-3):
        raise LitNerError(
            f"ONNX export of {type(model).__name__}: its logits differ from torch's by "
            f"{np.abs(got - expected).max():.3g}"
        )
    if quantize:
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
        for leftover in directory.glob("model.fp32.onnx*"):
            leftover.unlink()
    graph = onnx.load(str(path))
    onnx.helper.set_model_props(graph, {"lit_ner_quantization": quantize or "32"})
    onnx.save(graph, str(path))
    return path


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
