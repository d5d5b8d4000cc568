"""A trained model leaves lit_ner as a Hugging Face folder: weights, config, tokenizer and a model
card that `transformers.pipeline("token-classification")` loads, plus, in its config, how lit_ner
decodes it (`lit_ner_decoding`, and a CRF's learned scores). From a LightningModule after `fit`,
from a checkpoint or another export (`lit_ner export`), and up to the Hub (`--push_to_hub`).

A model decoded word by word (`valid_bio`, or a CRF), or trained with word-shape features (whose
score table the config carries, `lit_ner_word_shape_scores`), also carries the code to tag with it
anywhere: `lit_ner_pipeline.py`, `word_decoding.py` and `word_shapes.py` (copies of lit_ner's
modules) and `lit_ner_config.py`, a config class that names that pipeline, so that
`pipeline("token-classification", model=EXPORT, trust_remote_code=True)` tags as `lit_ner tag`.
Without `trust_remote_code`, transformers reads the plain config and runs its standard pipeline.

`--onnx` adds `model.onnx` (torch.onnx's dynamo exporter; dynamic batch and sequence axes),
optionally int8 by ONNX Runtime's dynamic quantization, for `Tagger(..., backend="onnx")`.

Light to import: torch, transformers and Lightning are imported by the functions that need them.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lit_ner.errors import LitNerError
from lit_ner.hub import first_line, hub_errors, is_unreachable, resolve_name_or_path
from lit_ner.model_card import WORD_LEVEL, model_card, with_usage

if TYPE_CHECKING:
    import torch

EXPORT_DIRNAME = "hf_model"
# The export's remote code: lit_ner's modules, shipped under these names.
PIPELINE_FILES = {
    "pipeline.py": "lit_ner_pipeline.py",
    "word_decoding.py": "word_decoding.py",
    "word_shapes.py": "word_shapes.py",
}
WORD_SHAPES_KEY = "lit_ner_word_shape_scores"  # config.json: the (shapes, labels) score table
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


def export_module(module: Any, tokenizer: Any, directory: str | Path, card: str | None = None) -> Path:
    """Writes a `TokenClassifier`'s model as a Hugging Face folder (`save_hf_model`), its config
    telling lit_ner how to decode it: `lit_ner_decoding` (`argmax`, `valid_bio` or `crf`) and, for
    the CRF, its learned `crf_start`, `crf_transitions` and `crf_end` (transformers ignores them:
    `pipeline("ner")` reads the export with argmax)."""
    crf = dict(module.crf.named_parameters()) if module.crf is not None else None
    set_decoding(module.model.config, module.hparams.decoding, crf)
    set_word_shapes(
        module.model.config, module.word_shapes.table() if module.word_shapes is not None else None
    )
    return save_hf_model(module.model, tokenizer, directory, card)


def set_word_shapes(config: Any, table: torch.Tensor | None) -> None:
    """Records in a transformers config the word-shape scores a model adds to its logits (the
    `(shapes, labels)` table of `model.WordShapeScores`; None: a model without word features)."""
    from lit_ner.word_shapes import SHAPES, WORD_SHAPES_VERSION

    if table is None:
        for key in (WORD_SHAPES_KEY, "lit_ner_word_shapes", "lit_ner_word_shapes_version"):
            if hasattr(config, key):
                delattr(config, key)
        return
    setattr(config, WORD_SHAPES_KEY, table.detach().float().cpu().tolist())
    config.lit_ner_word_shapes = list(SHAPES)  # the id order, for a reader of config.json
    config.lit_ner_word_shapes_version = WORD_SHAPES_VERSION


def has_word_shapes(config: Any) -> bool:
    return getattr(config, WORD_SHAPES_KEY, None) is not None


def set_decoding(config: Any, decoding: str, crf: dict[str, torch.Tensor] | None = None) -> None:
    """Records in a transformers config how lit_ner decodes the model: `lit_ner_decoding`
    (`argmax`, `valid_bio`, or `crf` when `crf` holds a CRF's `start`, `transitions` and `end`),
    and the CRF's scores as `crf_start`, `crf_transitions`, `crf_end`."""
    config.lit_ner_decoding = "crf" if crf else decoding
    if crf:
        for name in ("start", "transitions", "end"):
            setattr(config, f"crf_{name}", crf[name].detach().float().cpu().tolist())


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
    with_code = getattr(model.config, "lit_ner_decoding", "argmax") in WORD_LEVEL or has_word_shapes(
        model.config
    )
    if with_code:
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
    here = Path(__file__).parent
    for source, name in PIPELINE_FILES.items():
        shutil.copyfile(here / source, directory / name)
    code = CONFIG_CODE.format(
        config_class=transformers_class(type(model.config)), model_class=transformers_class(type(model))
    )
    (directory / "lit_ner_config.py").write_text(code, encoding="utf-8")


def transformers_class(cls: type) -> str:
    """The name of `cls` or of its first base that transformers defines (an export loaded with
    trust_remote_code has lit_ner's subclasses)."""
    return next(c.__name__ for c in cls.__mro__ if c.__module__.startswith("transformers."))


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

    from lit_ner.runtime import ONNX_FILENAME

    if quantize not in (None, "int8"):
        raise LitNerError(f"quantize must be 'int8' or unset, not {quantize!r}")
    input_names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in input_names]

    class Logits(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):  # noqa: ANN001, ANN201
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits

    model = model.float().eval()
    # Eager attention exports as plain MatMul/Softmax; SDPA's export adds slicing and NaN guards
    # that cost ONNX Runtime time for nothing. A model that cannot switch (no
    # `set_attn_implementation`, or transformers declines with a warning) exports as it is.
    attention = getattr(model.config, "_attn_implementation", None)
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
        if getattr(model.config, "_attn_implementation", None) != attention:
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


