"""`lit_ner ensemble`: several fits of one recipe (the seeds) as one exported model, by averaging
their logits (an ensemble, `portable.ensemble`: every member runs) or their weights (a model soup:
one model the size of each, Wortsman et al. 2022), tagged, served and exported to ONNX as any
export is."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from lit_ner.errors import LitNerError
from lit_ner.export.hf import TESTED_PRECISION_KEY, hf_model_from_checkpoint, save_hf_model
from lit_ner.export.model_card import with_usage
from lit_ner.portable.windows import STRIDE_KEY
from lit_ner.portable.word_decoding import crf_scores, write_decoding
from lit_ner.portable.word_shapes import VERSION_KEY, has_shape_scores, shape_scores, write_shape_scores

# What a member's config records of lit_ner's training and decoding: the ensemble's own config
# holds the pooled values, the member config the architecture alone.
LIT_NER_KEYS = ("lit_ner_", "crf_", "auto_map", "architectures", "custom_pipelines")


def ensemble_model(
    checkpoints: list[str], trust_remote_code: bool = False, check_only: bool = False
) -> tuple[Any, Any]:
    """The ensemble of lit_ner checkpoints of one architecture, tokenizer and label set, and the
    tokenizer: its config holds the mean CRF scores and word-shape table of the members. With
    `check_only`, the checks alone (that the checkpoints are fits of one recipe)."""
    import numpy as np

    from lit_ner.portable.ensemble import LitNerEnsembleConfig, LitNerEnsembleForTokenClassification

    if len(checkpoints) < 2:
        raise LitNerError(f"an ensemble needs at least 2 checkpoints, not {len(checkpoints)}")
    members = [hf_model_from_checkpoint(str(path), trust_remote_code) for path in checkpoints]
    (first, tokenizer), configs = members[0], [model.config for model, _ in members]

    def architecture(config: Any) -> dict[str, Any]:
        return {k: v for k, v in config.to_dict().items() if not k.startswith(LIT_NER_KEYS)}

    member, vocabulary = architecture(first.config), tokenizer.get_vocab()
    for path, (model, member_tokenizer) in zip(checkpoints[1:], members[1:]):
        other = architecture(model.config)
        differences = sorted(
            key
            for key in {*member, *other}
            if member.get(key) != other.get(key) and key not in ("_name_or_path", "transformers_version")
        )
        if differences or member_tokenizer.get_vocab() != vocabulary:
            what = f"config ({', '.join(differences[:4])})" if differences else "tokenizer vocabulary"
            raise LitNerError(
                f"{path}: its {what} differs from {checkpoints[0]}'s; an ensemble's members are fits "
                "of one recipe (the same encoder and labels)"
            )
    for key in (STRIDE_KEY, VERSION_KEY):
        values = {str(getattr(config, key, None)) for config in configs}
        if len(values) > 1:
            raise LitNerError(
                f"the checkpoints differ in {key} ({', '.join(sorted(values))}): one recipe's fits"
            )
    if len({tokenizer.model_max_length for _, tokenizer in members}) > 1:
        raise LitNerError("the checkpoints were trained with different data.max_length: one recipe's fits")
    decodings = {getattr(config, "lit_ner_decoding", "argmax") for config in configs}
    if len(decodings) > 1:
        raise LitNerError(
            f"the checkpoints decode differently ({', '.join(sorted(decodings))}): one recipe's fits"
        )
    decoding = decodings.pop()
    tables = [shape_scores(config, config.num_labels) for config in configs]
    if any((table is None) != (tables[0] is None) for table in tables):
        raise LitNerError("some checkpoints were trained with word features and some not: one recipe's fits")

    if check_only:
        return None, None
    config = LitNerEnsembleConfig(
        member=member, size=len(members), id2label=first.config.id2label, label2id=first.config.label2id
    )
    crfs = [crf_scores(c) for c in configs]
    mean_crf = (
        {
            name: np.mean([crf[name] for crf in crfs], axis=0).tolist()
            for name in ("start", "transitions", "end")
        }
        if decoding == "crf"
        else None
    )
    write_decoding(config, decoding, mean_crf)
    write_shape_scores(config, None if tables[0] is None else np.mean(tables, axis=0).tolist())
    for key in (STRIDE_KEY, TESTED_PRECISION_KEY):
        setattr(config, key, getattr(first.config, key, None))
    model = LitNerEnsembleForTokenClassification(config)
    for slot, (member_model, _) in zip(model.members, members):
        slot.load_state_dict(member_model.state_dict())
    return model.eval(), tokenizer


def soup_model(checkpoints: list[str], trust_remote_code: bool = False) -> tuple[Any, Any]:
    """One model whose every weight (encoder, head, CRF, word-shape embedding) is the mean of the
    checkpoints', and its tokenizer. The checkpoints must hold the same weights by name and shape."""
    import torch

    from lit_ner.model.checkpoint import load_checkpoint

    ensemble_model(checkpoints, trust_remote_code, check_only=True)
    loaded = [load_checkpoint(path) for path in checkpoints]
    states = [checkpoint["state_dict"] for checkpoint in loaded]
    for path, state in zip(checkpoints[1:], states[1:]):
        shapes = {name: tuple(tensor.shape) for name, tensor in state.items()}
        if shapes != {name: tuple(tensor.shape) for name, tensor in states[0].items()}:
            raise LitNerError(
                f"{path}: its weights differ from {checkpoints[0]}'s in name or shape; a soup averages "
                "fits of one recipe"
            )
    averaged = {
        name: torch.stack([state[name].float() for state in states]).mean(dim=0).to(tensor.dtype)
        if tensor.is_floating_point()
        else tensor  # counters and ids: the first's
        for name, tensor in states[0].items()
    }
    return hf_model_from_checkpoint(checkpoints[0], trust_remote_code, {**loaded[0], "state_dict": averaged})


