"""The token-classification pipeline that an export of a word-level decoded model, or of a model
with word-shape features, ships (as `lit_ner_pipeline.py`, beside `word_decoding.py`,
`word_shapes.py`, `words.py`, `spans.py` and `lit_ner_config.py`), so that
`transformers.pipeline("token-classification", model=EXPORT, trust_remote_code=True)` tags as
`lit_ner tag` does: the words' shape scores added to the logits (`word_shapes.add_shape_scores`),
then valid-BIO Viterbi, or the CRF's Viterbi with its learned scores, word by word
(`word_decoding.decode_words`, the code the Tagger runs).

Self-contained for a machine without lit_ner: it imports transformers and the modules beside it.
The pipeline's own pre-processing and model call run unchanged; only the post-processing differs
(a model decoded by argmax gets the standard post-processing, after its shape scores).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import TokenClassificationPipeline

from .word_decoding import crf_scores, decode_words
from .word_shapes import add_shape_scores, shape_scores
from .words import WORD_SPLITS, WordSplit


class LitNerTokenClassificationPipeline(TokenClassificationPipeline):
    """`TokenClassificationPipeline` as `lit_ner tag` tags: a model trained with word-shape
    features (`lit_ner_word_shape_scores` in its config) gets its words' shape scores added to the
    logits; a model whose config says `lit_ner_decoding: valid_bio` or `crf` is then decoded word
    by word, its entities the pipeline's dicts (`entity_group`, `score`, `word`, `start`, `end`),
    whole words (`aggregation_strategy` does not apply to them); an argmax model gets the
    standard post-processing. The words are raw text's, split as NER corpora are tokenized
    (`words.text_words`), or with `word_split="whitespace"` a tokenized text's space-separated
    pieces.
    """

    def _sanitize_parameters(self, word_split: str | None = None, **kwargs: Any):
        preprocess, forward, postprocess = super()._sanitize_parameters(**kwargs)
        if word_split is not None:
            if word_split not in WORD_SPLITS:
                raise ValueError(f"word_split must be one of {WORD_SPLITS}, not {word_split!r}")
            postprocess["word_split"] = word_split
        return preprocess, forward, postprocess

    def check_model_type(self, supported_models: Any) -> None:
        # The export's model class is a subclass (named LitNerForTokenClassification) of a
        # supported one; the check reads class names only.
        base = type(self.model).__mro__[1]
        if type(self.model).__name__.startswith("LitNer") and base.__name__ != "object":
            return
        super().check_model_type(supported_models)

    def postprocess(
        self,
        all_outputs: list[dict[str, Any]],
        aggregation_strategy: Any = None,
        ignore_labels: Any = None,
        word_split: WordSplit = "punctuation",
    ):
        config = self.model.config
        table = shape_scores(config, config.num_labels)
        decoding = getattr(config, "lit_ner_decoding", "argmax")
        if (table is not None or decoding in ("valid_bio", "crf")) and all_outputs[0].get(
            "word_ids"
        ) is not None:
            # Pre-split words come with offsets inside each word, not into one text.
            raise ValueError(
                "this model is tagged from the text itself: pass the text, not is_split_into_words=True "
                "(a tokenized text: its words joined by spaces, with word_split='whitespace')"
            )
        if table is not None:
            shaped = add_shape_scores(all_outputs[0]["sentence"], windows_of(all_outputs), table, word_split)
            for outputs, logits in zip(all_outputs, shaped):
                outputs["logits"] = torch.from_numpy(logits)[None]
        if decoding not in ("valid_bio", "crf"):
            if aggregation_strategy is None:
                return super().postprocess(all_outputs, ignore_labels=ignore_labels)
            return super().postprocess(all_outputs, aggregation_strategy, ignore_labels)
        label_names = [config.id2label[i] for i in range(config.num_labels)]
        text = all_outputs[0]["sentence"]
        return decode_words(
            text, windows_of(all_outputs), label_names, decoding, crf_scores(config), word_split
        )


def windows_of(all_outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pipeline's outputs for a text's windows as lit_ner's decoding takes them: character
    `offsets`, the `special` token mask and the `logits`, per window."""
    return [
        {
            "offsets": outputs["offset_mapping"][0].tolist(),
            "special": outputs["special_tokens_mask"][0].tolist(),
            "logits": outputs["logits"][0].float().cpu().numpy(),
        }
        for outputs in all_outputs
    ]
