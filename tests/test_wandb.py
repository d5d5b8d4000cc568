"""A fit logged to W&B in offline mode (no network: W&B's own offline mode, no mocks) leaves a run
that `wandb sync` would upload, holding the resolved config, every validation F1 and the summary."""

import json

import pytest

from lit_ner.data import read_conll

from .conftest import FIXTURES, REPO
from .test_cli import run_lit_ner, tiny_fit_args
from .wandb_records import read_run

WANDB_CONFIG = str(REPO / "configs" / "wandb.yaml")


@pytest.mark.slow
def test_an_offline_wandb_run_holds_the_config_each_epochs_val_f1_and_the_summary(tiny_model_dir, tmp_path):
    result = run_lit_ner(
        *tiny_fit_args(tiny_model_dir, tmp_path),
        "--config", WANDB_CONFIG,
        "--trainer.logger.init_args.offline=true",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        "--trainer.logger.init_args.name=tiny",
        "--trainer.max_epochs=3",
        "--trainer.log_every_n_steps=1",
        "--model.learning_rate=1e-3",
        "--trainer.enable_progress_bar=false",
        env={"WANDB_SILENT": "true"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (wandb_file,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    run = read_run(wandb_file)

    # Every value LightningCLI resolved, and the label names the data module linked to the model.
    config = run["config"]["config"]
    assert config["trainer"]["max_epochs"] == 3 and config["model"]["learning_rate"] == 1e-3
    assert config["data"]["train_file"] == str(FIXTURES / "quirks.conll")
    tags = {tag for sentence in read_conll(FIXTURES / "quirks.conll")["tags"] for tag in sentence}
    assert set(config["model"]["label_names"]) == tags
    assert run["config"]["model_name_or_path"] == tiny_model_dir  # the module's own hyperparameters

    # val/f1 once per epoch, the training loss per logged step, the test scores once.
    val_f1 = [row["val/f1"] for row in run["history"] if "val/f1" in row]
    assert len(val_f1) == 3
    assert any("train/loss" in row for row in run["history"])
    assert sum("test/f1" in row for row in run["history"]) == 1
    # The per-type F1 and confusion-matrix images, as one W&B image group.
    assert any(row.get("test/plots/count") == 2 for row in run["history"])

    # The learning rate per step: warm-up free, it decays linearly from 1e-3 towards 0.
    lrs = [row["train/lr"] for row in run["history"] if "train/lr" in row]
    assert lrs[0] == pytest.approx(1e-3) and lrs == sorted(lrs, reverse=True) and len(set(lrs)) == len(lrs)

    # Each validation (3) and the test: the per-type report and the sample predictions as tables.
    run_dir = wandb_file.parent
    for stage, count in (("val", 3), ("test", 1)):
        for table in ("per_type", "samples"):
            paths = [row[f"{stage}/{table}/path"] for row in run["history"] if f"{stage}/{table}/path" in row]
            assert len(paths) == count, (stage, table)
            logged = json.loads((run_dir / "files" / paths[-1]).read_text())
            if table == "per_type":
                assert logged["columns"] == ["type", "precision", "recall", "f1", "support"]
                assert {row[0] for row in logged["data"]} >= {"micro avg", "macro avg"}
            else:
                words = read_conll(FIXTURES / "quirks.conll")["tokens"]
                assert [row[0] for row in logged["data"]] == [" ".join(w) for w in words[:20]]

    summary = run["summary"]
    assert summary["best/val_f1"] == pytest.approx(max(val_f1))
    assert 0.0 <= summary["test/f1"] <= 1.0
    assert summary["export"].endswith("hf_model") and summary["best_checkpoint"].endswith(".ckpt")
