"""`lit_ner export`: a Hugging Face folder (and `model.onnx`) from a checkpoint or an export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from lit_ner.errors import LitNerError
from lit_ner.export.hf import hf_model_from_checkpoint, save_hf_model
from lit_ner.export.model_card import model_card, with_usage
from lit_ner.files import read_text
from lit_ner.hub import load_token_classifier_model, load_tokenizer, resolve_name_or_path
from lit_ner.portable.word_shapes import has_shape_scores


def export_checkpoint(
    checkpoint_path: str | Path,
    out_dir: str | Path,
    trust_remote_code: bool = False,
    onnx: bool = False,
    quantize: str | None = None,
) -> Path:
    """`lit_ner export` of a checkpoint: a Hugging Face model folder with a model card (test
    scores from the run's `test_report.json` when the checkpoint sits in a run directory)."""
    from lit_ner.model.checkpoint import checkpoint_run_dir, load_checkpoint

    checkpoint = load_checkpoint(checkpoint_path)
    model, tokenizer = hf_model_from_checkpoint(str(checkpoint_path), trust_remote_code, checkpoint)
    report = checkpoint_run_dir(checkpoint_path) / "test_report.json"
    scores = json.loads(read_text(report))["scores"] if report.is_file() else None
    card = model_card(
        checkpoint.get("hyper_parameters", {}), checkpoint.get("datamodule_hyper_parameters", {}), scores
    )
    card = with_usage(
        card,
        model.config.lit_ner_decoding,
        quantize or "32" if onnx else None,
        has_shape_scores(model.config),
    )
    return save_hf_model(model, tokenizer, out_dir, card, onnx, quantize)


def export_folder(
    source: str | Path, out_dir: str | Path, trust_remote_code: bool = False, onnx: bool = False,
    quantize: str | None = None,
) -> Path:  # fmt: skip
    """`lit_ner export` of an export (or any token-classification folder or Hub id): the same
    model, re-exported with the current pipeline code and, with `onnx`, `model.onnx`; the model
    card is kept, its "Use" section rewritten."""
    path = resolve_name_or_path(str(source))
    model = load_token_classifier_model(str(source), trust_remote_code)
    tokenizer = load_tokenizer(str(source), trust_remote_code, mark_word_starts=False)  # kept as saved
    readme = Path(path) / "README.md"
    card = read_text(readme) if readme.is_file() else "# Token classifier\n"
    decoding = getattr(model.config, "lit_ner_decoding", "argmax")
    card = with_usage(card, decoding, quantize or "32" if onnx else None, has_shape_scores(model.config))
    return save_hf_model(model, tokenizer, out_dir, card, onnx, quantize)


def export(
    source: str,
    out_dir: str,
    *,
    onnx: bool = False,
    quantize: Literal["int8"] | None = None,
    trust_remote_code: bool = False,
    push_to_hub: str | None = None,
    hub_private: bool = True,
) -> Path:
    """Writes a Hugging Face model folder from a checkpoint or an export.

    The folder holds the weights, config, tokenizer, model card and, for a model decoded word by
    word, the pipeline code that decodes it so.

    Args:
        source: a lit_ner .ckpt, or an export folder (or Hub id) to re-export.
        out_dir: the folder to write (replaced whole if it exists; may be `source` itself).
        onnx: also write model.onnx, for `lit_ner tag --backend onnx` and `lit_ner serve --backend onnx`.
        quantize: "int8": model.onnx with int8 weights (ONNX Runtime's dynamic quantization).
        trust_remote_code: run modelling code that the base model ships on the Hub.
        push_to_hub: then upload the folder to this Hub model repo (`user/name`, created if
            needed; log in first: `hf auth login` or `HF_TOKEN`). A failed upload is one line,
            and the folder stays.
        hub_private: create that repo private.

    Returns:
        The folder written.
    """
    if quantize and not onnx:
        raise LitNerError("--quantize applies to the ONNX model: add --onnx")
    if str(source).endswith(".ckpt"):
        out = export_checkpoint(source, out_dir, trust_remote_code, onnx, quantize)
    else:
        out = export_folder(source, out_dir, trust_remote_code, onnx, quantize)
    print(f"Hugging Face export: {out}" + (f" (with model.onnx, {quantize or 'fp32'})" if onnx else ""))
    if push_to_hub:
        from lit_ner.export.push import push_to_hub as push

        print(f"pushed to the Hub: {push(out, push_to_hub, private=hub_private)}")
    return out
