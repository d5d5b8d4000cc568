"""The design card's command, `python -m lit_ner fit --config configs/wnut.yaml`, run end to end
on its Hub path: `distilbert/distilbert-base-uncased` and `leondz/wnut_17` (its parquet conversion)
downloaded through huggingface_hub, transformers and datasets' own code from a stand-in Hub
(`tests/standin_hub.py`), since the real one cannot be reached from the tests. Then run again with
the stand-in stopped, from the caches the first run filled, as a user without network would."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, save_tiny_distilbert
from .standin_hub import commit_sha, standin_hub

MODEL_ID = "distilbert/distilbert-base-uncased"
DATASET_ID = "leondz/wnut_17"
PARQUET_REVISION = "refs/convert/parquet"
# Enough sentences for a short run to find entities in each split; few, for speed.
SENTENCES_PER_SPLIT = 64

MODEL_CARD = """\
# distilbert/distilbert-base-uncased (stand-in)

A tiny random DistilBERT (2 layers, 32 wide) standing in for DistilBERT's weights in lit_ner's
tests: its tokenizer is the real bert-base-uncased WordPiece vocabulary, its weights are random.
Served by tests/standin_hub.py; it is not the model the Hub holds under this name.
"""


def write_model_repo(folder: Path, tokenizer) -> None:
    """A tiny random DistilBERT with the real uncased WordPiece tokenizer, as a Hub model repo."""
    save_tiny_distilbert(folder, tokenizer)  # model.safetensors, tokenizer files
    (folder / "README.md").write_text(MODEL_CARD)


def write_parquet_conversion(folder: Path) -> None:
    """WNUT-17 in the layout of the Hub's parquet conversion (`refs/convert/parquet`):
    CONFIG/SPLIT/NNNN.parquet, with the tags a `ClassLabel` sequence whose names travel in the
    parquet schema's metadata, as the conversion's do. Only the first `SENTENCES_PER_SPLIT`
    sentences of each split, to keep the run short."""
    import datasets

    from lit_ner.data.sources import read_files
    from lit_ner.wnut17 import WNUT17_LABELS, wnut17_files

    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.List(datasets.Value("string")),
            "ner_tags": datasets.List(datasets.ClassLabel(names=WNUT17_LABELS)),
        }
    )
    for split, data in read_files(wnut17_files()).items():
        tokens, tags = data["tokens"][:SENTENCES_PER_SPLIT], data["tags"][:SENTENCES_PER_SPLIT]
        rows = {
            "id": [str(n) for n in range(len(tokens))],
            "tokens": tokens,
            "ner_tags": [[WNUT17_LABELS.index(tag) for tag in sentence] for sentence in tags],
        }
        path = folder / "wnut_17" / split / "0000.parquet"
        path.parent.mkdir(parents=True)
        datasets.Dataset.from_dict(rows, features=features).to_parquet(path)


def fit_on_the_hub_path(hub_url: str, hf_home: Path, run_root: Path) -> subprocess.CompletedProcess:
    """`fit --config configs/wnut.yaml`, cut to a few steps, with the libraries pointed at
    `hub_url` and their caches in `hf_home`. In a subprocess, since the libraries read the
    endpoint and offline mode once, on import (and conftest.py makes this session offline)."""
    env = {name: value for name, value in os.environ.items() if name != "WNUT17_DIR"}  # not the release
    env.update(
        HF_ENDPOINT=hub_url,
        HF_HUB_OFFLINE="0",
        HF_HOME=str(hf_home),
        HF_DATASETS_CACHE=str(hf_home / "datasets"),
    )
    args = [
        *("--config", "configs/wnut.yaml"),
        *("--trainer.accelerator", "cpu", "--trainer.max_steps", "4"),
        *("--trainer.limit_val_batches", "2", "--trainer.limit_test_batches", "2"),
        *("--trainer.num_sanity_val_steps", "0", "--trainer.enable_progress_bar", "false"),
        *("--trainer.logger.init_args.save_dir", str(run_root), "--trainer.default_root_dir", str(run_root)),
        *("--data.max_length", "128", "--report_writer.plots", "false"),
    ]
    command = [sys.executable, "-m", "lit_ner", "fit", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=600)


def assert_fitted_and_exported(result: subprocess.CompletedProcess, run_root: Path) -> None:
    """Exit 0, a test report and a Hugging Face export with WNUT-17's labels in the run's folder."""
    from lit_ner.wnut17 import WNUT17_LABELS

    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = run_root / "wnut" / "version_0"
    report = json.loads((run_dir / "test_report.json").read_text())
    assert set(report["scores"]) >= {"precision", "recall", "f1"}
    config = json.loads((run_dir / "hf_model" / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(len(config["id2label"]))] == WNUT17_LABELS
    assert (run_dir / "hf_model" / "model.safetensors").is_file()


@pytest.mark.slow
def test_the_design_card_command_runs_on_the_hub_path_then_from_the_cache(tmp_path, tokenizer):
    root = tmp_path / "hub"
    write_model_repo(root / "models" / MODEL_ID / "main", tokenizer)
    write_parquet_conversion(root / "datasets" / DATASET_ID / PARQUET_REVISION)
    hf_home = tmp_path / "hf_home"

    with standin_hub(root) as hub:
        online = fit_on_the_hub_path(hub.url, hf_home, tmp_path / "online")
        closed_url = hub.url
    log = "\n".join(str(request) for request in hub.requests)
    assert_fitted_and_exported(online, tmp_path / "online")
    fetched = hub.fetched()
    model_files = f"/{MODEL_ID}/resolve/{commit_sha('model', MODEL_ID, 'main')}"
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        assert f"{model_files}/{name}" in fetched, log
    data_files = f"/datasets/{DATASET_ID}/resolve/{commit_sha('dataset', DATASET_ID, PARQUET_REVISION)}"
    for split in ("train", "validation", "test"):
        assert f"{data_files}/wnut_17/{split}/0000.parquet" in fetched, log

    # The stand-in is stopped: its port refuses connections, as a Hub out of reach does. lit_ner
    # sees it before the first load and puts the libraries in offline mode, so the run starts from
    # their caches at once (left to themselves, three of their calls would retry for 23 s each).
    offline = fit_on_the_hub_path(closed_url, hf_home, tmp_path / "offline")
    assert_fitted_and_exported(offline, tmp_path / "offline")
    assert f"the Hugging Face Hub ({closed_url}) cannot be reached" in offline.stderr
    assert "loading from the local caches only" in offline.stderr
    assert "Retrying" not in offline.stderr
