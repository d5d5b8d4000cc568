"""A trained model leaves lit_ner as a Hugging Face folder: weights, config, tokenizer and a model
card that `transformers.pipeline("token-classification")` loads, plus, in its config, how lit_ner
decodes it (`lit_ner_decoding`, and a CRF's learned scores). From a LightningModule after `fit`,
from a checkpoint (`lit_ner export`), and up to the Hub (`--push_to_hub`).

Light to import: torch, transformers and Lightning are imported by the functions that need them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lit_ner.errors import LitNerError
from lit_ner.hub import first_line, hub_errors, is_unreachable, resolve_name_or_path

if TYPE_CHECKING:
    import torch

EXPORT_DIRNAME = "hf_model"


def export_module(module: Any, tokenizer: Any, directory: str | Path, card: str | None = None) -> Path:
    """Writes a `TokenClassifier`'s model as a Hugging Face folder (`save_hf_model`), its config
    telling lit_ner how to decode it: `lit_ner_decoding` (`argmax`, `valid_bio` or `crf`) and, for
    the CRF, its learned `crf_start`, `crf_transitions` and `crf_end` (transformers ignores them:
    `pipeline("ner")` reads the export with argmax)."""
    crf = dict(module.crf.named_parameters()) if module.crf is not None else None
    set_decoding(module.model.config, module.hparams.decoding, crf)
    return save_hf_model(module.model, tokenizer, directory, card)


def set_decoding(config: Any, decoding: str, crf: dict[str, torch.Tensor] | None = None) -> None:
    """Records in a transformers config how lit_ner decodes the model: `lit_ner_decoding`
    (`argmax`, `valid_bio`, or `crf` when `crf` holds a CRF's `start`, `transitions` and `end`),
    and the CRF's scores as `crf_start`, `crf_transitions`, `crf_end`."""
    config.lit_ner_decoding = "crf" if crf else decoding
    if crf:
        for name in ("start", "transitions", "end"):
            setattr(config, f"crf_{name}", crf[name].detach().float().cpu().tolist())


def save_hf_model(model: Any, tokenizer: Any, directory: str | Path, card: str | None = None) -> Path:
    """Writes a Hugging Face model folder (safetensors, config with label maps, tokenizer, and
    `card` as its README.md) that `transformers.pipeline("token-classification", model=directory)`
    loads.

    The folder is written beside `directory` and swapped in whole, so a kill mid-export leaves
    the previous export (at `directory`, or for the instant of the swap at `.<name>.old`, from
    where the next export restores it)."""
    directory = Path(directory)
    partial = directory.with_name(f".{directory.name}.partial")
    old = directory.with_name(f".{directory.name}.old")
    if old.exists() and not directory.exists():
        old.rename(directory)  # a kill between the two renames below
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)  # safetensors: transformers 5 writes nothing else
    tokenizer.save_pretrained(partial)
    if card is not None:
        (partial / "README.md").write_text(card, encoding="utf-8")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    partial.rename(directory)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def model_from_checkpoint(
    path: str, trust_remote_code: bool, checkpoint: dict[str, Any] | None = None
) -> tuple[Any, Any]:
    """The Hugging Face model and tokenizer of a lit_ner checkpoint (read from `path` unless
    already loaded)."""
    from transformers import AutoTokenizer

    from lit_ner.checkpoints import load_checkpoint
    from lit_ner.model import load_token_classifier

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
    name = hparams["model_name_or_path"]
    with hub_errors(f"tokenizer '{name}'"):
        tokenizer = AutoTokenizer.from_pretrained(
            resolve_name_or_path(name), trust_remote_code=trust_remote_code
        )
    return model, tokenizer


def model_card(
    model_hparams: dict[str, Any], data_hparams: dict[str, Any], scores: dict[str, Any] | None
) -> str:
    """A Hugging Face model card (README.md) for an export: what it was trained from and how,
    its label set, its test scores when known, and how to use it."""
    import yaml

    base = str(model_hparams.get("model_name_or_path", "unknown"))
    dataset = data_hparams.get("dataset_name")
    front = {
        "library_name": "transformers",
        "pipeline_tag": "token-classification",
        "tags": ["token-classification", "ner", "lit_ner"],
        **({"base_model": base} if "/" in base and not base.startswith(("/", ".", "pkg://")) else {}),
        **({"datasets": [dataset]} if dataset else {}),
    }
    config = {
        "model": {k: v for k, v in model_hparams.items() if k != "label_names"},
        "data": {k: v for k, v in data_hparams.items() if v is not None},
    }
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).strip(),
        "---",
        "",
        "# Token classifier fine-tuned with lit_ner",
        "",
        f"Base model: `{base}`. Labels (id order): {', '.join(model_hparams.get('label_names', []))}.",
        "",
        "## Training configuration",
        "",
        "```yaml",
        yaml.safe_dump(config, sort_keys=False).strip(),
        "```",
        "",
    ]
    if scores:
        names = [n for n in ("precision", "recall", "f1", "accuracy", "surface_f1") if n in scores]
        mode = model_hparams.get("scoring_mode", "default")
        lines += [
            f"## Test scores (seqeval entity micro averages, {mode} mode)",
            "",
            "| " + " | ".join(names) + " |",
            "|" + "---|" * len(names),
            "| " + " | ".join(f"{scores[n]:.4f}" for n in names) + " |",
            "",
        ]
    lines += [
        "## Use",
        "",
        "```python",
        "from transformers import pipeline",
        'tagger = pipeline("token-classification", model="PATH_OR_REPO", aggregation_strategy="simple")',
        "# or, batched and windowed for long texts: from lit_ner import Tagger; Tagger.from_pretrained(...)",
        "```",
        "",
    ]
    return "\n".join(lines)


def export_checkpoint(
    checkpoint_path: str | Path, out_dir: str | Path, trust_remote_code: bool = False
) -> Path:
    """`lit_ner export`: a lit_ner checkpoint as a Hugging Face model folder with a model card
    (test scores from the run's `test_report.json` when the checkpoint sits in a run directory)."""
    from lit_ner.checkpoints import load_checkpoint

    checkpoint = load_checkpoint(checkpoint_path)
    model, tokenizer = model_from_checkpoint(str(checkpoint_path), trust_remote_code, checkpoint)
    report = Path(checkpoint_path).resolve().parent.parent / "test_report.json"
    scores = json.loads(report.read_text())["scores"] if report.is_file() else None
    card = model_card(
        checkpoint.get("hyper_parameters", {}), checkpoint.get("datamodule_hyper_parameters", {}), scores
    )
    return save_hf_model(model, tokenizer, out_dir, card)


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


def export(checkpoint: str, out_dir: str, *, trust_remote_code: bool = False) -> Path:
    """Writes a Hugging Face model folder (weights, config, tokenizer, model card) from a checkpoint.

    Args:
        checkpoint: a lit_ner .ckpt.
        out_dir: the folder to write (replaced whole if it exists).
        trust_remote_code: run modelling code that the base model ships on the Hub.

    Returns:
        The folder written.
    """
    out = export_checkpoint(checkpoint, out_dir, trust_remote_code)
    print(f"Hugging Face export: {out}")
    return out
