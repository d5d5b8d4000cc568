"""A fit logged to W&B in offline mode (no network: W&B's own offline mode, no mocks) leaves a run
that `wandb sync` would upload, holding the resolved config, every validation's scores, tables
and plots, the summary and, with `log_model`, the checkpoint and the Hugging Face export."""

import csv
import json
import math
from pathlib import Path

import pytest

from lit_ner.formats import read_conll
from lit_ner.plots import SAMPLE_COLUMNS, highlighted, sample_predictions

from .conftest import FIXTURES, REPO
from .test_cli import run_lit_ner, tiny_fit_args
from .wandb_records import read_run

WANDB_CONFIG = str(REPO / "configs" / "wandb.yaml")
QUIRKS = FIXTURES / "quirks.conll"


def offline_fit(tiny_model_dir, tmp_path, *args):
    """A 3-epoch tiny fit with W&B offline (its staging folder in tmp_path); the run's log."""
    result = run_lit_ner(
        *tiny_fit_args(tiny_model_dir, tmp_path),
        "--trainer.max_epochs=3",
        "--trainer.log_every_n_steps=1",
        "--throughput.window_size=2",  # rates from the second step on
        "--model.learning_rate=1e-3",
        *args,
        env={"WANDB_SILENT": "true", "WANDB_DATA_DIR": str(tmp_path / "wandb-data")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wandb_file,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    return result, wandb_file


@pytest.mark.slow
def test_an_offline_wandb_run_holds_all_a_dashboard_needs(tiny_model_dir, tmp_path):
    result, wandb_file = offline_fit(
        tiny_model_dir,
        tmp_path,
        "--config", WANDB_CONFIG,
        "--trainer.logger.init_args.offline=true",
        "--trainer.logger.init_args.log_model=true",  # Lightning alone refuses this with offline
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        "--trainer.logger.init_args.name=tiny",
    )  # fmt: skip
    run = read_run(wandb_file)
    history = run["history"]

    def logged(key):
        return [row[key] for row in history if key in row]

    # Every value LightningCLI resolved, and the label names the data module linked to the model.
    config = run["config"]["config"]
    assert config["trainer"]["max_epochs"] == 3 and config["model"]["learning_rate"] == 1e-3
    assert config["data"]["train_file"] == str(QUIRKS)
    types = {tag[2:] for sentence in read_conll(QUIRKS)["tags"] for tag in sentence if tag != "O"}
    tags = {"O"} | {f"{prefix}-{type_}" for type_ in types for prefix in "BI"}  # the full BIO set
    assert set(config["model"]["label_names"]) == tags
    assert run["config"]["model_name_or_path"] == tiny_model_dir  # the module's own hyperparameters

    # Scores once per validation epoch and once for test; loss, learning rate, throughput per step.
    val_f1 = logged("val/f1")
    assert len(val_f1) == 3 and all(len(logged(f"val/{name}")) == 3 for name in ("precision", "recall"))
    assert len(logged("test/f1")) == 1 and len(logged("test/accuracy")) == 1
    steps = len(logged("train/loss"))
    assert steps == 3 * 1  # quirks.conll: 3 sentences, one batch of 16 per epoch
    lrs = logged("train/lr")  # warm-up free: linear decay from 1e-3 towards 0
    assert len(lrs) == steps and lrs[0] == pytest.approx(1e-3) and lrs == sorted(lrs, reverse=True)
    assert len(set(lrs)) == len(lrs)
    # Lightning's ThroughputMonitor: sentences and real tokens per second once its window is full.
    rates, tokens = logged("train/device/samples_per_sec"), logged("train/device/items_per_sec")
    assert len(rates) == len(tokens) == steps - 1 and all(rate > 0 for rate in rates + tokens)
    assert all(token_rate > rate for rate, token_rate in zip(rates, tokens))

    # Each validation (3) and the test: the per-type F1 and confusion-matrix images, the per-type
    # report and the sample predictions as tables, their files in the run folder or W&B's staging.
    run_dir = wandb_file.parent
    for stage, count in (("val", 3), ("test", 1)):
        for image in ("per_type_f1", "confusion"):
            files = logged(f"{stage}/{image}/filenames")
            assert len(files) == count, (stage, image)
            assert all((run_dir / "files" / name).stat().st_size > 1000 for names in files for name in names)
        for table in ("per_type", "samples"):
            assert len(logged(f"{stage}/{table}/path")) == count, (stage, table)
    tables = {a["name"].split("-")[2]: a for a in run["artifacts"] if a["type"] == "run_table"}
    per_type = json.loads(Path(tables["valper_type"]["files"]["val/per_type.table.json"][1]).read_text())
    assert per_type["columns"] == ["type", "precision", "recall", "f1", "support"]
    assert {row[0] for row in per_type["data"]} >= {"micro avg", "macro avg"}
    samples = tables["testsamples"]["files"]
    table = json.loads(Path(samples["test/samples.table.json"][1]).read_text())
    assert table["columns"] == SAMPLE_COLUMNS
    words = read_conll(QUIRKS)["tokens"]
    assert [row[0] for row in table["data"]] == [" ".join(w) for w in words[:20]]
    differences = table["data"][0][1]
    assert differences["_type"] == "html-file"
    html_text = Path(samples[differences["path"]][1]).read_text()
    assert "<b>gold</b>" in html_text and "<b>predicted</b>" in html_text

    # log_model: the best checkpoint and the Hugging Face export, as model artifacts to upload.
    models = {a["name"].split("-")[0]: a for a in run["artifacts"] if a["type"] == "model"}
    assert set(models) == {"model", "hf_model"}
    for artifact in models.values():
        assert "best" in artifact["aliases"]
        for size, local_copy in artifact["files"].values():
            assert Path(local_copy).stat().st_size == size > 0
    assert set(models["model"]["files"]) == {"model.ckpt"}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(models["hf_model"]["files"])
    exported = json.loads(Path(models["hf_model"]["files"]["config.json"][1]).read_text())
    assert set(exported["id2label"].values()) == tags

    summary = run["summary"]
    assert summary["best/val_f1"] == pytest.approx(max(val_f1))
    assert summary["test/f1"] == pytest.approx(logged("test/f1")[0])
    assert summary["export"].endswith("hf_model") and summary["best_checkpoint"].endswith(".ckpt")
    assert models["model"]["metadata"]["original_filename"] == Path(summary["best_checkpoint"]).name

    # The run's own folder (W&B's save_dir is shared by every run): save_dir/<project>/<run id>.
    run_folder = tmp_path / "lit_ner" / wandb_file.stem.removeprefix("run-")
    assert Path(summary["export"]) == run_folder / "hf_model"
    assert Path(summary["best_checkpoint"]).parent == run_folder / "checkpoints"
    assert {"config.yaml", "test_report.json", "predictions", "hf_model"} <= {
        p.name for p in run_folder.iterdir()
    }
    assert not (tmp_path / "config.yaml").exists() and not (tmp_path / "hf_model").exists()

    # The terminal: a model summary with the forward's FLOPs, then the closing block.
    assert "Total FLOPs" in result.stdout and "Total FLOPs: 0 " not in result.stdout
    assert result.stdout.rstrip().splitlines()[-6] == "lit_ner fit: done"


@pytest.mark.slow
def test_with_wandb_off_the_csv_logs_hold_the_same_scalars(tiny_model_dir, tmp_path):
    both = tmp_path / "both.yaml"
    both.write_text(
        f"""trainer:
  logger:
    - class_path: lightning.pytorch.loggers.CSVLogger
      init_args: {{save_dir: {tmp_path}, name: csv}}
    - class_path: lightning.pytorch.loggers.WandbLogger
      init_args: {{save_dir: {tmp_path}, offline: true, project: lit_ner}}
"""
    )
    _, wandb_file = offline_fit(tiny_model_dir, tmp_path, "--config", str(both))
    scalars = {}
    for row in read_run(wandb_file)["history"]:
        for key, value in row.items():
            if isinstance(value, (int, float)) and not key.startswith(("_", "trainer/")) and "/" in key:
                scalars.setdefault(key, []).append(value)
    (metrics_csv,) = tmp_path.glob("csv/version_*/metrics.csv")
    columns = {}
    for row in csv.DictReader(metrics_csv.open()):
        for key, value in row.items():
            if value != "":
                columns.setdefault(key, []).append(float(value))
    # W&B's media keys (counts, sizes of tables and images) are not scalars a CSV would hold.
    media = {
        key
        for key in scalars
        if key.rsplit("/", 1)[-1] in {"count", "width", "height", "ncols", "nrows", "size"}
    }
    assert {
        "train/loss",
        "train/lr",
        "train/device/samples_per_sec",
        "val/f1",
        "test/f1",
        "val/person/f1",
    } <= set(columns)
    assert set(scalars) - media == set(columns) - {"step", "epoch"}
    for key in columns.keys() - {"step", "epoch"}:
        assert len(columns[key]) == len(scalars[key]), key
        assert all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(columns[key], scalars[key])), key


def test_sample_predictions_list_gold_predicted_missed_and_spurious_entities():
    words = ["Paris", "Hilton", "visited", "New", "York"]
    gold = ["B-person", "I-person", "O", "B-location", "I-location"]
    predicted = ["B-location", "O", "O", "B-location", "I-location"]
    (row,) = sample_predictions({"words": [words], "y_true": [gold], "y_pred": [predicted]}, 20)
    assert dict(zip(SAMPLE_COLUMNS, row)) | {"differences": None} == {
        "text": "Paris Hilton visited New York",
        "differences": None,
        "gold": "Paris Hilton (person); New York (location)",
        "predicted": "Paris (location); New York (location)",
        "missed": "Paris Hilton (person)",
        "spurious": "Paris (location)",
    }


def test_highlighted_marks_found_missed_and_spurious_spans_and_escapes_the_text():
    words = ["<b>", "Paris", "Hilton", "&", "New", "York"]
    gold = {("person", 1, 2), ("location", 4, 5)}
    predicted = {("location", 1, 1), ("location", 4, 5)}
    gold_line, predicted_line = highlighted(words, gold, predicted).split("<b>predicted</b>")
    assert "&lt;b&gt;" in gold_line and " &amp; " in gold_line  # the words are text, not markup
    assert 'background:#fdd49e;padding:1px 3px;border-radius:3px">Paris Hilton <sub>person</sub>' in gold_line
    assert 'background:#c7e9c0;padding:1px 3px;border-radius:3px">New York <sub>location</sub>' in gold_line
    assert 'background:#fcbba1;padding:1px 3px;border-radius:3px">Paris <sub>location</sub>' in predicted_line
    assert (
        'background:#c7e9c0;padding:1px 3px;border-radius:3px">New York <sub>location</sub>' in predicted_line
    )
    assert predicted_line.count("<span") == 2 and gold_line.count("<span") == 2
