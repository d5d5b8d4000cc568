"""`lit_ner search`: trials are `fit` runs chosen by Optuna on validation F1, pruned below the
median, resumed after a kill without repeating a finished trial, shared by parallel workers; it
ends with the best config, the trials table and plots."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from lit_ner.errors import LitNerError
from lit_ner.training.search import open_study
from lit_ner.training.search_space import read_search_space

from .conftest import REPO


def space_file(tmp_path, text):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_a_space_reads_ranges_log_scales_steps_and_choices(tmp_path):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space = read_search_space(
        space_file(
            tmp_path,
            "model.learning_rate: {low: 1e-5, high: 3e-4, log: true}\n"  # 1e-5: a string to YAML 1.1
            "trainer.max_epochs: {low: 3, high: 10}\n"
            "model.warmup_steps: {low: 0.0, high: 0.2, step: 0.05}\n"
            "data.batch_size: [8, 16, 32]\n"
            "model.head: [softmax, crf]\n"
            "model.word_features: [true, false]\n",
        )
    )
    assert space.distributions == {
        "model.learning_rate": FloatDistribution(1e-5, 3e-4, log=True),
        "trainer.max_epochs": IntDistribution(3, 10),
        "model.warmup_steps": FloatDistribution(0.0, 0.2, step=0.05),
        "data.batch_size": CategoricalDistribution([8, 16, 32]),
        "model.head": CategoricalDistribution(["softmax", "crf"]),
        "model.word_features": CategoricalDistribution([True, False]),
    }
    assert space.lines["data.batch_size"] == 4


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "a: [1]\nmodel.learning_rate: {low: 1e-3, high: 1e-4}\n",
            r"line 2: model.learning_rate: low \(0.001\) must be below",
        ),
        ("model.learning_rate: {low: 0, high: 1, log: true}\n", r"line 1: .*a log scale needs low > 0"),
        ("model.learning_rate: {low: 1e-5, hihg: 1e-3}\n", r"line 1: .*low and high.*\(unknown: hihg\)"),
        ("model.head: []\n", r"line 1: model.head: an empty list of choices"),
        ("model.head: [crf, crf]\n", r"line 1: model.head: a choice is given twice"),
        ("x: [true, 1]\n", r"line 1: x: booleans mixed with numbers"),
        ("x: [[1, 2]]\n", r"line 1: x: choice \[1, 2\] is not a string, number, boolean or null"),
        ("\nx: 0.1\n", r"line 2: x: give a range .* or a list of choices"),
        ("x: {low: a, high: 1}\n", r"line 1: x: low is a number, not 'a'"),
        ("x: [1]\nx: [2]\n", r"line 2: x is given twice \(also on line 1\)"),
        ("x: [1\n", r"space.yaml, line 2: not YAML"),
        ("# nothing\n", r"space.yaml: a search space maps fit options to ranges or choices"),
    ],
)  # fmt: skip
def test_a_mistake_in_a_space_is_one_line_naming_the_file_and_line(tmp_path, text, message):
    with pytest.raises(LitNerError, match=message):
        read_search_space(space_file(tmp_path, text))


@pytest.mark.parametrize(
    "text, message",
    [
        ("model.head: [crf]\nmodel.lerning_rate: [1e-4]\n",
         r"line 2: model.lerning_rate is not a fit option \(did you mean model.learning_rate\?\)"),
        ("model.head: [softmax, viterbi]\n", r"line 1: model.head: fit does not take 'viterbi' \(.*"),
        ("data.batch_size: {low: 0.5, high: 8}\n", r"line 1: data.batch_size: fit does not take 0.5 \(.*"),
    ],
)  # fmt: skip
def test_a_space_option_fit_would_refuse_stops_the_search_before_any_trial(tmp_path, capsys, text, message):
    from lit_ner.training.search import search

    space = space_file(tmp_path, text)
    with pytest.raises(SystemExit) as exit_:
        search(["--config", str(REPO / "configs" / "wnut.yaml"), f"--space={space}", "--trials=1",
                f"--study={tmp_path / 'study'}"])  # fmt: skip
    assert exit_.value.code == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lit_ner: error:")]
    assert re.search(rf"^lit_ner: error: {re.escape(str(space))}, {message}$", line), line
    assert not (tmp_path / "study").exists()


def test_the_offline_search_space_fits_the_offline_configs(tmp_path, capsys):
    from lit_ner.training.search import search

    result = search(
        ["--config", str(REPO / "configs" / "wnut.yaml"), "--config", str(REPO / "configs" / "offline.yaml"),
         f"--space={REPO / 'configs' / 'search.yaml'}", "--trials=0", f"--study={tmp_path / 'study'}"]
    )  # fmt: skip
    assert result["trials"] == 0  # every option and each end of its range checked, no trial run
    assert "model.learning_rate" in (tmp_path / "study" / "trials.csv").read_text()


def test_the_sampler_draws_its_random_trials_at_random_then_proposes_from_the_finished_ones():
    import optuna

    from lit_ner.training.search import tpe_sampler

    def objective(trial):  # best at a high rate with a long schedule: the options act together
        rate, epochs = trial.suggest_float("lr", 1e-5, 3e-4, log=True), trial.suggest_int("epochs", 3, 10)
        return rate * 1e3 * epochs

    def proposals(sampler, trials):
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(objective, n_trials=trials)
        return [(t.params["lr"], t.params["epochs"]) for t in study.trials]

    searched = proposals(tpe_sampler(random_trials=4, seed=0), 20)
    at_random = proposals(optuna.samplers.RandomSampler(seed=0), 20)
    assert searched[:4] == at_random[:4]  # TPE's random draws are the seeded random sampler's
    assert searched[4] != at_random[4]
    guided, unguided = (sum(rate * 1e3 * epochs for rate, epochs in t[4:]) for t in (searched, at_random))
    assert guided > 1.5 * unguided  # the proposals after the random ones go where the value is high
    assert proposals(tpe_sampler(random_trials=4, seed=0), 20) == searched  # a seed repeats the study


def test_a_study_is_resumed_only_with_the_settings_it_started_with(tmp_path, capsys):
    from lit_ner.training.search import search

    space = space_file(tmp_path, "model.head: [softmax, crf]\n")
    args = [
        "--config",
        str(REPO / "configs" / "wnut.yaml"),
        f"--space={space}",
        "--trials=0",
        f"--study={tmp_path}/s",
    ]
    assert search(args)["trials"] == 0
    for other, what in (
        ("--model.learning_rate=1e-3", "configs and overrides"),
        ("--warmup_epochs=2", "pruner"),
    ):
        with pytest.raises(SystemExit):
            search([*args, other])
        err = capsys.readouterr().err
        assert f"a study started with other {what}" in err and "give another --study" in err
    with pytest.raises(SystemExit):  # a fit option a search cannot run with
        search([*args, "--seeds=3", f"--study={tmp_path}/t"])
    assert "lit_ner search: seeds is set (3); a trial is one fit" in capsys.readouterr().err


def search_command(tmp_path, train, space, *extra):
    return [
        sys.executable, "-m", "lit_ner", "search", "--config", str(REPO / "configs" / "wnut.yaml"),
        f"--model.model_name_or_path={tmp_path / 'tiny'}", f"--data.train_file={train}",
        f"--data.validation_file={train}", f"--data.test_file={train}",
        f"--data.label_names={json.dumps(LABELS)}", f"--data.cache_dir={tmp_path / 'cache'}",
        "--data.batch_size=8", "--trainer.max_epochs=3", "--trainer.log_every_n_steps=1",
        f"--space={space}", f"--study={tmp_path / 'study'}", *extra,
    ]  # fmt: skip


LABELS = ["O", "B-person", "I-person", "B-location", "I-location"]


def names_corpus(path, sentences=48, scheme="BIO"):
    """Sentences where a few names are always people and a few places always locations: a tiny
    random model learns them within an epoch at a high learning rate and not at a low one, so
    that trials differ by their settings as real ones do. In BIOES a place may be two words."""
    import random

    rng = random.Random(0)
    people, places = ["alice", "bob", "carol", "dave", "erin"], ["paris", "london", "tokyo", "berlin"]
    filler = ["met", "saw", "visited", "called", "thanked", "the", "a", "friend", "yesterday", "today"]
    blocks = []
    for _ in range(sentences):
        lines = []
        for _ in range(rng.randint(4, 9)):
            draw = rng.random()
            if draw < 0.2:
                lines.append(f"{rng.choice(people)}\t{'S' if scheme == 'BIOES' else 'B'}-person")
            elif draw < 0.35 and scheme == "BIOES":
                lines.append(f"{rng.choice(places)}\tS-location")
            elif draw < 0.35:
                lines.append(f"{rng.choice(places)}\tB-location")
            elif draw < 0.45 and scheme == "BIOES":
                lines.extend(["new\tB-location", f"{rng.choice(places)}\tE-location"])
            else:
                lines.append(f"{rng.choice(filler)}\tO")
        blocks.append("\n".join(lines))
    path.write_text("\n\n".join(blocks) + "\n")
    return path


@pytest.fixture
def search_setup(tmp_path, tiny_model_dir):
    """A tiny DistilBERT, 48 sentences of names (train = validation = test) and a two-option space."""
    import shutil

    shutil.copytree(tiny_model_dir, tmp_path / "tiny")
    train = names_corpus(tmp_path / "train.conll")
    space = space_file(
        tmp_path, "model.learning_rate: {low: 1e-4, high: 1e-2, log: true}\nmodel.head: [softmax, crf]\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "WNUT17_DIR"}
    return tmp_path, train, space, env


def run(command, env, **kwargs):
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO, **kwargs)
    return done


def trial_rows(study):
    with open(study / "trials.csv") as file:
        return list(csv.DictReader(file))


@pytest.mark.slow
def test_a_search_prunes_below_the_median_and_writes_the_best_config_the_table_and_plots(search_setup):
    tmp_path, train, space, env = search_setup
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    # The trials given, as a user gives known settings (`enqueue_trial`): two rates that learn,
    # then one that learns next to nothing, pruned after its first epoch, below their median.
    study = open_study(study_dir / "journal.log")
    study.enqueue_trial({"model.learning_rate": 1e-2, "model.head": "crf"})
    study.enqueue_trial({"model.learning_rate": 3e-3, "model.head": "crf"})
    study.enqueue_trial({"model.learning_rate": 1e-4, "model.head": "softmax"})
    done = run(
        search_command(tmp_path, train, space, "--trials=3", "--startup_trials=2", "--warmup_epochs=0"), env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trial 2 pruned after epoch 1" in done.stdout

    rows = trial_rows(study_dir)
    assert [row["state"] for row in rows] == ["complete", "complete", "pruned"]
    assert rows[1]["val_f1_epoch_3"] and not rows[2]["val_f1_epoch_2"]  # it stopped after epoch 1
    pruned_run = study_dir / "trial-2" / "version_0"
    assert json.loads((study_dir / "trial-2" / "pruned.json").read_text())["epoch"] == 1
    with open(pruned_run / "metrics.csv") as file:
        assert sum(1 for row in csv.DictReader(file) if row.get("val/f1")) == 1
    for trial in range(3):  # every trial a normal run, never tested
        run_dir = study_dir / f"trial-{trial}" / "version_0"
        summary = json.loads((run_dir / "fit_summary.json").read_text())
        assert "best/val_f1" in summary and not any(key.startswith("test/") for key in summary)
        assert not (run_dir / "test_report.json").exists()
        # Its checkpoints deleted once the study has its result; its export kept.
        assert not list(run_dir.glob("checkpoints/*.ckpt")) and (run_dir / "hf_model").is_dir()

    best = max((row for row in rows if row["state"] == "complete"), key=lambda row: float(row["val_f1"]))
    config = yaml.safe_load((study_dir / "best.yaml").read_text())
    assert config["model"]["learning_rate"] == pytest.approx(float(best["model.learning_rate"]))
    assert config["model"]["head"] == best["model.head"] and config["test_after_fit"] is True
    for name in ("history.png", "slices.png", "importances.png"):
        assert (study_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # best.yaml is a fit config as it stands.
    printed = run(
        [sys.executable, "-m", "lit_ner", "fit", "--config", str(study_dir / "best.yaml"), "--print_config"],
        env,
    )
    assert printed.returncode == 0 and f"head: {best['model.head']}" in printed.stdout


@pytest.mark.slow
def test_a_search_on_bioes_tags_with_a_byte_level_bpe_encoder_chooses_on_their_entity_f1(
    tmp_path, wnut17_dir
):
    """Nothing in a search is WordPiece- or BIO-shaped: a tiny RoBERTa with a byte-level BPE
    tokenizer on BIOES data, one rate that learns the names and one that does not."""
    from .tokenizer_families import FAMILIES, save_family_model, training_text

    family = next(family for family in FAMILIES if family.name == "roberta")
    model = save_family_model(family, training_text(wnut17_dir / "wnut17train.conll"), tmp_path / "roberta")
    train = names_corpus(tmp_path / "train.bioes", scheme="BIOES")
    assert "S-person" in train.read_text() and "E-location" in train.read_text()
    space = space_file(tmp_path, "model.learning_rate: [3.0e-3, 1.0e-6]\n")
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    study = open_study(study_dir / "journal.log")
    for rate in (3e-3, 1e-6):
        study.enqueue_trial({"model.learning_rate": rate})
    env = {key: value for key, value in os.environ.items() if key != "WNUT17_DIR"}
    command = search_command(  # the names corpus's command, on the RoBERTa and the BIOES file
        tmp_path, train, space, f"--model.model_name_or_path={model}", "--trainer.max_epochs=4", "--trials=2"
    )
    done = run(command, env)
    assert done.returncode == 0, done.stderr[-3000:]
    learned, unlearned = (float(row["val_f1"]) for row in trial_rows(study_dir))
    assert learned > 0.5 > unlearned  # entity F1 read in BIOES: a two-word place is one entity
    assert "tags: IOBES (detected" in (study_dir / "trial-0" / "fit.log").read_text()
    config = yaml.safe_load((study_dir / "best.yaml").read_text())
    assert config["model"]["learning_rate"] == 3e-3 and config["model"]["model_name_or_path"] == str(model)
    summary = json.loads((study_dir / "trial-0" / "version_0" / "fit_summary.json").read_text())
    assert summary["best/val_f1"] == pytest.approx(learned)


def processes_running(argument):
    """The processes whose command line holds `argument` (Linux's /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and argument.encode() in open(f"/proc/{entry}/cmdline", "rb").read():
                found.append(int(entry))
        except OSError:  # ended meanwhile
            continue
    return found


def start_and_wait_for(command, env, checkpoint):
    """A search worker in a session of its own, once `checkpoint` exists (its trial has trained)."""
    worker = subprocess.Popen(
        command, env=env, cwd=REPO, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert checkpoint.exists(), f"no {checkpoint}"
    return worker


@pytest.mark.slow
def test_a_stopped_or_killed_search_resumes_its_trial_and_repeats_no_finished_one(search_setup):
    tmp_path, train, space, env = search_setup
    study_dir = tmp_path / "study"
    command = search_command(tmp_path, train, space, "--trials=2", "--trainer.max_epochs=12")
    last = "version_0/checkpoints/last.ckpt"

    # SIGTERM (a scheduler's stop): the trial's fit saves and exits, the worker exits 75.
    worker = start_and_wait_for(command, env, study_dir / "trial-0" / last)
    worker.send_signal(signal.SIGTERM)
    out, _ = worker.communicate(timeout=120)
    assert worker.returncode == 75 and "trial 0 stopped to be resumed" in out

    # SIGKILL to the worker and its fit at once (a lost node), during the next trial.
    worker = start_and_wait_for(command, env, study_dir / "trial-1" / last)
    fits = processes_running(str(study_dir / "trial-1" / "trial.yaml"))
    assert len(fits) == 1
    os.killpg(worker.pid, signal.SIGKILL)
    for pid in fits:  # in a session of its own: the worker's group is not the fit's
        os.kill(pid, signal.SIGKILL)
    out, _ = worker.communicate()
    while processes_running(str(study_dir / "trial-1" / "trial.yaml")):
        time.sleep(0.1)
    assert "trial 0 was left running; resuming it" in out
    first = study_dir / "trial-0" / "version_0" / "fit_summary.json"
    finished_at = first.stat().st_mtime_ns

    done = run(command, env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trial 1 was left running; resuming it" in done.stdout
    assert "trial 0:" not in done.stdout and first.stat().st_mtime_ns == finished_at  # not run again
    for trial in (0, 1):  # each resumed from its checkpoint, in its one run directory
        assert "resuming from" in (study_dir / f"trial-{trial}" / "fit.log").read_text()
        assert [p.name for p in (study_dir / f"trial-{trial}").glob("version_*")] == ["version_0"]
    assert [(row["trial"], row["state"]) for row in trial_rows(study_dir)] == [
        ("0", "complete"),
        ("1", "complete"),
    ]


@pytest.mark.slow
def test_two_workers_share_one_study_each_trial_run_once(search_setup):
    tmp_path, train, space, env = search_setup
    command = search_command(
        tmp_path, train, space, "--trials=3", "--trainer.max_epochs=2", "--keep_checkpoints=true"
    )
    workers = [
        subprocess.Popen(
            command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    ran = [
        {line.split(":")[1].split()[1] for line in out.splitlines() if ": validation F1" in line}
        for out, _ in outputs
    ]
    assert ran[0] and ran[1] and not ran[0] & ran[1]  # both worked, never on one trial
    assert ran[0] | ran[1] == {"0", "1", "2"}
    study_dir = tmp_path / "study"
    for trial in range(3):
        assert [p.name for p in (study_dir / f"trial-{trial}").glob("version_*")] == ["version_0"]
        # Kept, as asked.
        assert (study_dir / f"trial-{trial}" / "version_0" / "checkpoints" / "last.ckpt").is_file()
    assert [row["state"] for row in trial_rows(study_dir)] == ["complete"] * 3


@pytest.mark.parametrize(
    "logger, expected",
    [
        ({"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "runs"}},
         {"save_dir": "STUDY", "name": "trial-7", "version": None}),
        ({"class_path": "lightning.pytorch.loggers.WandbLogger", "init_args": {"project": "ner"}},
         {"project": "ner", "save_dir": "STUDY/trial-7", "name": "trial-7", "version": None,
          "group": "search-wnut"}),
        (False, {"save_dir": "STUDY", "name": "trial-7", "version": None}),
    ],
)  # fmt: skip
def test_each_trial_is_a_run_of_its_own_under_the_study_and_in_its_wandb_group(tmp_path, logger, expected):
    from lit_ner.training.search import trial_config

    study_dir = tmp_path / "search-wnut"
    fit_yaml = yaml.safe_dump({"trainer": {"logger": logger, "max_epochs": 6}, "model": {"head": "crf"}})
    config = yaml.safe_load(trial_config(fit_yaml, study_dir, 7))
    init_args = config["trainer"]["logger"]["init_args"]
    assert init_args == {
        key: value.replace("STUDY", str(study_dir)) if isinstance(value, str) else value
        for key, value in expected.items()
    }
    assert config["trainer"]["max_epochs"] == 6 and config["model"] == {"head": "crf"}


@pytest.mark.slow
def test_with_wandb_each_trial_is_a_run_in_the_study_group(search_setup):
    from .wandb_records import read_run

    tmp_path, train, space, env = search_setup
    env = {**env, "WANDB_SILENT": "true", "WANDB_DATA_DIR": str(tmp_path / "wandb-data")}
    command = search_command(
        tmp_path, train, space, "--trials=1", "--trainer.max_epochs=1",
        "--config", str(REPO / "configs" / "wandb.yaml"), "--trainer.logger.init_args.offline=true",
    )  # fmt: skip
    done = run(command, env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [row["state"] for row in trial_rows(tmp_path / "study")] == ["complete"]
    (wandb_file,) = (tmp_path / "study" / "trial-0").glob("**/offline-run-*/run-*.wandb")
    # Its checkpoints, where a W&B run keeps them, deleted once the study has its result.
    assert not list((tmp_path / "study" / "trial-0").glob("**/*.ckpt"))
    logged = read_run(wandb_file)
    assert (logged["group"], logged["name"]) == ("study", "trial-0")
    assert logged["summary"]["best/val_f1"] == pytest.approx(
        float(trial_rows(tmp_path / "study")[0]["val_f1"])
    )