def ensemble(
    *,
    checkpoints: list[str],
    out_dir: str,
    average: Literal["logits", "weights"] = "logits",
    onnx: bool = False,
    trust_remote_code: bool = False,
) -> Path:
    """Writes one export of several fits of one recipe, their logits or their weights averaged.

    An ensemble's logits are the mean of theirs (a CRF's scores and the word-shape tables averaged
    in its config); a soup's weights are the mean of theirs. Either way `lit_ner tag`, the Tagger,
    `serve`, ONNX Runtime and `pipeline(..., trust_remote_code=True)` run it as one model.

    Args:
        checkpoints: lit_ner .ckpt files of one recipe (one encoder, tokenizer, label set and
            head), e.g. the best checkpoints of `fit --seeds 3`; on the command line one
            `--checkpoints+=PATH` each (or `--checkpoints "[a.ckpt,b.ckpt]"`).
        out_dir: the folder to write (replaced whole if it exists).
        average: `"logits"`: an ensemble (every member runs: N times the compute); `"weights"`:
            a model soup (one model; fits from one pre-trained encoder usually share a basin,
            but heads initialised by different seeds may not average well: measure it).
        onnx: also write model.onnx (an ensemble's members in one graph).
        trust_remote_code: run modelling code that the base model ships on the Hub.

    Returns:
        The folder written.
    """
    if average not in ("logits", "weights"):
        raise LitNerError(f"average must be 'logits' or 'weights', not {average!r}")
    build = ensemble_model if average == "logits" else soup_model
    model, tokenizer = build(checkpoints, trust_remote_code)
    listed = "\n".join(f"- `{path}`" for path in checkpoints)
    kind = "Ensemble" if average == "logits" else "Model soup"
    card = (
        f"# {kind} of {len(checkpoints)} token classifiers\n\nThe mean of the {average} of these lit_ner "
        f"checkpoints (`lit_ner ensemble --average {average}`):\n\n{listed}\n"
    )
    card = with_usage(
        card, model.config.lit_ner_decoding, "32" if onnx else None, has_shape_scores(model.config)
    )
    out = save_hf_model(model, tokenizer, out_dir, card, onnx)
    print(f"{kind.lower()} of {len(checkpoints)} checkpoints: {out}" + (" (with model.onnx)" if onnx else ""))
    return out
