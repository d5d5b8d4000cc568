"""The model card (README.md) of an export: what it was trained from and how, its label set, its
test scores, and how to use it, including what transformers' own pipeline does with it when it
cannot tag as lit_ner does."""

from __future__ import annotations

from typing import Any

WORD_LEVEL = ("valid_bio", "crf")  # decodings read word by word, with the export's own code


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
        "model": {k: v for k, v in model_hparams.items() if k not in ("label_names", "label_counts")},
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
    decoding = "crf" if model_hparams.get("head") == "crf" else model_hparams.get("decoding", "argmax")
    return "\n".join(lines) + usage(
        decoding, onnx=None, word_features=bool(model_hparams.get("word_features"))
    )


def usage(decoding: str, onnx: str | None, word_features: bool = False) -> str:
    """The model card's "Use" section: how to load the export, and what transformers' own
    pipeline does with it when it cannot decode as lit_ner does."""
    lines = ["## Use", "", "```python", "from transformers import pipeline"]
    if word_features:
        options = "trust_remote_code=True" + (
            "" if decoding in WORD_LEVEL else ', aggregation_strategy="simple"'
        )
        lines += [
            f'tagger = pipeline("token-classification", model="PATH_OR_REPO", {options})',
            "```",
            "",
            "This model was trained with word-shape features: each word's casing, digits, `@`/`#`, URL "
            "or emoji, read from the original text (its uncased tokenizer cannot see them), add learned "
            "label scores (`lit_ner_word_shape_scores` in config.json). With `trust_remote_code=True` the "
            "pipeline runs the code shipped here (`lit_ner_pipeline.py` and the modules beside it: "
            "numpy and transformers only) and tags as lit_ner does. **Without it**, "
            "transformers' standard pipeline runs the encoder alone, without the shape scores"
            + (
                " and with each subword's argmax instead of lit_ner's word-level decoding"
                if decoding in WORD_LEVEL
                else ""
            )
            + ": its entities differ from the model's, often markedly.",
        ]
    elif decoding in WORD_LEVEL:
        how = "a CRF over the words" if decoding == "crf" else "Viterbi under valid BIO"
        lines += [
            'tagger = pipeline("token-classification", model="PATH_OR_REPO", trust_remote_code=True)',
            "```",
            "",
            f"This model is decoded word by word ({how}), as lit_ner trained and scored it. With "
            "`trust_remote_code=True` the pipeline runs the code shipped here (`lit_ner_pipeline.py` and "
            "the modules beside it: numpy and transformers only) and gives lit_ner's entities, whole words. "
            "**Without it**, transformers loads the same weights into its standard pipeline, which takes "
            "each subword's argmax"
            + (", ignoring the CRF's transition scores" if decoding == "crf" else "")
            + ": it finds different, often more and ill-formed, entities.",
        ]
    else:
        lines += [
            'tagger = pipeline("token-classification", model="PATH_OR_REPO", aggregation_strategy="simple")',
            "```",
        ]
    lines += [
        "",
        "Batched and windowed for long texts: `from lit_ner import Tagger; "
        'Tagger.from_pretrained("PATH_OR_REPO")(texts)`, or `lit_ner tag` and `lit_ner serve`.',
    ]
    if onnx:
        lines += [
            "",
            f"`model.onnx` ({'int8, dynamically quantized' if onnx == 'int8' else 'fp32'}) runs the same "
            'model in ONNX Runtime without torch: `Tagger.from_pretrained("PATH", backend="onnx")`.',
        ]
    return "\n".join(lines) + "\n"


def with_usage(card: str, decoding: str, onnx: str | None, word_features: bool = False) -> str:
    """A card with its "Use" section (the last one) rewritten."""
    head = card[: card.index("## Use")] if "## Use" in card else card.rstrip("\n") + "\n\n"
    return head + usage(decoding, onnx, word_features)
