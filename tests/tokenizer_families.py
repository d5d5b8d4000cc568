"""Tiny encoders of every tokenizer family lit_ner meets, built here without downloads: a tokenizer
trained by the `tokenizers` library on WNUT-17's training words (WordPiece uncased and cased,
byte-level BPE, Unigram with SentencePiece's "▁") and a 2-layer, 32-wide random model of the
family's architecture around it, saved on disk as a Hub model is.

Each tokenizer is saved as its family ships it: the RoBERTa one without `add_prefix_space` in its
config (as roberta-base's own tokenizer_config.json has none), the XLM-R and DeBERTa-v2 ones with
SentencePiece's Metaspace pre-tokenizer, the cased ones without lower-casing.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

# Positions the tiny models take (RoBERTa-style models count theirs from the padding id + 1).
MAX_LENGTH = 128
VOCAB_SIZE = 1000


@dataclass(frozen=True)
class Family:
    name: str
    model_type: str  # transformers' config type
    tokenizer: str  # "wordpiece-uncased", "wordpiece-cased", "byte-bpe", "unigram"
    specials: str  # "bert" ([CLS] x [SEP]) or "roberta" (<s> x </s>)


FAMILIES = [
    Family("bert", "bert", "wordpiece-uncased", "bert"),
    Family("distilbert", "distilbert", "wordpiece-cased", "bert"),
    Family("electra", "electra", "wordpiece-cased", "bert"),
    Family("mpnet", "mpnet", "wordpiece-uncased", "roberta"),
    Family("roberta", "roberta", "byte-bpe", "roberta"),
    Family("xlm-roberta", "xlm-roberta", "unigram", "roberta"),
    Family("deberta-v2", "deberta-v2", "unigram", "bert"),
]
# Each family's word-start marker, where its subwords carry one: byte-level BPE's "Ġ" (a space),
# SentencePiece's "▁"; WordPiece marks the other way round, continuations with "##".
WORD_START = {"byte-bpe": "Ġ", "unigram": "▁"}

SPECIALS = {
    "bert": {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]",
             "mask_token": "[MASK]"},
    # In roberta-base's id order: <s> 0, <pad> 1, </s> 2, <unk> 3.
    "roberta": {"bos_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>",
                "cls_token": "<s>", "sep_token": "</s>", "mask_token": "<mask>"},
}  # fmt: skip
TOKENIZER_CLASSES = {
    "bert": "BertTokenizer",
    "distilbert": "DistilBertTokenizer",
    "electra": "ElectraTokenizer",
    "mpnet": "MPNetTokenizer",
    "roberta": "RobertaTokenizer",
    "xlm-roberta": "XLMRobertaTokenizer",
    "deberta-v2": "DebertaV2Tokenizer",
}


def training_text(wnut17_train: Path) -> list[str]:
    """WNUT-17's training words, 20 to a line."""
    opener = gzip.open if wnut17_train.suffix == ".gz" else open
    with opener(wnut17_train, "rt", encoding="utf-8") as lines:
        words = [line.split("\t")[0] for line in lines if "\t" in line]
    return [" ".join(words[i : i + 20]) for i in range(0, len(words), 20)]


def train_tokenizer(family: Family, text: list[str]):
    """The family's `tokenizers.Tokenizer`, trained on `text`, with its special tokens around a
    sequence."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    specials = SPECIALS[family.specials]
    special_tokens = list(dict.fromkeys(specials.values()))
    if family.tokenizer.startswith("wordpiece"):
        tokenizer = Tokenizer(models.WordPiece(unk_token=specials["unk_token"]))
        lowercase = family.tokenizer == "wordpiece-uncased"
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=VOCAB_SIZE, special_tokens=special_tokens)
    elif family.tokenizer == "byte-bpe":
        tokenizer = Tokenizer(models.BPE())
        # As roberta-base's: no prefix space, so a sentence's first word has no "Ġ".
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=VOCAB_SIZE, special_tokens=special_tokens,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )  # fmt: skip
    else:
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.normalizer = normalizers.NFKC()
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(
            vocab_size=VOCAB_SIZE, special_tokens=special_tokens, unk_token=specials["unk_token"]
        )
    tokenizer.train_from_iterator(text, trainer)
    first, last = specials["cls_token"], specials["sep_token"]
    ids = {token: tokenizer.token_to_id(token) for token in (first, last)}
    if family.tokenizer == "byte-bpe":
        tokenizer.post_processor = processors.RobertaProcessing((last, ids[last]), (first, ids[first]))
    else:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{first} $A {last}", pair=f"{first} $A {last} $B {last}",
            special_tokens=list(ids.items()),
        )  # fmt: skip
    return tokenizer


def model_config(family: Family, tokenizer):
    from transformers import AutoConfig

    size = {"vocab_size": tokenizer.get_vocab_size(), "pad_token_id": tokenizer.token_to_id(
        SPECIALS[family.specials]["pad_token"]
    )}  # fmt: skip
    if family.model_type == "distilbert":
        return AutoConfig.for_model(
            "distilbert", dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=MAX_LENGTH,
            **size,
        )  # fmt: skip
    # RoBERTa-style models number positions from the padding id + 1.
    offset = size["pad_token_id"] + 1 if family.model_type in ("roberta", "xlm-roberta", "mpnet") else 0
    positions = MAX_LENGTH + offset
    extra = {"embedding_size": 32} if family.model_type == "electra" else {}
    return AutoConfig.for_model(
        family.model_type, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=positions, type_vocab_size=2, **size, **extra,
    )  # fmt: skip


def save_family_model(family: Family, text: list[str], directory: Path) -> Path:
    """The family's tiny random encoder (seed 0) and its trained tokenizer, saved in `directory`."""
    import torch
    import transformers
    from transformers import AutoModel

    tokenizer = train_tokenizer(family, text)
    torch.manual_seed(0)
    AutoModel.from_config(model_config(family, tokenizer)).save_pretrained(directory)
    cls = getattr(transformers, TOKENIZER_CLASSES[family.name])
    kwargs = {"do_lower_case": False} if family.tokenizer == "wordpiece-cased" else {}
    cls(
        tokenizer_object=tokenizer, model_max_length=MAX_LENGTH, **SPECIALS[family.specials], **kwargs
    ).save_pretrained(directory)
    if family.tokenizer == "byte-bpe":  # as roberta-base's config: the option not written at all
        config_file = directory / "tokenizer_config.json"
        config = json.loads(config_file.read_text())
        config.pop("add_prefix_space", None)
        config_file.write_text(json.dumps(config, indent=2))
    return directory
