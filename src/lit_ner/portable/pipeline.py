"""The token-classification pipeline that an export of a word-level decoded model, or of a model
with word-shape features, ships (as `lit_ner_pipeline.py`, beside `word_decoding.py`,
`word_shapes.py`, `words.py`, `spans.py`, `windows.py` and `lit_ner_config.py`), so that
`transformers.pipeline("token-classification", model=EXPORT, trust_remote_code=True)` tags as
`lit_ner tag` does: a word-level decoded model reads the text's words, encoded and windowed as in
training (`windows.py`); the words' shape scores are added to the logits
(`word_shapes.add_shape_scores`); then valid-BIO Viterbi, or the CRF's Viterbi with its learned
scores, word by word (`word_decoding.decode_words`, the code the Tagger runs).

Self-contained for a machine without lit_ner: it imports transformers and the modules beside it.
A model decoded by argmax keeps the pipeline's own pre-processing and its standard
post-processing, after its shape scores.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import TokenClassificationPipeline

from .windows import TokenWindower, default_stride
from .word_decoding import crf_scores, decode_words
from .word_shapes import add_shape_scores, shape_scores
from .words import WORD_SPLITS, WordSplit, text_words


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
            preprocess["word_split"] = postprocess["word_split"] = word_split
        return preprocess, forward, postprocess

    def decodes_words(self) -> bool:
        return getattr(self.model.config, "lit_ner_decoding", "argmax") in ("valid_bio", "crf")

    def preprocess(
        self, sentence: Any, offset_mapping: Any = None, word_split: WordSplit = "punctuation", **params
    ):
        """A model decoded word by word: the text's words encoded as training encodes a
        sentence, in the same windows of whole words (`windows.TokenWindower.encode_words`, as
        `lit_ner tag`), so that it tags a test sentence's words as the test scored them; long
        texts are always windowed (`stride`: about the subword positions consecutive windows
        share; default: training's, which the export records, else 128; at most half a
        window). Any other model: the pipeline's own."""
        if not self.decodes_words() or params.get("is_split_into_words") or not isinstance(sentence, str):
            yield from super().preprocess(sentence, offset_mapping=offset_mapping, **params)
            return
        windower = getattr(self, "_word_windower", None)
        if windower is None:  # made once: it copies the tokenizer
            windower = self._word_windower = TokenWindower.from_tokenizer(self.tokenizer)
        stride = params.get("tokenizer_params", {}).get("stride")
        stride = default_stride(self.model.config, windower.budget) if stride is None else stride
        windows = windower.encode_words(sentence, text_words(sentence, word_split), stride)
        for i, window in enumerate(windows):
            inputs = {name: torch.from_numpy(window[name])[None] for name in self.tokenizer.model_input_names}
            yield {
                **inputs,
                "special_tokens_mask": torch.from_numpy(window["special"])[None],
                "offset_mapping": torch.from_numpy(window["offsets"])[None],
                "word": torch.from_numpy(window["word"])[None],
                "owned": torch.from_numpy(window["owned"])[None],
                "sentence": sentence if i == 0 else None,
                "is_last": i == len(windows) - 1,
            }

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        # The words of a window and the ones it owns travel past the model to the decoding.
        carried = {name: model_inputs.pop(name) for name in ("word", "owned") if name in model_inputs}
        return {**super()._forward(model_inputs), **carried}

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
        if (table is not None or self.decodes_words()) and all_outputs[0].get("word_ids") is not None:
            # Pre-split words come with offsets inside each word, not into one text.
            raise ValueError(
                "this model is tagged from the text itself: pass the text, not is_split_into_words=True "
                "(a tokenized text: its words joined by spaces, with word_split='whitespace')"
            )
        if table is not None:
            shaped = add_shape_scores(all_outputs[0]["sentence"], windows_of(all_outputs), table, word_split)
            for outputs, logits in zip(all_outputs, shaped):
                outputs["logits"] = torch.from_numpy(logits)[None]
        if not self.decodes_words():
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
            **{name: outputs[name][0].tolist() for name in ("word", "owned") if name in outputs},
        }
        for outputs in all_outputs
    ]
