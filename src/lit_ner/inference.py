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

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from lit_ner.errors import LitNerError, exit_with
from lit_ner.hub import hub_errors, resolve_name_or_path

AGGREGATION_STRATEGIES = ("none", "simple", "first", "average", "max")
Aggregation = Literal["none", "simple", "first", "average", "max"]
DECODINGS = ("argmax", "valid_bio", "crf")
Decoding = Literal["argmax", "valid_bio", "crf"]


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
        device: str | torch.device = "cpu",
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
        lit_ner checkpoint (`.ckpt`, whose base model must be loadable as in training)."""
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        path = resolve_name_or_path(str(model_name_or_path))
        if path.endswith(".ckpt"):
            model, tokenizer = _from_checkpoint(path, trust_remote_code)
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

        from lit_ner.decoding import IMPOSSIBLE, bio_constraints, viterbi_decode
        from lit_ner.metrics import get_entities

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


def _from_checkpoint(
    path: str, trust_remote_code: bool, checkpoint: dict[str, Any] | None = None
) -> tuple[Any, Any]:
    """The Hugging Face model and tokenizer of a lit_ner checkpoint (read from `path` unless
    already loaded)."""
    from transformers import AutoTokenizer

    from lit_ner.checkpoints import load_checkpoint
    from lit_ner.model import load_token_classifier, set_decoding

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


def read_texts(
    path: str | Path, text_field: str = "text"
) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """Reads `lit_ner tag`'s input: one text per line, or JSONL (`.jsonl`/`.json`) objects with a
    `text_field`, the other fields passed through.

    Returns:
        The good lines as `(line number, record)` with `record["text"]` the text, and one
        message per bad line (an empty line, a line that is not a JSON object with a string
        `text_field`); a bad line never stops the others.
    """
    import json

    from lit_ner.data import read_text

    path = Path(path)
    lines = read_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    if not lines:
        raise LitNerError(f"{path}: empty file, no texts to tag")
    jsonl = path.suffix in {".jsonl", ".json"}
    records, problems = [], []
    for line_no, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line.strip():
            problems.append(f"{path}:{line_no}: empty line, skipped")
            continue
        if not jsonl:
            records.append((line_no, {"text": line}))
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{line_no}: not valid JSON ({exc.msg}), skipped")
            continue
        if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
            problems.append(f'{path}:{line_no}: expected an object with a string "{text_field}", skipped')
            continue
        text = record.pop(text_field)
        records.append((line_no, {"text": text, **record}))
    return records, problems


def main(argv: list[str] | None = None) -> None:
    """`lit_ner tag`: tags each text of a file and writes one JSON object per text."""
    import json
    import sys

    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog="lit_ner tag", description=main.__doc__.split(": ", 1)[1])
    parser.add_argument("input", help="a text file (one text per line) or JSONL with a text field")
    parser.add_argument("--model", required=True, help="an export (hf_model/), a Hub id or a lit_ner .ckpt")
    parser.add_argument("--output", help="write JSONL here instead of stdout (atomically)")
    parser.add_argument("--aggregation_strategy", choices=AGGREGATION_STRATEGIES, default="simple")
    parser.add_argument("--text_field", default="text", help="the JSONL field holding the text")
    parser.add_argument("--batch_size", type=int, default=32, help="windows per forward pass")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--precision",
        choices=["auto", "32", "bf16"],
        default="auto",
        help="auto: bf16 where the device has bf16 matmuls, else 32; 32 gives the pipeline's exact scores",
    )
    parser.add_argument("--stride", type=int, help="tokens shared by the windows of a long text")
    parser.add_argument(
        "--decoding",
        choices=["model", *DECODINGS],
        default="model",
        help="model: as the model was validated (its config's lit_ner_decoding); argmax: the pipeline's, "
        "with --aggregation_strategy; valid_bio, crf: word-level BIO spans",
    )
    parser.add_argument("--trust_remote_code", type=bool, default=False)
    args = parser.parse_args(argv)
    try:
        records, problems = read_texts(args.input, args.text_field)
        for problem in problems:
            print(f"lit_ner: warning: {problem}", file=sys.stderr)
        tagger = Tagger.from_pretrained(
            args.model,
            trust_remote_code=args.trust_remote_code,
            batch_size=args.batch_size,
            device=args.device,
            precision=args.precision,
            stride=args.stride,
            decoding=None if args.decoding == "model" else args.decoding,
        )
        entities = tagger.tag([record["text"] for _, record in records], args.aggregation_strategy)
    except LitNerError as exc:
        exit_with(exc)
    lines = [
        json.dumps({**record, "entities": to_json(text_entities)}, ensure_ascii=False)
        for (_, record), text_entities in zip(records, entities)
    ]
    text = "".join(line + "\n" for line in lines)
    if args.output:
        from lit_ner.data import write_atomically

        write_atomically(Path(args.output), text)
    else:
        sys.stdout.write(text)
    if problems:
        sys.exit(1)


def to_json(entities: list[dict]) -> list[dict]:
    """The pipeline's entities with plain Python numbers (its scores are numpy floats)."""
    return [
        {key: value.item() if hasattr(value, "item") else value for key, value in e.items()} for e in entities
    ]


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
    import json

    from lit_ner.checkpoints import load_checkpoint
    from lit_ner.model import save_hf_model

    checkpoint = load_checkpoint(checkpoint_path)
    model, tokenizer = _from_checkpoint(str(checkpoint_path), trust_remote_code, checkpoint)
    report = Path(checkpoint_path).resolve().parent.parent / "test_report.json"
    scores = json.loads(report.read_text())["scores"] if report.is_file() else None
    card = model_card(
        checkpoint.get("hyper_parameters", {}), checkpoint.get("datamodule_hyper_parameters", {}), scores
    )
    return save_hf_model(model, tokenizer, out_dir, card)