def model_from_checkpoint(
    path: str, trust_remote_code: bool, checkpoint: dict[str, Any] | None = None
) -> tuple[Any, Any]:
    """The Hugging Face model and tokenizer of a lit_ner checkpoint (read from `path` unless
    already loaded)."""
    from transformers import AutoTokenizer

    from lit_ner.checkpoints import load_checkpoint
    from lit_ner.classifier import WordShapeScores, load_token_classifier

    checkpoint = checkpoint if checkpoint is not None else load_checkpoint(path)
    hparams = checkpoint.get("hyper_parameters", {})
    if "label_names" not in hparams or "model_name_or_path" not in hparams:
        raise LitNerError(f"{path}: not a lit_ner checkpoint (no label_names/model_name_or_path)")
    model = load_token_classifier(hparams["model_name_or_path"], hparams["label_names"], trust_remote_code)
    state = {
        k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")
    }
    model.load_state_dict(state)
    crf = {k.removeprefix("crf."): v for k, v in checkpoint["state_dict"].items() if k.startswith("crf.")}
    set_decoding(model.config, hparams.get("decoding", "argmax"), crf or None)
    shape_weights = {
        k.removeprefix("word_shapes."): v
        for k, v in checkpoint["state_dict"].items()
        if k.startswith("word_shapes.")
    }
    table = None
    if shape_weights:
        dim = hparams.get("word_features_dim", shape_weights["embedding.weight"].shape[1])
        word_shapes = WordShapeScores(dim, len(hparams["label_names"]))
        word_shapes.load_state_dict(shape_weights)
        table = word_shapes.table()
    set_word_shapes(model.config, table)
    name = hparams["model_name_or_path"]
    with hub_errors(f"tokenizer '{name}'"):
        tokenizer = AutoTokenizer.from_pretrained(
            resolve_name_or_path(name), trust_remote_code=trust_remote_code
        )
    return model, tokenizer


def export_checkpoint(
    checkpoint_path: str | Path,
    out_dir: str | Path,
    trust_remote_code: bool = False,
    onnx: bool = False,
    quantize: str | None = None,
) -> Path:
    """`lit_ner export` of a checkpoint: a Hugging Face model folder with a model card (test
    scores from the run's `test_report.json` when the checkpoint sits in a run directory)."""
    from lit_ner.checkpoints import load_checkpoint

    checkpoint = load_checkpoint(checkpoint_path)
    model, tokenizer = model_from_checkpoint(str(checkpoint_path), trust_remote_code, checkpoint)
    report = Path(checkpoint_path).resolve().parent.parent / "test_report.json"
    scores = json.loads(report.read_text())["scores"] if report.is_file() else None
    card = model_card(
        checkpoint.get("hyper_parameters", {}), checkpoint.get("datamodule_hyper_parameters", {}), scores
    )
    card = with_usage(
        card, model.config.lit_ner_decoding, quantize or "32" if onnx else None, has_word_shapes(model.config)
    )
    return save_hf_model(model, tokenizer, out_dir, card, onnx, quantize)


def export_folder(
    source: str | Path, out_dir: str | Path, trust_remote_code: bool = False, onnx: bool = False,
    quantize: str | None = None,
) -> Path:  # fmt: skip
    """`lit_ner export` of an export (or any token-classification folder or Hub id): the same
    model, re-exported with the current pipeline code and, with `onnx`, `model.onnx`; the model
    card is kept, its "Use" section rewritten."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    path = resolve_name_or_path(str(source))
    with hub_errors(f"model '{source}'"):
        model = AutoModelForTokenClassification.from_pretrained(path, trust_remote_code=trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    readme = Path(path) / "README.md"
    card = readme.read_text(encoding="utf-8") if readme.is_file() else "# Token classifier\n"
    decoding = getattr(model.config, "lit_ner_decoding", "argmax")
    card = with_usage(card, decoding, quantize or "32" if onnx else None, has_word_shapes(model.config))
    return save_hf_model(model, tokenizer, out_dir, card, onnx, quantize)


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


def export(
    source: str,
    out_dir: str,
    *,
    onnx: bool = False,
    quantize: Literal["int8"] | None = None,
    trust_remote_code: bool = False,
) -> Path:
    """Writes a Hugging Face model folder (weights, config, tokenizer, model card and, for a model
    decoded word by word, the pipeline code that decodes it so) from a checkpoint or an export.

    Args:
        source: a lit_ner .ckpt, or an export folder (or Hub id) to re-export.
        out_dir: the folder to write (replaced whole if it exists; may be `source` itself).
        onnx: also write model.onnx, for `lit_ner tag --backend onnx` and `lit_ner serve --backend onnx`.
        quantize: "int8": model.onnx with int8 weights (ONNX Runtime's dynamic quantization).
        trust_remote_code: run modelling code that the base model ships on the Hub.

    Returns:
        The folder written.
    """
    if quantize and not onnx:
        raise LitNerError("--quantize applies to the ONNX model: add --onnx true")
    if str(source).endswith(".ckpt"):
        out = export_checkpoint(source, out_dir, trust_remote_code, onnx, quantize)
    else:
        out = export_folder(source, out_dir, trust_remote_code, onnx, quantize)
    print(f"Hugging Face export: {out}" + (f" (with model.onnx, {quantize or 'fp32'})" if onnx else ""))
    return out
