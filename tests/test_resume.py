"""A real training process is killed mid-epoch and resumed: it must end exactly where an
uninterrupted run ends (weights, steps, epochs, learning-rate schedule), and two runs with one
seed must agree exactly."""

import json
import os
import random
import signal
import subprocess
import sys

import pytest
import torch

from lit_ner.checkpoints import LAST

from .conftest import REPO

WNUT_CONFIG = str(REPO / "configs" / "wnut.yaml")
STEPS_PER_EPOCH = 10  # 40 sentences, batch 4
EPOCHS = 3
KILL_AT_STEP = 17  # mid-epoch 2, one step after the step checkpoint at 16


def write_corpus(path, n_sentences=40, seed=0):
    rng = random.Random(seed)
    names = ["Paris", "Taylor Swift", "Apple", "New York", "Bob", "Microsoft Teams"]
    types = ["location", "person", "corporation", "location", "person", "product"]
    filler = ["the", "show", "was", "great", "tonight", "in", "lol", "with", "at", "my"]
    lines = []
    for _ in range(n_sentences):
        for _ in range(rng.randint(3, 12)):
            if rng.random() < 0.2:
                k = rng.randrange(len(names))
                for i, word in enumerate(names[k].split()):
                    lines.append(f"{word}\t{'B' if i == 0 else 'I'}-{types[k]}")
            else:
                lines.append(f"{rng.choice(filler)}\tO")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")
    return path


