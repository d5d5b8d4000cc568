"""A trained model leaves lit_ner as a Hugging Face folder: weights, config, tokenizer and a model
card that `transformers.pipeline("token-classification")` loads, plus, in its config, how lit_ner
decodes it (`lit_ner_decoding`, and a CRF's learned scores) and, for a model trained with
word-shape features, their score table (`lit_ner_word_shape_scores`).

`hf_model` is the one way lit_ner's weights become a Hugging Face model, whether they are a live
`TokenClassifier`'s (the export at the end of `fit`) or a checkpoint's (`lit_ner export`, and
tagging a `.ckpt`, through `hf_model_from_checkpoint`).

A model decoded word by word (`valid_bio`, or a CRF), or trained with word-shape features, also
carries the code to tag with it anywhere: the modules of `lit_ner.portable` (`PIPELINE_FILES`)
and `lit_ner_config.py`, a config class that names that pipeline, so that
`pipeline("token-classification", model=EXPORT, trust_remote_code=True)` tags as `lit_ner tag`.
Without `trust_remote_code`, transformers reads the plain config and runs its standard pipeline.

Light to import: torch and transformers are imported by the functions that need them; Lightning
never (a checkpoint is read as plain tensors).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from lit_ner.export.model_card import WORD_LEVEL
from lit_ner.hub import load_tokenizer
from lit_ner.portable.windows import DEFAULT_STRIDE, STRIDE_KEY
from lit_ner.portable.word_decoding import write_decoding
from lit_ner.portable.word_shapes import has_shape_scores, write_shape_scores

EXPORT_DIRNAME = "hf_model"
# config.json's record of the precision `fit` tested the model in ("32" or "bf16"), which the
# Tagger's `precision="auto"` follows, so that tagging decodes as the test did.
TESTED_PRECISION_KEY = "lit_ner_tested_precision"
# The export's remote code: the modules of lit_ner.portable, shipped under these names (an export
# written by an earlier lit_ner keeps the copies it shipped).
PIPELINE_FILES = {
    "pipeline.py": "lit_ner_pipeline.py",
    "word_decoding.py": "word_decoding.py",
    "word_shapes.py": "word_shapes.py",
    "words.py": "words.py",
    "spans.py": "spans.py",
    "windows.py": "windows.py",
}
# An ensemble's model and config classes (`lit_ner ensemble`), shipped as this file.
ENSEMBLE_FILE = "lit_ner_ensemble.py"
CONFIG_CODE = '''"""Written by `lit_ner export`: this model's config and model classes, naming the pipeline in
lit_ner_pipeline.py, so that `pipeline("token-classification", model=..., trust_remote_code=True)`
tags with the model as lit_ner does (its words' shape scores, its word-level decoding). Without
trust_remote_code, transformers loads the plain {config_class} and its standard pipeline, which
takes each subword's argmax of the encoder's logits alone."""

from transformers import {config_class} as BaseConfig, {model_class} as BaseModel


def pipeline_entry():
    return {{
        "impl": "lit_ner_pipeline.LitNerTokenClassificationPipeline",
        "pt": ["AutoModelForTokenClassification"],
        "type": "text",
    }}


class LitNerConfig(BaseConfig):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.custom_pipelines = {{"token-classification": pipeline_entry(), "ner": pipeline_entry()}}

    def to_dict(self):
        # Saved again, the config stays loadable without trust_remote_code.
        config = super().to_dict()
        config.pop("custom_pipelines", None)
        return config


class LitNerForTokenClassification(BaseModel):
    config_class = LitNerConfig
'''


def record_tested_precision(config: Any, trainer_precision: str) -> None:
    """Records in a transformers config the precision Lightning tested the model in
    (`trainer.precision`: "bf16-mixed" and "bf16-true" are "bf16"; anything else, fp16 included,
    which tagging does not run, "32")."""
    setattr(config, TESTED_PRECISION_KEY, "bf16" if str(trainer_precision).startswith("bf16") else "32")


def record_windows(config: Any, tokenizer: Any, max_length: int | None, stride: int) -> None:
    """Records how training cut long sentences into windows, so that tagging cuts the same: a
    `max_length` below the tokenizer's maximum becomes the (saved) tokenizer's
    `model_max_length`, and the stride goes into the config (`windows.STRIDE_KEY`)."""
    if max_length and max_length < tokenizer.model_max_length:
        tokenizer.model_max_length = max_length
    setattr(config, STRIDE_KEY, stride)


# config.json's record of `data.retrieved_context` (the training sentences each sentence was given
# as context), which tagging cannot retrieve: the Tagger says so.
RETRIEVED_CONTEXT_KEY = "lit_ner_retrieved_context"


def record_retrieved_context(config: Any, k: int) -> None:
    if k:
        setattr(config, RETRIEVED_CONTEXT_KEY, k)


def hf_model(parts: Any, decoding: str) -> Any:
    """The Hugging Face token classifier of lit_ner's trained parts, its config telling how lit_ner
    decodes it: `parts` is a `TokenClassifier` or the `model.encoder.ClassifierParts` a checkpoint
    loads into (both hold `model`, `crf` and `word_shapes`); `decoding` is `model.decoding`
    (`argmax` or `valid_bio`; a CRF's model is always `crf`). The config gets `lit_ner_decoding`,
    a CRF's learned `crf_start`, `crf_transitions` and `crf_end`, and the word-shape score table
    (transformers ignores them: `pipeline("ner")` reads the export with argmax)."""
    crf = None
    if parts.crf is not None:
        crf = {name: value.detach().float().cpu().tolist() for name, value in parts.crf.named_parameters()}
    write_decoding(parts.model.config, decoding, crf)
    table = parts.word_shapes.table().cpu().tolist() if parts.word_shapes is not None else None
    write_shape_scores(parts.model.config, table)
    return parts.model


def hf_model_from_checkpoint(
    path: str, trust_remote_code: bool = False, checkpoint: dict[str, Any] | None = None
) -> tuple[Any, Any]:
    """The Hugging Face model (`hf_model`) and tokenizer of a lit_ner checkpoint (read from `path`
    unless already loaded)."""

    from lit_ner.model.checkpoint import load_checkpoint
    from lit_ner.model.encoder import ClassifierParts

    checkpoint = checkpoint if checkpoint is not None else load_checkpoint(path)
    parts = ClassifierParts.from_checkpoint(checkpoint, path, trust_remote_code)
    model = hf_model(parts, checkpoint["hyper_parameters"].get("decoding", "argmax"))
    tokenizer = load_tokenizer(checkpoint["hyper_parameters"]["model_name_or_path"], trust_remote_code)
    data = checkpoint.get("datamodule_hyper_parameters", {})
    record_windows(model.config, tokenizer, data.get("max_length"), data.get("stride", DEFAULT_STRIDE))
    record_retrieved_context(model.config, data.get("retrieved_context", 0))
    return model, tokenizer


def save_hf_model(
    model: Any,
    tokenizer: Any,
    directory: str | Path,
    card: str | None = None,
    onnx: bool = False,
    quantize: str | None = None,
) -> Path:
    """Writes a Hugging Face model folder (safetensors, config with label maps, tokenizer, and
    `card` as its README.md) that `transformers.pipeline("token-classification", model=directory)`
    loads; for a word-level decoded model, the pipeline code (module docstring); with `onnx`,
    `model.onnx` (`quantize="int8"`: quantized).

    The folder is written beside `directory` and swapped in whole, so a kill mid-export leaves
    the previous export (at `directory`, or for the instant of the swap at `.<name>.old`, from
    where the next export restores it)."""
    directory = Path(directory)
    partial = directory.with_name(f".{directory.name}.partial")
    old = directory.with_name(f".{directory.name}.old")
    if old.exists() and not directory.exists():
        old.rename(directory)  # a kill between the two renames below
    shutil.rmtree(partial, ignore_errors=True)
    from lit_ner.portable.ensemble import MODEL_TYPE as ENSEMBLE  # torch is loaded: `model` is a torch model

    is_ensemble = model.config.model_type == ENSEMBLE
    with_code = (
        getattr(model.config, "lit_ner_decoding", "argmax") in WORD_LEVEL
        or has_shape_scores(model.config)
        or is_ensemble
    )
    if is_ensemble:
        model.config.auto_map = {
            "AutoConfig": "lit_ner_ensemble.LitNerEnsembleConfig",
            "AutoModelForTokenClassification": "lit_ner_ensemble.LitNerEnsembleForTokenClassification",
        }
    elif with_code:
        model.config.auto_map = {
            "AutoConfig": "lit_ner_config.LitNerConfig",
            "AutoModelForTokenClassification": "lit_ner_config.LitNerForTokenClassification",
        }
    elif "lit_ner_config" in str(getattr(model.config, "auto_map", "")):
        del model.config.auto_map  # re-exported with another decoding: the plain model again
    model.save_pretrained(partial)  # safetensors: transformers 5 writes nothing else
    tokenizer.save_pretrained(partial)
    if with_code:
        write_pipeline_code(model, partial)
    if onnx:
        from lit_ner.export.onnx import export_onnx

        export_onnx(model, list(tokenizer.model_input_names), partial, quantize)
    if card is not None:
        (partial / "README.md").write_text(card, encoding="utf-8")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    partial.rename(directory)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def write_pipeline_code(model: Any, directory: Path) -> None:
    """The remote code of a word-level decoded model or of one with word features (module
    docstring) into its export folder."""
    import lit_ner.portable

    portable = Path(lit_ner.portable.__file__).parent
    for source, name in PIPELINE_FILES.items():
        shutil.copyfile(portable / source, directory / name)
    from lit_ner.portable.ensemble import MODEL_TYPE as ENSEMBLE

    if model.config.model_type == ENSEMBLE:  # its own classes: portable/ensemble.py
        shutil.copyfile(portable / "ensemble.py", directory / ENSEMBLE_FILE)
        return
    code = CONFIG_CODE.format(
        config_class=transformers_class(type(model.config)), model_class=transformers_class(type(model))
    )
    (directory / "lit_ner_config.py").write_text(code, encoding="utf-8")


def transformers_class(cls: type) -> str:
    """The name of `cls` or of its first base that transformers defines (an export loaded with
    trust_remote_code has lit_ner's subclasses)."""
    return next(c.__name__ for c in cls.__mro__ if c.__module__.startswith("transformers."))
