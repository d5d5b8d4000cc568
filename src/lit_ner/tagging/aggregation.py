"""Subword predictions to entities, as `transformers`' token-classification pipeline does it
(`aggregation_strategy` `none`, `simple`, `first`, `average`, `max`, and the merging of windows
that overlap), in numpy over a `tokenizers.Tokenizer`.

A port, line for line, of `TokenClassificationPipeline.postprocess` and the methods it calls
(transformers 5), because the pipeline's module imports torch, and the ONNX backend must tag
without it. tests/test_inference.py holds lit_ner's entities to the pipeline's, strategy by
strategy, on the torch backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np

Aggregation = Literal["none", "simple", "first", "average", "max"]
AGGREGATION_STRATEGIES: tuple[str, ...] = get_args(Aggregation)


class Aggregator:
    """The pipeline's post-processing for one tokenizer and label set.

    Args:
        tokenizer: the model's `tokenizers.Tokenizer` (a fast tokenizer's `backend_tokenizer`).
        label_names: the labels in id order.
        unk_token_id: the tokenizer's unknown token (its subwords are read from the text).
    """

    def __init__(self, tokenizer: Any, label_names: Sequence[str], unk_token_id: int | None) -> None:
        self.tokenizer = tokenizer
        self.label_names = list(label_names)
        self.unk_token_id = unk_token_id
        self.subword_prefix = getattr(tokenizer.model, "continuing_subword_prefix", None)

    def tokens_to_string(self, tokens: list[str]) -> str:
        decoder = self.tokenizer.decoder
        return decoder.decode(tokens) if decoder is not None else " ".join(tokens)

    def __call__(
        self, text: str, windows: Sequence[dict[str, Any]], aggregation_strategy: Aggregation
    ) -> list[dict]:
        """The entities of `text` from its windows (`input_ids`, `offsets`, `special`,
        `logits`), the O label left out."""
        entities = []
        for window in windows:
            logits = np.asarray(window["logits"], dtype=np.float32)
            shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
            scores = shifted / shifted.sum(axis=-1, keepdims=True)
            pre_entities = self.gather_pre_entities(text, window, scores)
            entities += [
                entity
                for entity in self.aggregate(pre_entities, aggregation_strategy)
                if entity.get("entity") != "O" and entity.get("entity_group") != "O"
            ]
        return merge_overlapping(entities) if len(windows) > 1 else entities

    def gather_pre_entities(self, text: str, window: dict[str, Any], scores: np.ndarray) -> list[dict]:
        pre_entities = []
        input_ids = np.asarray(window["input_ids"]).tolist()
        offsets = np.asarray(window["offsets"]).tolist()
        special = np.asarray(window["special"]).tolist()
        for idx, token_scores in enumerate(scores):
            if special[idx]:
                continue
            word = self.tokenizer.id_to_token(input_ids[idx])
            start, end = offsets[idx]
            word_ref = text[start:end]
            if self.subword_prefix:
                is_subword = len(word) != len(word_ref)
            else:  # the pipeline's fallback for tokenizers without a subword prefix
                is_subword = start > 0 and " " not in text[start - 1 : start + 1]
            if input_ids[idx] == self.unk_token_id:
                word, is_subword = word_ref, False
            pre_entities.append(
                {
                    "word": word,
                    "scores": token_scores,
                    "start": start,
                    "end": end,
                    "index": idx,
                    "is_subword": is_subword,
                }
            )
        return pre_entities

    def aggregate(self, pre_entities: list[dict], aggregation_strategy: str) -> list[dict]:
        if aggregation_strategy in ("none", "simple"):
            entities = []
            for pre_entity in pre_entities:
                idx = pre_entity["scores"].argmax()
                entities.append(
                    {
                        "entity": self.label_names[idx],
                        "score": pre_entity["scores"][idx],
                        "index": pre_entity["index"],
                        "word": pre_entity["word"],
                        "start": pre_entity["start"],
                        "end": pre_entity["end"],
                    }
                )
        else:
            entities = self.aggregate_words(pre_entities, aggregation_strategy)
        return entities if aggregation_strategy == "none" else self.group_entities(entities)

    def aggregate_word(self, entities: list[dict], aggregation_strategy: str) -> dict:
        word = self.tokens_to_string([entity["word"] for entity in entities])
        if aggregation_strategy == "first":
            scores = entities[0]["scores"]
        elif aggregation_strategy == "max":
            scores = max(entities, key=lambda entity: entity["scores"].max())["scores"]
        else:  # average
            scores = np.nanmean(np.stack([entity["scores"] for entity in entities]), axis=0)
        idx = scores.argmax()
        return {
            "entity": self.label_names[idx],
            "score": scores[idx],
            "word": word,
            "start": entities[0]["start"],
            "end": entities[-1]["end"],
        }

    def aggregate_words(self, entities: list[dict], aggregation_strategy: str) -> list[dict]:
        """Subwords of one word agree on the word's label (`first`, `average` or `max`)."""
        word_entities, word_group = [], None
        for entity in entities:
            if word_group is None:
                word_group = [entity]
            elif entity["is_subword"]:
                word_group.append(entity)
            else:
                word_entities.append(self.aggregate_word(word_group, aggregation_strategy))
                word_group = [entity]
        if word_group is not None:
            word_entities.append(self.aggregate_word(word_group, aggregation_strategy))
        return word_entities

    def group_sub_entities(self, entities: list[dict]) -> dict:
        return {
            "entity_group": entities[0]["entity"].split("-", 1)[-1],
            "score": np.mean(np.nanmean([entity["score"] for entity in entities])),
            "word": self.tokens_to_string([entity["word"] for entity in entities]),
            "start": entities[0]["start"],
            "end": entities[-1]["end"],
        }

    def group_entities(self, entities: list[dict]) -> list[dict]:
        """Adjacent tokens (or words) of the same type become one entity; `B-` opens a new one."""
        groups, current = [], []
        for entity in entities:
            if current:
                bi, tag = bi_tag(entity["entity"])
                _, last_tag = bi_tag(current[-1]["entity"])
                if tag == last_tag and bi != "B":
                    current.append(entity)
                    continue
                groups.append(self.group_sub_entities(current))
            current = [entity]
        if current:
            groups.append(self.group_sub_entities(current))
        return groups


def bi_tag(label: str) -> tuple[str, str]:
    if label.startswith("B-"):
        return "B", label[2:]
    if label.startswith("I-"):
        return "I", label[2:]
    return "I", label


def merge_overlapping(entities: list[dict]) -> list[dict]:
    """Entities of overlapping windows: of two that overlap, the longer (or, as long, the higher
    scored) stays."""
    if not entities:
        return entities
    entities = sorted(entities, key=lambda entity: entity["start"])
    merged, previous = [], entities[0]
    for entity in entities:
        if previous["start"] <= entity["start"] < previous["end"]:
            length, previous_length = entity["end"] - entity["start"], previous["end"] - previous["start"]
            if length > previous_length or length == previous_length and entity["score"] > previous["score"]:
                previous = entity
        else:
            merged.append(previous)
            previous = entity
    merged.append(previous)
    return merged