def fit(tmp_path, model_dir, save_dir, *extra, check=True):
    corpus = tmp_path / "corpus.conll"
    args = [
        sys.executable, "-m", "lit_ner", "fit", "--config", WNUT_CONFIG,
        "--model.model_name_or_path", model_dir,
        f"--data.train_file={corpus}", f"--data.validation_file={corpus}", f"--data.test_file={corpus}",
        f"--data.cache_dir={tmp_path / 'cache'}", "--data.batch_size=4",
        "--model.learning_rate=1e-3", "--model.warmup_steps=0.2",
        f"--trainer.max_epochs={EPOCHS}", "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={save_dir}", f"--trainer.logger.init_args.save_dir={save_dir}",
        "--last_checkpoint.every_n_train_steps=4", "--seed_everything=7",
        *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def final_state(save_dir):
    """The checkpoint written at the end of training (the newest last.ckpt)."""
    paths = sorted((save_dir / "wnut").glob(f"version_*/checkpoints/{LAST}"), key=os.path.getmtime)
    return torch.load(paths[-1], map_location="cpu", weights_only=True)


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_to_the_same_weights_as_an_uninterrupted_run(tmp_path, tiny_model_dir):
    write_corpus(tmp_path / "corpus.conll")
    fit(tmp_path, tiny_model_dir, tmp_path / "straight")
    straight = final_state(tmp_path / "straight")

    killed = fit(
        tmp_path,
        tiny_model_dir,
        tmp_path / "preempted",
        "--trainer.callbacks+=tests.faults.KillAtStep",
        f"--trainer.callbacks.step={KILL_AT_STEP}",
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    interrupted = torch.load(
        tmp_path / "preempted/wnut/version_0/checkpoints" / LAST, map_location="cpu", weights_only=True
    )
    assert interrupted["global_step"] == 16 and interrupted["epoch"] == 1  # mid-epoch: 6 of 10 batches

    resumed_run = fit(tmp_path, tiny_model_dir, tmp_path / "preempted", "--ckpt_path=last")
    assert "resuming from" in resumed_run.stderr + resumed_run.stdout
    resumed = final_state(tmp_path / "preempted")
    # The continuation has its own run directory; the killed run's logs stay.
    assert (tmp_path / "preempted/wnut/version_0/metrics.csv").is_file()
    assert (tmp_path / "preempted/wnut/version_1/checkpoints" / LAST).is_file()

    assert resumed["global_step"] == straight["global_step"] == STEPS_PER_EPOCH * EPOCHS
    assert resumed["epoch"] == straight["epoch"]
    assert resumed["lr_schedulers"] == straight["lr_schedulers"]
    assert straight["state_dict"].keys() == resumed["state_dict"].keys()
    for name, weight in straight["state_dict"].items():
        assert torch.equal(weight, resumed["state_dict"][name]), name
    # And the weights did move after the checkpoint the resume started from.
    assert not torch.equal(
        interrupted["state_dict"]["model.classifier.weight"], resumed["state_dict"]["model.classifier.weight"]
    )

    # Determinism: a second uninterrupted run with the same seed gives identical test metrics.
    fit(tmp_path, tiny_model_dir, tmp_path / "again")
    reports = [
        json.loads((tmp_path / run / "wnut/version_0/test_report.json").read_text())
        for run in ("straight", "again")
    ]
    assert reports[0] == reports[1]


def fit_in_process(tmp_path, model_dir, *extra):
    from lit_ner.cli import cli_main

    corpus = write_corpus(tmp_path / "corpus.conll")
    return cli_main(
        [
            "fit", "--config", WNUT_CONFIG, "--model.model_name_or_path", model_dir,
            f"--data.train_file={corpus}", f"--data.validation_file={corpus}", f"--data.test_file={corpus}",
            f"--data.cache_dir={tmp_path / 'cache'}", "--data.batch_size=4", "--model.learning_rate=1e-3",
            "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false", "--test_after_fit=false",
            f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}",
            "--last_checkpoint.every_n_train_steps=1",
            *extra,
        ]
    )  # fmt: skip


def test_a_nonfinite_loss_stops_training_naming_the_step_and_keeps_the_last_good_checkpoint(
    tmp_path, tiny_model_dir, capsys
):
    with pytest.raises(SystemExit) as exit_:
        fit_in_process(
            tmp_path,
            tiny_model_dir,
            "--trainer.callbacks+=tests.faults.NaNLossAtStep",
            "--trainer.callbacks.step=3",
            "--trainer.callbacks.forever=true",
        )
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(
        "lit_ner: error: non-finite training loss at step 3, epoch 0, batch 3 (this process: loss nan"
    )
    assert "training stopped" in error
    last = torch.load(tmp_path / "wnut/version_0/checkpoints" / LAST, map_location="cpu", weights_only=True)
    assert last["global_step"] == 3
    assert all(torch.isfinite(weight).all() for weight in last["state_dict"].values())


def test_with_skip_a_nonfinite_loss_drops_that_batch_and_training_goes_on(tmp_path, tiny_model_dir):
    with pytest.warns(UserWarning, match="1 training batch skipped for a non-finite loss"):
        cli = fit_in_process(
            tmp_path,
            tiny_model_dir,
            "--model.nonfinite_loss=skip",
            "--trainer.callbacks+=tests.faults.NaNLossAtStep",
            "--trainer.callbacks.step=3",
        )
    assert cli.model.skipped_batches == 1
    # The schedule keeps its length, but the optimizer updated the weights one time less.
    assert cli.trainer.global_step == STEPS_PER_EPOCH
    optimizer = cli.trainer.optimizers[0]
    weight = cli.model.model.classifier.weight
    assert optimizer.state[weight]["step"] == STEPS_PER_EPOCH - 1
    assert all(torch.isfinite(p).all() for p in cli.model.parameters())


def test_ckpt_path_last_on_a_jobs_first_start_trains_from_the_start(tmp_path, tiny_model_dir, capsys):
    # A preemptible job is always (re)started with --ckpt_path last; the first time there is none.
    cli = fit_in_process(tmp_path, tiny_model_dir, "--ckpt_path=last")
    assert cli.trainer.global_step == STEPS_PER_EPOCH
    assert (tmp_path / "wnut/version_0/checkpoints" / LAST).is_file()


def test_a_kill_during_a_checkpoint_save_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    from lit_ner.checkpoints import SafeCheckpointIO, load_checkpoint

    io = SafeCheckpointIO()
    path = tmp_path / LAST
    io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "global_step": 1}, path)

    def killed_midway(obj, file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a zip archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["global_step"] == 1
    assert io.load_checkpoint(path)["state_dict"]["w"].sum() == 0
