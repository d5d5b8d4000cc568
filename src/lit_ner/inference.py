"""Tagging raw text with a trained model: `Tagger`, the engine of `lit_ner tag`.

The output is the Hugging Face token-classification pipeline's, entity for entity: the pipeline's
own pre- and post-processing (tokenisation with offsets, windows with `stride`, softmax,
`aggregation_strategy` `none`/`simple`/`first`/`average`/`max`, merging of overlapping windows)
runs unchanged, and only the model calls are lit_ner's: every window of every text, sorted by
length and run in padded batches under `torch.inference_mode`, instead of one text at a time.
Long texts are always windowed (the pipeline, unless given `stride`, silently cuts them at the
model's maximum length).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import torch

from lit_ner.decoding import DECODINGS, IMPOSSIBLE, Decoding, bio_constraints, viterbi_decode
from lit_ner.errors import LitNerError
from lit_ner.formats import read_texts, write_atomically
from lit_ner.hub import hub_errors, resolve_name_or_path
from lit_ner.scoring import get_entities

Aggregation = Literal["none", "simple", "first", "average", "max"]
AGGREGATION_STRATEGIES: tuple[str, ...] = get_args(Aggregation)


class Tagger:
    """Tags texts with a token-classification model: `Tagger.from_pretrained(DIR)(texts)`.

    Args:
        model: a `transformers` token-classification model.
        tokenizer: its fast tokenizer.
        batch_size: windows per forward pass.
        device: where the model runs (`"cpu"`, `"cuda"`, `"cuda:1"`, ...).
        precision: `"auto"` (bf16 where the device has native bf16 matmuls, see
            `bf16_is_native`, else fp32), `"32"` (what the pipeline does; scores agree with it to
            ~1e-6, entities exactly) or `"bf16"` (autocast; scores differ from fp32's in the
            third digit, which can flip a close argmax).
        stride: tokens that consecutive windows of a long text share (default 128, at most half
            a window).
        decoding: `None` (the model's own, from its config's `lit_ner_decoding`, else
            `"argmax"`), `"argmax"` (the pipeline's: its `aggregation_strategy` applies),
            `"valid_bio"` or `"crf"` (word-level, as lit_ner validates: see `decode_words`).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        batch_size: int = 32,
        device: str = "cpu",
        precision: Literal["auto", "32", "bf16"] = "auto",
        stride: int | None = None,
        decoding: Decoding | None = None,
    ) -> None:
        from transformers import TokenClassificationPipeline

        if not tokenizer.is_fast:
            raise LitNerError("tagging needs a fast tokenizer (for character offsets)")
        budget = tokenizer.model_max_length - tokenizer.num_special_tokens_to_add()
        stride = min(128, budget // 2) if stride is None else stride
        if not 0 <= stride < budget:
            raise LitNerError(f"stride {stride} must be below the {budget} text positions of a window")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        if precision not in ("auto", "32", "bf16"):
            raise LitNerError(f"precision must be 'auto', '32' or 'bf16', not {precision!r}")
        if precision == "auto":
            precision = "bf16" if bf16_is_native(self.device) else "32"
        self.precision = precision
        self.stride = stride
        self.decoding = decoding or getattr(model.config, "lit_ner_decoding", None) or "argmax"
        if self.decoding not in DECODINGS:
            raise LitNerError(f"decoding must be one of {DECODINGS}, not {self.decoding!r}")
        if self.decoding == "crf" and getattr(model.config, "crf_transitions", None) is None:
            raise LitNerError(
                "decoding 'crf' needs a model trained with --model.head crf (no CRF in its config)"
            )
        self.label_names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        # The pipeline object only lends its pre- and post-processing; it never runs the model.
        self.pipeline = TokenClassificationPipeline(model=self.model, tokenizer=tokenizer, device=self.device)

    @classmethod
    def from_pretrained(
        cls, model_name_or_path: str | Path, trust_remote_code: bool = False, **kwargs: Any
    ) -> Tagger:
        """Loads an export (`hf_model/`, any token-classification folder or Hub id) or a
        lit_ner checkpoint (`.ckpt`, whose base model must be loadable as in training).

        Args:
            model_name_or_path: the export, Hub id or checkpoint.
            trust_remote_code: run modelling code that a Hub model ships.
            **kwargs: the `Tagger`'s options (batch_size, device, precision, stride, decoding).
        """
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        path = resolve_name_or_path(str(model_name_or_path))
        if path.endswith(".ckpt"):
            from lit_ner.export import model_from_checkpoint  # loads Lightning's checkpoint code

            model, tokenizer = model_from_checkpoint(path, trust_remote_code)
            return cls(model, tokenizer, **kwargs)
        with hub_errors(f"model '{model_name_or_path}'"):
            model = AutoModelForTokenClassification.from_pretrained(path, trust_remote_code=trust_remote_code)
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        return cls(model, tokenizer, **kwargs)

    def __call__(
        self, texts: str | Sequence[str], aggregation_strategy: Aggregation = "simple"
    ) -> list[dict] | list[list[dict]]:
        """The entities of a text (a list of dicts) or of each of a list of texts, as
        `pipeline("token-classification", aggregation_strategy=...)` gives them: `entity_group`
        (`entity` for `"none"`), `score`, `word`, `start`, `end` (character offsets)."""
        if isinstance(texts, str):
            return self.tag([texts], aggregation_strategy)[0]
        return self.tag(list(texts), aggregation_strategy)

    def tag(self, texts: Sequence[str], aggregation_strategy: Aggregation = "simple") -> list[list[dict]]:
        """The entities of each text. Texts go through in chunks (sorted by length within each),
        so that memory stays bounded however many there are."""
        chunk = 64 * self.batch_size
        return [
            entities
            for start in range(0, len(texts), chunk)
            for entities in self._tag(texts[start : start + chunk], aggregation_strategy)
        ]

    def _tag(self, texts: Sequence[str], aggregation_strategy: Aggregation) -> list[list[dict]]:
        if aggregation_strategy not in AGGREGATION_STRATEGIES:
            raise LitNerError(f"aggregation_strategy must be one of {AGGREGATION_STRATEGIES}")
        # "simple" stands in for "none" here only to get the windowing parameters past the
        # pipeline's check (which refuses stride with "none"); the post-processing gets "none".
        preprocess_params, _, postprocess_params = self.pipeline._sanitize_parameters(
            aggregation_strategy="simple" if aggregation_strategy == "none" else aggregation_strategy,
            stride=self.stride,
        )
        if aggregation_strategy == "none":
            postprocess_params = self.pipeline._sanitize_parameters(aggregation_strategy="none")[2]
        windows = [
            list(self.pipeline.preprocess(text, **preprocess_params)) if text else [] for text in texts
        ]
        outputs = self._forward([window for text_windows in windows for window in text_windows])
        results, position = [], 0
        for text, text_windows in zip(texts, windows):
            text_outputs = outputs[position : position + len(text_windows)]
            position += len(text_windows)
            if not text_outputs:
                results.append([])
            elif self.decoding == "argmax":
                results.append(self.pipeline.postprocess(text_outputs, **postprocess_params))
            else:
                results.append(self.decode_words(text, text_outputs))
        return results

    def decode_words(self, text: str, outputs: list[dict[str, Any]]) -> list[dict]:
        """Entities of one text, decoded word by word as lit_ner validates (`valid_bio` or
        `crf`): the words are the text's whitespace-separated pieces (as in CoNLL files), each
        scored at its first subword, from the window where that subword has the most context on
        both sides; Viterbi runs over the whole text's words at once. Each entity is a BIO span of
        words, `word` the text's own characters, `score` the mean probability of its words'
        decoded labels."""
        import bisect
        import re

        words = [(match.start(), match.end()) for match in re.finditer(r"\S+", text)]
        word_starts = [start for start, _ in words]
        # Every text token, by window: (position, word, first character).
        tokens = []
        for window in outputs:
            offsets = window["offset_mapping"][0].tolist()
            special = window["special_tokens_mask"][0].tolist()
            window_tokens = []
            for position, (start, end) in enumerate(offsets):
                word = bisect.bisect_right(word_starts, start) - 1
                if not special[position] and end > start and word >= 0 and start < words[word][1]:
                    window_tokens.append((position, word, start))
            tokens.append(window_tokens)
        # A word's first subword is its token that starts first (a window may begin mid-word,
        # and characters the tokenizer drops may open the word).
        first_char: dict[int, int] = {}
        for window_tokens in tokens:
            for _, word, start in window_tokens:
                first_char[word] = min(start, first_char.get(word, start))
        n_labels = len(self.label_names)
        scores = torch.full((len(words), n_labels), IMPOSSIBLE)
        if "O" in self.label_names:  # a word no subword reached (zero-width characters) is O
            scores[:, self.label_names.index("O")] = 0.0
        context = [-1] * len(words)
        for window, window_tokens in zip(outputs, tokens):
            logits = window["logits"][0].float()
            token_scores = logits if self.decoding == "crf" else logits.log_softmax(dim=-1)
            firsts = [
                (position, word) for position, word, start in window_tokens if start == first_char[word]
            ]
            for rank, (position, word) in enumerate(firsts):
                margin = min(rank, len(firsts) - 1 - rank)  # context on both sides in this window
                if margin > context[word]:
                    context[word], scores[word] = margin, token_scores[position]
        mask = torch.ones(1, len(words), dtype=torch.bool)
        start, transitions, end = (*bio_constraints(self.label_names), None)
        if self.decoding == "crf":  # the CRF's learned scores, within the same constraints
            config = self.model.config
            start = start + torch.tensor(config.crf_start)
            transitions = transitions + torch.tensor(config.crf_transitions)
            end = torch.tensor(config.crf_end)
        labels = viterbi_decode(scores[None], mask, transitions, start, end)[0]
        probabilities = scores.softmax(dim=-1).gather(1, labels[:, None])[:, 0].tolist()
        tags = [self.label_names[i] for i in labels.tolist()]
        entities = []
        for type_, first, last in sorted(get_entities(tags), key=lambda entity: entity[1]):
            start_char, end_char = words[first][0], words[last][1]
            entities.append(
                {
                    "entity_group": type_,
                    "score": sum(probabilities[first : last + 1]) / (last - first + 1),
                    "word": text[start_char:end_char],
                    "start": start_char,
                    "end": end_char,
                }
            )
        return entities

    @torch.inference_mode()
    def _forward(self, windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Runs the model on every window, longest first in padded batches, and returns each
        window's outputs as the pipeline's `_forward` would."""
        lengths = [int(window["attention_mask"].sum()) for window in windows]
        order = sorted(range(len(windows)), key=lambda i: -lengths[i])
        logits: list[torch.Tensor | None] = [None] * len(windows)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")
        model_keys = (
            [key for key in ("input_ids", "attention_mask", "token_type_ids") if key in windows[0]]
            if windows
            else []
        )
        pad = {"input_ids": self.tokenizer.pad_token_id, "attention_mask": 0, "token_type_ids": 0}
        masks = [window["attention_mask"][0].bool() for window in windows]
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(lengths[i] for i in batch)
            inputs = {key: torch.full((len(batch), width), pad[key], dtype=torch.long) for key in model_keys}
            for row, i in enumerate(batch):
                for key in model_keys:
                    inputs[key][row, : lengths[i]] = windows[i][key][0][masks[i]]
            with autocast:
                batch_logits = self.model(**{k: v.to(self.device) for k, v in inputs.items()}).logits
            batch_logits = batch_logits.float().cpu()
            for row, i in enumerate(batch):
                # Back to the window's own (possibly padded) length: its padding positions are
                # special tokens, which the post-processing skips.
                full = torch.zeros(1, masks[i].numel(), batch_logits.shape[-1])
                full[0, masks[i]] = batch_logits[row, : lengths[i]]
                logits[i] = full
        # What the pipeline's `_forward` returns: the window's inputs plus the logits, with the
        # optional keys present.
        optional = ("offset_mapping", "word_ids", "word_to_chars_map")
        return [
            {**window, **{key: window.get(key) for key in optional}, "logits": window_logits}
            for window, window_logits in zip(windows, logits)
        ]


def bf16_is_native(device: torch.device) -> bool:
    """Whether bf16 matmuls run in hardware here (and so beat fp32): a CUDA GPU that supports
    bf16, or a CPU with AVX512-BF16 or AMX. Elsewhere bf16 is emulated and slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # Private helpers of torch.cpu (present since 2.1); a torch without them gets fp32.
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, check, lambda: False)() for check in checks)
    return False


