"""The token-classification pipeline that an export of a word-level decoded model, or of a model
with word-shape features, ships (as `lit_ner_pipeline.py`, beside `word_decoding.py`,
`word_shapes.py` and `lit_ner_config.py`), so that `transformers.pipeline("token-classification",
model=EXPORT, trust_remote_code=True)` tags as `lit_ner tag` does: the words' shape scores added
to the logits (`word_shapes.add_shape_scores`), then valid-BIO Viterbi, or the CRF's Viterbi with
its learned scores, word by word (`word_decoding.decode_words`, the code the Tagger runs).

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


class LitNerTokenClassificationPipeline(TokenClassificationPipeline):
    """`TokenClassificationPipeline` with lit_ner's word-level decoding for models whose config
    says `lit_ner_decoding: valid_bio` or `crf`. Entities are the pipeline's dicts
    (`entity_group`, `score`, `word`, `start`, `end`), whole whitespace-separated words;
    `aggregation_strategy` does not apply to them."""

    def check_model_type(self, supported_models: Any) -> None:
        # The export's model class is a subclass (named LitNerForTokenClassification) of a
        # supported one; the check reads class names only.
        base = type(self.model).__mro__[1]
        if type(self.model).__name__.startswith("LitNer") and base.__name__ != "object":
            return
        super().check_model_type(supported_models)

    def postprocess(
        self, all_outputs: list[dict[str, Any]], aggregation_strategy: Any = None, ignore_labels: Any = None
    ):
        config = self.model.config
        table = shape_scores(config)
        if table is not None:
            text = all_outputs[0]["sentence"]
            for outputs in all_outputs:
                window = {
                    "offsets": outputs["offset_mapping"][0].tolist(),
                    "special": outputs["special_tokens_mask"][0].tolist(),
                    "logits": outputs["logits"][0].float().cpu().numpy(),
                }
                logits = add_shape_scores(text, window, table)
                outputs["logits"] = torch.from_numpy(logits)[None]
        decoding = getattr(config, "lit_ner_decoding", "argmax")
        if decoding not in ("valid_bio", "crf"):
            if aggregation_strategy is None:
                return super().postprocess(all_outputs, ignore_labels=ignore_labels)
            return super().postprocess(all_outputs, aggregation_strategy, ignore_labels)
        windows = [
            {
                "offsets": outputs["offset_mapping"][0].tolist(),
                "special": outputs["special_tokens_mask"][0].tolist(),
                "logits": outputs["logits"][0].float().cpu().numpy(),
            }
            for outputs in all_outputs
        ]
        label_names = [config.id2label[i] for i in range(config.num_labels)]
        return decode_words(all_outputs[0]["sentence"], windows, label_names, decoding, crf_scores(config))