def export_main(argv: list[str] | None = None) -> None:
    """`lit_ner export CKPT OUT_DIR`: writes a Hugging Face model folder from a checkpoint."""

    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog="lit_ner export", description=export_main.__doc__.split(": ", 1)[1])
    parser.add_argument("checkpoint", help="a lit_ner .ckpt")
    parser.add_argument("out_dir", help="the folder to write (replaced whole if it exists)")
    parser.add_argument("--trust_remote_code", type=bool, default=False)
    args = parser.parse_args(argv)
    try:
        out = export_checkpoint(args.checkpoint, args.out_dir, args.trust_remote_code)
    except LitNerError as exc:
        exit_with(exc)
    print(f"Hugging Face export: {out}")


class PredictionWriter(BasePredictionWriter):
    """`predict`'s output: the predicted split as `predictions/<split>.conll` (token, gold,
    predicted; what `lit_ner evaluate` scores) and `predictions/<split>.jsonl`, one object per
    sentence in `lit_ner tag`'s form: `{"sentence_id", "text", "entities": [{"entity_group",
    "score", "word", "start", "end"}]}`, the text being the words joined by single spaces and
    each entity a BIO span of words (seqeval's default reading) with its words' mean probability.

    Under DDP every process's predictions are gathered first; rank 0 writes each sentence once
    (the sampler's repeats dropped, a long sentence's windows joined).

    Args:
        output_dir: where `predictions/` goes (default: the run directory).
    """

    def __init__(self, output_dir: str | None = None) -> None:
        super().__init__(write_interval="epoch")
        self.output_dir = output_dir

    def write_on_epoch_end(self, trainer: Any, pl_module: Any, predictions: Any, batch_indices: Any) -> None:
        import json

        from lit_ner.data import write_atomically, write_conll
        from lit_ner.metrics import join_windows

        pieces = [piece for batch in predictions for piece in batch]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, pieces)
            pieces = [piece for part in gathered for piece in part]
        run_dir = Path(self.output_dir or trainer.log_dir or trainer.default_root_dir)
        if not trainer.is_global_zero:
            return
        ids, tags, scores = join_windows(
            [p["sentence_id"] for p in pieces],
            [p["word_offset"] for p in pieces],
            [p["tags"] for p in pieces],
            [p["scores"] for p in pieces],
        )
        data = trainer.datamodule
        split = data.hparams.predict_split
        words, gold = data.words(split), data.tags(split)
        conll = write_conll(
            run_dir / "predictions" / f"{split}.conll", [words[i] for i in ids], [gold[i] for i in ids], tags
        )
        lines = [
            json.dumps(sentence_record(i, words[i], sentence_tags, sentence_scores), ensure_ascii=False)
            for i, sentence_tags, sentence_scores in zip(ids, tags, scores)
        ]
        jsonl = run_dir / "predictions" / f"{split}.jsonl"
        write_atomically(jsonl, "".join(line + "\n" for line in lines))
        print(f"predictions: {conll} (score them with: lit_ner evaluate {conll}) and {jsonl}")


def sentence_record(
    sentence_id: int, words: Sequence[str], tags: Sequence[str], scores: Sequence[float]
) -> dict:
    """One sentence's predictions as `lit_ner tag` writes a text's: character offsets into the
    words joined by single spaces.

    >>> record = sentence_record(0, ["Hi", "New", "York"], ["O", "B-location", "I-location"], [0.9, 0.8, 0.6])
    >>> record["text"], record["entities"]
    ('Hi New York', [{'entity_group': 'location', 'score': 0.7, 'word': 'New York', 'start': 3, 'end': 11}])
    """
    from lit_ner.metrics import get_entities

    starts, position = [], 0
    for word in words:
        starts.append(position)
        position += len(word) + 1
    text = " ".join(words)
    entities = []
    for type_, first, last in sorted(get_entities(list(tags)), key=lambda entity: entity[1]):
        start, end = starts[first], starts[last] + len(words[last])
        score = sum(scores[first : last + 1]) / (last - first + 1)
        entities.append(
            {
                "entity_group": type_,
                "score": round(score, 6),
                "word": text[start:end],
                "start": start,
                "end": end,
            }
        )
    return {"sentence_id": sentence_id, "text": text, "entities": entities}