def to_json(entities: list[dict]) -> list[dict]:
    """The pipeline's entities with plain Python numbers (its scores are numpy floats)."""
    return [
        {key: value.item() if hasattr(value, "item") else value for key, value in e.items()} for e in entities
    ]


def tag(
    input: str,
    *,
    model: str,
    output: str | None = None,
    aggregation_strategy: Aggregation = "simple",
    text_field: str = "text",
    format: Literal["jsonl", "label-studio", "doccano"] = "jsonl",
    **tagger: Any,
) -> int:
    """Tags each text of a file and writes one JSON object per text, its entities added.

    Args:
        input: a text file (one text per line) or JSONL (`.jsonl`/`.json`) objects with a text field.
        model: an export (hf_model/), a Hub id or a lit_ner .ckpt.
        output: write the JSONL here (atomically) instead of to stdout.
        aggregation_strategy: how subword predictions become entities (the pipeline's; argmax
            decoding only).
        text_field: the JSONL field holding the text; the other fields are passed through.
        format: "jsonl" (each record with its entities, the pipeline's dicts), or pre-annotations
            for an annotation tool to import and a person to correct: "label-studio" (a JSON list
            of tasks, the entities as `predictions`) or "doccano" (JSONL).
        **tagger: `Tagger.from_pretrained`'s options (trust_remote_code, batch_size, device,
            precision, stride, decoding).

    Returns:
        The exit status: 1 when some lines were skipped (each named on stderr), else 0.
    """
    if format != "jsonl" and aggregation_strategy == "none":
        raise LitNerError(
            f"--format {format} writes entity spans: use an aggregation_strategy other than none"
        )
    records, problems = read_texts(input, text_field)
    for problem in problems:
        print(f"lit_ner: warning: {problem}", file=sys.stderr)
    tagger_ = Tagger.from_pretrained(model, **tagger)
    texts = [record["text"] for _, record in records]
    entities = [to_json(found) for found in tagger_.tag(texts, aggregation_strategy)]
    if format == "jsonl":
        lines = [
            json.dumps({**record, "entities": found}, ensure_ascii=False)
            for (_, record), found in zip(records, entities)
        ]
        text = "".join(line + "\n" for line in lines)
    else:
        from lit_ner.annotations import span_records

        spans = [[(e["start"], e["end"], e["entity_group"]) for e in found] for found in entities]
        scores = [[e["score"] for e in found] for found in entities] if format == "label-studio" else None
        extra = [{k: v for k, v in record.items() if k != "text"} for _, record in records]
        text = span_records(texts, spans, format, scores, extra)
    if output:
        write_atomically(output, text)
    else:
        sys.stdout.write(text)
    return 1 if problems else 0
