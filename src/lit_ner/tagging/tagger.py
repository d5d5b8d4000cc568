"""Tagging raw text with a trained model: `Tagger`, the engine of `lit_ner tag` and `lit_ner serve`.

The output is the Hugging Face token-classification pipeline's, entity for entity: the same
tokenisation with offsets, windows with `stride`, softmax, `aggregation_strategy`
`none`/`simple`/`first`/`average`/`max` and merging of overlapping windows (`aggregation.py`, a
numpy port of the pipeline's post-processing). Only the model calls differ: every window of every
text, sorted by length and run in padded batches, by PyTorch or by ONNX Runtime (`runtime.py`),
instead of one text at a time. Long texts are always windowed (the pipeline, unless given
`stride`, silently cuts them at the model's maximum length). Models trained with valid-BIO or CRF
decoding are decoded word by word as lit_ner validates them (`word_decoding.py`); those trained
with word-shape features get their words' shape scores added to the logits (`word_shapes.py`).

Light to import: with the ONNX backend, neither torch nor transformers is loaded.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from lit_ner.errors import LitNerError
from lit_ner.export.hf import RETRIEVED_CONTEXT_KEY
from lit_ner.hub import load_token_classifier_model, load_tokenizer, resolve_name_or_path
from lit_ner.portable.windows import TokenWindower, default_stride
from lit_ner.portable.word_decoding import DECODINGS, Decoding, crf_scores, decode_words
from lit_ner.portable.word_shapes import add_shape_scores, shape_scores
from lit_ner.portable.words import WORD_SPLITS, WordSplit, text_words
from lit_ner.tagging.aggregation import AGGREGATION_STRATEGIES, Aggregation, Aggregator
from lit_ner.tagging.runtime import OnnxModel, TorchModel, bf16_is_native

__all__ = ["AGGREGATION_STRATEGIES", "Aggregation", "Tagger", "bf16_is_native"]

Backend = Literal["torch", "onnx"]


class Tagger:
    """Tags texts with a token-classification model: `Tagger.from_pretrained(DIR)(texts)`.

    Args:
        model: a `transformers` token-classification model, or an `OnnxModel`.
        tokenizer: its fast tokenizer (or, for an `OnnxModel`, a `TokenWindower`).
        batch_size: windows per forward pass (None: 32 on torch, 8 on ONNX Runtime, whose CPU
            kernels do better with small batches).
        device: where a torch model runs (`"cpu"`, `"cuda"`, `"cuda:1"`, ...).
        precision: for a torch model: `"auto"` (the precision `fit` tested the model in, which
            its export records, so that tagging decodes as the test did; bf16 only where the
            device has native bf16 matmuls, see `bf16_is_native`; a model without the record:
            bf16 where native, else fp32), `"32"` (what the pipeline does; scores agree with
            it to ~1e-6, entities exactly) or `"bf16"` (autocast; scores differ from fp32's in
            the third digit, which can flip a close argmax). An ONNX model runs as exported.
        stride: how far consecutive windows of a long text overlap, in subword positions
            (default: the stride training used, which the export records, else 128; at most
            half a window); a word-level decoding's windows of whole words share about
            `min(stride, half a window)`, as training's do.
        threads: for an ONNX model on a CPU, batches run at once, each single-threaded (None:
            one per core); the torch backend uses torch's own setting (`torch.set_num_threads`).
        max_padding: a batch holds only windows at least `1 / (1 + max_padding)` as long as its
            longest, so that padding is at most that fraction of the real tokens (None: 0.1 on a
            CPU, where every padded position costs as much as a real one, and no bound on a GPU,
            where a fuller batch is what pays). Matters most for few texts of mixed lengths, as
            in `lit_ner serve`'s batches of requests.
        decoding: `None` (the model's own, from its config's `lit_ner_decoding`, else
            `"argmax"`), `"argmax"` (the pipeline's: its `aggregation_strategy` applies),
            `"valid_bio"` or `"crf"` (word-level, as lit_ner validates: see `word_decoding`).
        word_split: how a text is split into the words a word-level decoding labels and word
            shapes are read from (`portable.words`): `"punctuation"` (raw text as people type
            it: "York!" is "York" and "!", as NER corpora are tokenized) or `"whitespace"` (text
            already tokenized, its words separated by spaces).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        batch_size: int | None = None,
        device: str = "cpu",
        precision: Literal["auto", "32", "bf16"] = "auto",
        stride: int | None = None,
        threads: int | None = None,
        decoding: Decoding | None = None,
        max_padding: float | None = None,
        word_split: WordSplit = "punctuation",
    ) -> None:
        if word_split not in WORD_SPLITS:
            raise LitNerError(f"word_split must be one of {WORD_SPLITS}, not {word_split!r}")
        self.word_split = word_split
        if isinstance(model, OnnxModel):
            if precision not in ("auto", "32"):
                raise LitNerError(
                    f"precision {precision!r} applies to the torch backend; ONNX runs as exported"
                )
            if threads is not None:
                model.threads = threads
            self.model = model.to(device)
        else:
            self.model = TorchModel(model, device, precision)
        if not isinstance(tokenizer, TokenWindower) and not getattr(tokenizer, "is_fast", False):
            raise LitNerError(
                f"tagging needs a fast tokenizer (for character offsets), not {type(tokenizer).__name__}"
            )
        self.windower = (
            tokenizer if isinstance(tokenizer, TokenWindower) else TokenWindower.from_tokenizer(tokenizer)
        )
        self.tokenizer = tokenizer
        if isinstance(self.model, OnnxModel):
            self.windower.input_names = self.model.input_names
        self.stride = default_stride(self.model.config, self.windower.budget) if stride is None else stride
        if not 0 <= self.stride < self.windower.budget:
            raise LitNerError(
                f"stride {self.stride} must be below the {self.windower.budget} text positions of a window"
            )
        self.windower.set_stride(self.stride)
        self.batch_size = batch_size or (8 if isinstance(self.model, OnnxModel) else 32)
        if max_padding is None:
            max_padding = 0.1 if self.model.device_type == "cpu" else float("inf")
        if max_padding < 0:
            raise LitNerError(f"max_padding must be >= 0, not {max_padding}")
        self.max_padding = max_padding
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid, self._pool_lock = 0, threading.Lock()
        self.precision = self.model.precision
        config = self.model.config
        self.decoding = decoding or getattr(config, "lit_ner_decoding", None) or "argmax"
        if self.decoding not in DECODINGS:
            raise LitNerError(f"decoding must be one of {DECODINGS}, not {self.decoding!r}")
        self.crf = crf_scores(config)
        if self.decoding == "crf" and self.crf is None:
            raise LitNerError(
                "decoding 'crf' needs a model trained with --model.head crf (no CRF in its config)"
            )
        self.label_names = [config.id2label[i] for i in range(config.num_labels)]
        # A model trained with word-shape features: the score table its words' shapes add.
        try:
            self.shape_scores = shape_scores(config, len(self.label_names))
        except ValueError as error:
            raise LitNerError(f"word-shape features: {error}") from None
        self.aggregator = Aggregator(self.windower.tokenizer, self.label_names, self.windower.unk_token_id)
        context = getattr(config, RETRIEVED_CONTEXT_KEY, None)
        if context:
            print(
                f"lit_ner: warning: this model was trained and tested with {context} retrieved training "
                "sentences as context (data.retrieved_context); tagging retrieves none, so its entities "
                "may differ from its test's",
                file=sys.stderr,
            )

    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path: str | Path,
        backend: Backend = "torch",
        trust_remote_code: bool = False,
        **kwargs: Any,
    ) -> Tagger:
        """Loads an export (`hf_model/`, any token-classification folder or Hub id) or a
        lit_ner checkpoint (`.ckpt`, whose base model must be loadable as in training).

        Args:
            model_name_or_path: the export, Hub id or checkpoint.
            backend: `"torch"`, or `"onnx"` (the export's `model.onnx`, from `lit_ner export
                --onnx`; run by ONNX Runtime, without torch).
            trust_remote_code: run modelling code that a Hub model ships.
            **kwargs: the `Tagger`'s options (batch_size, device, precision, stride, threads,
                decoding, max_padding, word_split).
        """
        if backend not in ("torch", "onnx"):
            raise LitNerError(f"backend must be 'torch' or 'onnx', not {backend!r}")
        path = resolve_name_or_path(str(model_name_or_path))
        if backend == "onnx":
            if path.endswith(".ckpt") or not Path(path).is_dir():
                raise LitNerError(
                    f"{model_name_or_path}: the onnx backend needs an export folder with {ONNX_HINT}"
                )
            if not (Path(path) / "tokenizer.json").is_file():
                raise LitNerError(f"{model_name_or_path}: no tokenizer.json (tagging needs a fast tokenizer)")
            model = OnnxModel(path)
            return cls(model, TokenWindower.from_directory(path, model.input_names), **kwargs)
        if path.endswith(".ckpt"):
            from lit_ner.export.hf import hf_model_from_checkpoint  # torch and transformers, no Lightning

            model, tokenizer = hf_model_from_checkpoint(path, trust_remote_code)
            return cls(model, tokenizer, **kwargs)
        model = load_token_classifier_model(str(model_name_or_path), trust_remote_code)
        # As saved: a finished model's tokenizer (an argmax model's text is tokenized as the
        # pipeline tokenizes it; word-level decoding marks word starts itself, windows.py).
        tokenizer = load_tokenizer(str(model_name_or_path), trust_remote_code, mark_word_starts=False)
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
        if aggregation_strategy not in AGGREGATION_STRATEGIES:
            raise LitNerError(f"aggregation_strategy must be one of {AGGREGATION_STRATEGIES}")
        chunk = 64 * self.batch_size
        return [
            entities
            for start in range(0, len(texts), chunk)
            for entities in self._tag(texts[start : start + chunk], aggregation_strategy)
        ]

    def windows(self, text: str) -> list[dict[str, Any]]:
        """A text's windows. A word-level decoding reads the text's words (`word_split`) and
        encodes them as training encodes a sentence, in the same windows of whole words, so that
        tagging a test sentence's words gives the test's entities; argmax tokenizes the text
        itself, as the pipeline does, so that its entities are the pipeline's."""
        if self.decoding == "argmax":
            return self.windower(text)
        return self.windower.encode_words(text, text_words(text, self.word_split))

    def _tag(self, texts: Sequence[str], aggregation_strategy: Aggregation) -> list[list[dict]]:
        windows = [self.windows(text) for text in texts]
        results: list[list[dict]] = [[] for _ in texts]
        for i, text_windows in enumerate(windows):
            for window in text_windows:
                window["text"] = i
        waiting = [len(text_windows) for text_windows in windows]
        lock = threading.Lock()

        def batch_done(batch: list[dict[str, Any]]) -> None:
            # A text is decoded as soon as its last window has logits, in the thread that ran that
            # window: with ONNX Runtime's batches side by side, one thread's decoding (Python,
            # under the GIL) overlaps another's model run.
            with lock:
                done = []
                for window in batch:
                    waiting[window["text"]] -= 1
                    if waiting[window["text"]] == 0:
                        done.append(window["text"])
            for i in done:
                results[i] = self._entities(texts[i], windows[i], aggregation_strategy)

        self._forward([window for text_windows in windows for window in text_windows], batch_done)
        return results

    def _entities(
        self, text: str, windows: list[dict[str, Any]], aggregation_strategy: Aggregation
    ) -> list[dict]:
        """One text's entities, from its windows' logits."""
        if self.shape_scores is not None:
            shaped = add_shape_scores(text, windows, self.shape_scores, self.word_split)
            for window, logits in zip(windows, shaped):
                window["logits"] = logits
        if self.decoding == "argmax":
            return self.aggregator(text, windows, aggregation_strategy)
        return decode_words(text, windows, self.label_names, self.decoding, self.crf, self.word_split)

    def _forward(self, windows: list[dict[str, Any]], batch_done: Callable[[list], None]) -> None:
        """Runs the model on every window, longest first in padded batches (of at most
        `batch_size` windows, within `max_padding` of the longest), sets each window's `logits`
        (its own length) and calls `batch_done` with each batch. An ONNX model on a CPU runs its
        `parallel` batches at once (ONNX Runtime releases the GIL in `run`)."""
        order = sorted(windows, key=lambda window: -len(window["input_ids"]))
        batches, start = [], 0
        while start < len(order):
            shortest = len(order[start]["input_ids"]) / (1 + self.max_padding)
            end = start + 1
            while end < min(len(order), start + self.batch_size) and len(order[end]["input_ids"]) >= shortest:
                end += 1
            batches.append(order[start:end])
            start = end

        def run(batch: list[dict[str, Any]]) -> None:
            logits = self.model(self.windower.batch(batch))
            for row, window in enumerate(batch):
                window["logits"] = logits[row, : len(window["input_ids"])]
            batch_done(batch)

        parallel = min(getattr(self.model, "parallel", 1), len(batches))
        runs = self._threads().map(run, batches) if parallel > 1 else map(run, batches)
        for _ in runs:  # run them all here; a batch's error is raised here
            pass

    def _threads(self) -> ThreadPoolExecutor:
        """The threads that run batches side by side: made on first use, and again in a process
        forked after it (a fork copies the pool but not its threads, so it would wait forever)."""
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(self.model.parallel, thread_name_prefix="lit_ner-onnx")
                self._pool_pid = os.getpid()
            return self._pool


ONNX_HINT = "model.onnx (lit_ner export ... --onnx)"
