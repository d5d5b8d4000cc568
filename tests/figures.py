"""Where every figure of the README and docs/ comes from (tests/test_figures.py holds each to it).

A figure is a number as a page prints it outside code: with a decimal point (0.4804, 7.6), a
percentage (96.6%), a multiplier (2.15x) or a count with thousands separators (1,287); "0.484 ±
0.009" is two. Each page maps each figure it prints to where it comes from:
- `Measured(value)`: a value read from a file the project's own commands wrote (`bench(...)`,
  `data(...)`), printed with the figure's own decimals (a % or x multiplies by 100 or takes a
  ratio in the value itself);
- `Published(source)`: someone else's figure, and where it is published;
- `Setting(file, key)`: a value of a config file, read from it;
- `Fact(what)`: a number that is no measurement (a licence's version, a version pin, a test's
  size), said in words.
Tables that other tests already equal to their files (the lever table, the tagging and raw-text
tables, the README's measured rows) are left out of the pages before their figures are read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@cache
def _json(name: str) -> Any:
    return json.loads((REPO / "bench" / f"{name}.json").read_text())


def bench(name: str, *keys: str) -> Any:
    """bench/NAME.json, followed key by key."""
    value = _json(name)
    for key in keys:
        value = value[key]
    return value


@cache
def sentences(split: str) -> int:
    """How many sentences the WNUT-17 release shipped inside the package has in `split`."""
    from lit_ner.formats import read_conll
    from lit_ner.wnut17 import wnut17_files

    return len(read_conll(wnut17_files()[split])["tokens"])


@cache
def _split(split: str) -> dict[str, list]:
    from lit_ner.formats import read_conll
    from lit_ner.wnut17 import wnut17_files

    return read_conll(wnut17_files()[split])


def entities(split: str) -> int:
    """How many entities (B- tags) the packaged WNUT-17 has in `split`."""
    return sum(tag.startswith("B-") for tags in _split(split)["tags"] for tag in tags)


def release_tokens() -> list[str]:
    return [
        token
        for split in ("train", "validation", "test")
        for words in _split(split)["tokens"]
        for token in words
    ]


def share_of_tokens_the_word_finder_cuts() -> float:
    """Of WNUT-17's own tokens, the share `portable.words` splits, "@user"/"#tag" aside (it splits
    those as the test split writes them), as tests/test_words.py counts them."""
    import re

    from lit_ner.portable.words import split_words as split

    tokens = release_tokens()
    sigils = {t for t in tokens if len(t) > 1 and t[0] in "@#" and re.fullmatch(r"\w+", t[1:])}
    return sum(t not in sigils and split(t) != [t] for t in tokens) / len(tokens)


@cache
def spinningbytes(bootstrap: int = 1000) -> dict[str, Any]:
    """`lit_ner evaluate`'s scores of SpinningBytes' submitted WNUT-17 test output, with
    `bootstrap` resamples (seed 0, as the command's default)."""
    import gzip
    import tempfile

    from lit_ner.evaluate import evaluate_files
    from lit_ner.wnut17 import wnut17_files

    from .test_evaluate import rebuild_submission

    scratch = Path(tempfile.mkdtemp(prefix="lit_ner_figures_"))
    test = wnut17_files()["test"]
    if test.suffix == ".gz":
        test = scratch / test.stem
        test.write_bytes(gzip.decompress(wnut17_files()["test"].read_bytes()))
    fixture = REPO / "tests" / "fixtures" / "wnut17_test_spinningbytes.tsv"
    return evaluate_files(
        test, rebuild_submission(test, fixture, scratch / "spinningbytes.txt"), bootstrap=bootstrap
    )


def unseen_in_train(split: str) -> dict[str, float | int]:
    """What `lit_ner debug-data` reports of `split`'s entities never seen in train."""
    from lit_ner.training.debug_data import novelty, surface_forms

    forms = {name: surface_forms(_split(name)["tokens"], _split(name)["tags"]) for name in ("train", split)}
    return novelty(forms["train"], forms[split])


@dataclass(frozen=True)
class Measured:
    value: float


@dataclass(frozen=True)
class Published:
    source: str


@dataclass(frozen=True)
class Setting:
    file: str
    key: str


@dataclass(frozen=True)
class Fact:
    what: str


def _results(row: str, score: str, part: str = "mean") -> float:
    return bench("results", "results", row, "scores", score, part)


def _seed(row: str, score: str, index: int) -> float:
    return bench("results", "results", row, "scores", score, "values")[index]


def _levers(lever: str, score: str, part: str = "mean") -> float:
    return bench("levers", lever, score, part)


def _training(run: str) -> float:
    return bench("results", "training", "runs", run, "train_samples_per_s")


def _training_run(run: str, key: str) -> float:
    return bench("results", "training", "runs", run, key)


def _parity(precision: str, *keys: str, key: str = "parity") -> float:
    return bench("results", key, precision, *keys)


def _serve(backend: str, load: str, key: str) -> float:
    return bench("results", "tagging", "serve", backend, load, key)


def _lever_seed(lever: str, index: int, key: str) -> float:
    return bench("levers", lever, "runs")[index][key]


def _refit(score: str, part: str = "mean") -> Any:
    """The searched recipe's refit over seeds (`make search`)."""
    return bench("results", "search", "refit", "scores", score, part)


def _engine(name: str, key: str) -> float:
    return bench("results", "tagging", "engines", name, key)


# Sources several pages cite, named once.
CARDS = "test F1 of the tutorial's recipe on public DistilBERT WNUT-17 model cards"
# BERTweet-base, the published score #30 set as the base recipe's goal.
BERTWEET_F1 = 0.565
BERTWEET = Published("BERTweet-base on WNUT-17 test, Nguyen, Vu and Nguyen (2020), EMNLP demos")
SPINNINGBYTES_F1 = Published("SpinningBytes' entity F1 on WNUT-17 test, Derczynski et al. (2017)")
INT8_OVER_PIPELINE = Measured(
    _engine("onnx_int8", "texts_per_s") / _engine("pipeline_batched", "texts_per_s")
)
INT8_OVER_TORCH = Measured(_engine("onnx_int8", "texts_per_s") / _engine("torch_fp32", "texts_per_s"))

FIGURES: dict[str, dict[str, list[Any]]] = {
    "README.md": {
        "1.8": [Measured(100 * (_levers("word_features", "test_f1") - _levers("recipe", "test_f1")))],
        "0.4804": [Measured(bench("raw_text", "typed", "f1")), Measured(_engine("torch_fp32", "test_f1"))],
        "1,009": [Measured(sentences("validation"))],
        "1,287": [Measured(sentences("test"))],
        "0.4078": [
            Published(
                "SpinningBytes' WNUT-17 submission, Derczynski et al. (2017); rescored by lit_ner evaluate"
            )
        ],
        "0.168": [Measured(_seed("tutorial", "test/f1", 0))],
        "0.307": [Measured(_seed("tutorial", "test/f1", 1))],
        "0.276": [Measured(_seed("tutorial", "test/f1", 2))],
        "0.158": [Measured(_seed("hf_trainer_tutorial", "test/f1", 0))],
        "0.297": [Measured(_seed("hf_trainer_tutorial", "test/f1", 1))],
        "0.278": [Measured(_seed("hf_trainer_tutorial", "test/f1", 2))],
        "0.11": [Measured(min(bench("results", "results", "tutorial", "scores", "test/recall", "values")))],
        "0.24": [Measured(max(bench("results", "results", "tutorial", "scores", "test/recall", "values")))],
        "0.03": [Measured(_seed("tutorial_grouped", "test/recall", 0))],
        "0.2858": [Measured(_engine("pipeline_per_text", "test_f1"))],
        "6.26x": [INT8_OVER_PIPELINE],
        "2.15x": [INT8_OVER_TORCH],
        "0.4799": [Measured(_engine("onnx_int8", "test_f1"))],
        "4.0": [Fact("the WNUT-17 data's licence, CC-BY 4.0")],
        "0.34": [Published(f"lowest {CARDS}")],
        "0.43": [Published(f"highest {CARDS}")],
        "0.565": [BERTWEET],
        "0.6045": [Published("CL-KL on WNUT-17 test, Wang et al. (2021), ACL-IJCNLP")],
    },
    "docs/experiments.md": {
        "10%": [Fact("the baseline's warm-up, 0.1 of the steps (bench/levers.py's BASELINE)")],
        "1.4": [
            Measured(100 * (_levers("valid_bio", "val_f1") - _levers("baseline", "val_f1"))),
            Measured(100 * (_levers("class_weights", "val_f1") - _levers("baseline", "val_f1"))),
        ],
        "1.1": [
            Measured(100 * (_levers("valid_bio", "test_f1") - _levers("baseline", "test_f1"))),
            Measured(
                100
                * (_levers("ensemble", "test_f1") - _levers("word_features_mention_replacement", "test_f1"))
            ),
        ],
        "0.9": [
            Measured(100 * (_levers("baseline", "test_f1") - _levers("class_weights", "test_f1"))),
            Measured(100 * (_levers("label_smoothing", "val_f1") - _levers("baseline", "val_f1"))),
            Measured(100 * (BERTWEET_F1 - _levers("base_8_epochs", "test_f1"))),
        ],
        "0.1": [Fact("label smoothing's setting in its lever (bench/levers.py)")],
        "0.7": [Measured(100 * (_levers("baseline", "test_f1") - _levers("label_smoothing", "test_f1")))],
        "0.453": [Measured(_levers("recipe", "test_f1"))],
        "0.013": [
            Measured(_levers("recipe", "test_f1", "std")),
            Measured(_levers("distilled", "test_f1", "std")),
        ],
        "0.463": [
            Measured(_lever_seed("recipe", 0, "test_f1")),
            Measured(_lever_seed("distilled_w0.5_t2", 0, "test_f1")),
        ],
        "0.438": [Measured(_lever_seed("recipe", 1, "test_f1"))],
        "0.459": [Measured(_lever_seed("recipe", 2, "test_f1"))],
        "0.432": [Measured(_results("hf_trainer_tuned", "test/f1"))],
        "0.434": [Measured(_levers("baseline", "test_f1"))],
        "1.9": [Measured(100 * (_levers("recipe", "test_f1") - _levers("baseline", "test_f1")))],
        "0.449": [Measured(bench("levers", "recipe_search", "candidates")[5]["test_f1"]["mean"])],
        "0.8": [Measured(100 * (_levers("word_features", "val_f1") - _levers("recipe", "val_f1")))],
        "0.610": [Measured(_levers("word_features", "val_f1")), Measured(_refit("best/val_f1"))],
        "0.602": [Measured(_levers("recipe", "val_f1")), Measured(_levers("distilled_w0.5_t1", "val_f1"))],
        "1.8": [Measured(100 * (_levers("word_features", "test_f1") - _levers("recipe", "test_f1")))],
        "0.471": [Measured(_levers("word_features", "test_f1"))],
        "0.008": [
            Measured(_levers("word_features", "test_f1", "std")),
            Measured(_levers("retrieved_context", "val_f1", "std")),
            Measured(_levers("base_8_epochs", "test_f1", "std")),
        ],
        "0.3": [Setting("configs/offline.yaml", "data.augment.mention_replacement")],
        "0.5": [
            Fact("issue #31's goal for the searched recipe: validation F1 within 0.5 points of the recipe's"),
            Measured(100 * (_levers("mention_replacement", "val_f1") - _levers("recipe", "val_f1"))),
            Setting("configs/offline-distilled.yaml", "model.distill_weight"),
        ],
        "0.454": [
            Measured(_levers("mention_replacement", "test_f1")),
            Measured(_refit("test/f1", "values")[2]),
        ],
        "0.612": [
            Measured(bench("results", "search", "recipe_val_f1")),
            Measured(_levers("word_features_mention_replacement", "val_f1")),
            Measured(_levers("ensemble", "val_f1")),
        ],
        "0.003": [Measured(_levers("word_features_mention_replacement", "val_f1", "std"))],
        "0.484": [Measured(_levers("word_features_mention_replacement", "test_f1"))],
        "0.009": [Measured(_levers("word_features_mention_replacement", "test_f1", "std"))],
        "0.480": [Measured(_lever_seed("word_features_mention_replacement", 0, "test_f1"))],
        "0.477": [Measured(_lever_seed("word_features_mention_replacement", 1, "test_f1"))],
        "0.495": [
            Measured(_lever_seed("word_features_mention_replacement", 2, "test_f1")),
            Measured(_levers("ensemble", "test_f1")),
        ],
        "3.1": [
            Measured(
                100 * (_levers("word_features_mention_replacement", "test_f1") - _levers("recipe", "test_f1"))
            )
        ],
        "8.3": [Measured(_lever_seed("word_features_mention_replacement", 0, "minutes"))],
        "0.675": [Measured(_levers("mpnet", "val_f1"))],
        "0.541": [Measured(_levers("mpnet", "test_f1")), Measured(_levers("base", "test_f1"))],
        "7.8": [Measured(100 * (_levers("mpnet", "test_f1") - _lever_seed("recipe", 0, "test_f1")))],
        "5.7": [
            Measured(
                100 * (_levers("mpnet", "test_f1") - _levers("word_features_mention_replacement", "test_f1"))
            )
        ],
        "0.594": [
            Measured(_levers("soup", "val_f1")),
            Measured(_levers("distilled_w0.5_t2", "val_f1")),
        ],
        "0.439": [Measured(_levers("soup", "test_f1"))],
        "0.609": [
            Measured(_lever_seed("word_features_mention_replacement", 0, "val_f1")),
            Measured(_lever_seed("word_features_mention_replacement", 0, "val_f1")),
            Measured(_refit("best/val_f1", "values")[2]),
        ],
        "0.479": [
            Measured(_levers("distilled_w0.5_t1", "test_f1")),
            Measured(_levers("retrieved_context", "test_f1")),
        ],
        "99.2%": [Measured(bench("levers", "teacher_on_train", "all_words", "argmax_is_gold"))],
        "88.6%": [Measured(bench("levers", "teacher_on_train", "entity_words", "argmax_is_gold"))],
        "0.98": [Measured(bench("levers", "teacher_on_train", "all_words", "mean_argmax_probability"))],
        "0.78": [Measured(bench("levers", "teacher_on_train", "entity_words", "mean_argmax_probability"))],
        "0.671": [Measured(_levers("base", "val_f1"))],
        "90.8": [Measured(_lever_seed("base", 0, "minutes"))],
        "0.697": [Measured(_lever_seed("base_8_epochs", 0, "val_f1"))],
        "0.565": [
            Measured(_lever_seed("base_8_epochs", 0, "test_f1")),
            BERTWEET,
        ],
        "105.5": [Measured(_lever_seed("base_8_epochs", 0, "minutes"))],
        "0.691": [Measured(_levers("base_8_epochs", "val_f1"))],
        "0.006": [
            Measured(_levers("base_8_epochs", "val_f1", "std")),
            Measured(_levers("distilled", "val_f1", "std")),
        ],
        "0.607": [Measured(_levers("distilled", "val_f1"))],
        "0.478": [Measured(_levers("distilled", "test_f1"))],
        "0.618": [Measured(_results("recipe_distilled", "test/precision"))],
        "0.588": [Measured(_results("recipe", "test/precision"))],
        "0.390": [Measured(_results("recipe_distilled", "test/recall"))],
        "0.411": [Measured(_results("recipe", "test/recall"))],
        "0.51": [Fact("issue #30's goal for MiniLM, mean test F1 0.51: a target, not a result")],
        "0.556": [Measured(_levers("base_8_epochs", "test_f1"))],
        "0.550": [Measured(_lever_seed("base_8_epochs", 1, "test_f1"))],
        "0.553": [Measured(_lever_seed("base_8_epochs", 2, "test_f1"))],
        "7.2": [
            Measured(
                100
                * (
                    _levers("base_8_epochs", "test_f1")
                    - _levers("word_features_mention_replacement", "test_f1")
                )
            )
        ],
        "57.2": [Measured(_lever_seed("base_8_epochs", 2, "minutes"))],
        "0.608": [Measured(_levers("retrieved_context", "val_f1"))],
        "0.014": [Measured(_levers("retrieved_context", "test_f1", "std"))],
        "3,394": [Measured(sentences("train"))],
        "17.0": [Measured(_lever_seed("retrieved_context", 2, "minutes"))],
        "0.506": [
            Measured(_levers("train_with_validation", "test_f1")),
            Measured(_lever_seed("train_with_validation", 1, "test_f1")),
        ],
        "0.011": [
            Measured(_levers("train_with_validation", "test_f1", "std")),
            Measured(_levers("baseline", "test_f1", "std")),
        ],
        "2.2": [
            Measured(
                100
                * (
                    _levers("train_with_validation", "test_f1")
                    - _levers("word_features_mention_replacement", "test_f1")
                )
            )
        ],
        "0.496": [Measured(_lever_seed("train_with_validation", 0, "test_f1"))],
        "0.518": [Measured(_lever_seed("train_with_validation", 2, "test_f1"))],
        "30%": [Measured((sentences("train") + sentences("validation")) / sentences("train") - 1)],
        "10.7": [
            Measured(
                (
                    _lever_seed("train_with_validation", 1, "minutes")
                    + _lever_seed("train_with_validation", 2, "minutes")
                )
                / 2
            )
        ],
        "38": [Measured(bench("levers", "mpnet", "minutes"))],
        "83.4": [Measured(bench("results", "search", "wall_minutes"))],
        "2.8": [Measured(2 * bench("results", "search", "wall_minutes") / 60)],  # CPU-hours on 2 cores
        "0.6108": [
            Measured(bench("results", "search", "best", "val_f1")),
            Measured(_refit("best/val_f1", "values")[0]),
        ],
        "15%": [Measured(bench("results", "search", "best", "params", "model.warmup_steps"))],
        "0.07": [Measured(bench("results", "search", "best", "params", "data.augment.mention_replacement"))],
        "0.001": [Measured(_refit("best/val_f1", "std"))],
        "0.611": [Measured(_refit("best/val_f1", "values")[1])],
        "0.2": [Measured(100 * (bench("results", "search", "recipe_val_f1") - _refit("best/val_f1")))],
        "0.450": [Measured(_refit("test/f1"))],
        "0.007": [Measured(_refit("test/f1", "std"))],
        "0.441": [Measured(_refit("test/f1", "values")[0])],
        "0.455": [Measured(_refit("test/f1", "values")[1])],
        "3.4": [
            Measured(100 * (_levers("word_features_mention_replacement", "test_f1") - _refit("test/f1")))
        ],
        "19.3": [Measured(_refit("minutes"))],
    },
    "docs/questions.md": {
        "0.34": [Published(f"lowest {CARDS}")],
        "0.43": [Published(f"highest {CARDS}")],
        "0.38": [Published(f"median {CARDS}")],
        "0.250": [Measured(_results("tutorial", "test/f1"))],
        "0.073": [Measured(_results("tutorial", "test/f1", "std"))],
        "0.484": [Measured(_results("recipe", "test/f1"))],
        "0.009": [Measured(_results("recipe", "test/f1", "std"))],
    },
    "docs/commands.md": {
        "40.78": [
            SPINNINGBYTES_F1,
            Measured(100 * spinningbytes()["overall"]["f1"]),
        ],
        "39.33": [
            Published("SpinningBytes' surface-form F1 on WNUT-17 test, Derczynski et al. (2017)"),
            Measured(100 * spinningbytes()["overall"]["surface_f1"]),
        ],
        "1,000": [Fact("the bootstrap's resamples in the example")],
        "0.4078": [Measured(spinningbytes()["overall"]["f1"])],
        "0.3755": [Measured(spinningbytes()["bootstrap"]["overall"]["f1"][0])],
        "0.4410": [Measured(spinningbytes()["bootstrap"]["overall"]["f1"][1])],
        "0.3933": [Measured(spinningbytes()["overall"]["surface_f1"])],
        "0.3702": [Measured(spinningbytes()["bootstrap"]["overall"]["surface_f1"][0])],
        "0.4207": [Measured(spinningbytes()["bootstrap"]["overall"]["surface_f1"][1])],
        "3,394": [Measured(sentences("train"))],
        "1,009": [Measured(sentences("validation"))],
        "1,287": [Measured(sentences("test"))],
        "1,975": [Measured(entities("train"))],
        "1,079": [Measured(entities("test"))],
        "100%": [
            Measured(unseen_in_train("validation")["unseen_forms"]),
            Measured(unseen_in_train("test")["unseen_forms"]),
        ],
        "96.6%": [Measured(unseen_in_train("validation")["unseen_forms_lowercased"])],
        "97.9%": [Measured(unseen_in_train("test")["unseen_forms_lowercased"])],
    },
    "docs/results.md": {
        "3,394": [Measured(sentences("train"))],
        "1,009": [Measured(sentences("validation"))],
        "1,287": [Measured(sentences("test"))],
        "0.3": [Setting("configs/offline.yaml", "data.augment.mention_replacement")],
        "10%": [Setting("configs/offline.yaml", "model.warmup_steps")],
        "0.4804": [Measured(_seed("recipe", "test/f1", 0))],
        "0.4770": [Measured(_seed("recipe", "test/f1", 1))],
        "0.4946": [Measured(_seed("recipe", "test/f1", 2))],
        "0.453": [Measured(_levers("recipe", "test_f1"))],
        "0.013": [Measured(_levers("recipe", "test_f1", "std"))],
        "0.4679": [Measured(_seed("recipe_distilled", "test/f1", 0))],
        "0.4735": [Measured(_seed("recipe_distilled", "test/f1", 1))],
        "0.4922": [Measured(_seed("recipe_distilled", "test/f1", 2))],
        "0.5": [Setting("configs/offline-distilled.yaml", "model.distill_weight")],
        "0.5650": [Measured(_seed("recipe_base", "test/f1", 0))],
        "0.5504": [Measured(_seed("recipe_base", "test/f1", 1))],
        "0.5530": [Measured(_seed("recipe_base", "test/f1", 2))],
        "0.565": [BERTWEET],
        "0.9": [Measured(100 * (BERTWEET_F1 - _results("recipe_base", "test/f1")))],
        "57.2": [Measured(_seed("recipe_base", "minutes", 2))],
        "0.1678": [Measured(_seed("tutorial", "test/f1", 0))],
        "0.3069": [Measured(_seed("tutorial", "test/f1", 1))],
        "0.2762": [Measured(_seed("tutorial", "test/f1", 2))],
        "0.1578": [Measured(_seed("hf_trainer_tutorial", "test/f1", 0))],
        "0.2969": [Measured(_seed("hf_trainer_tutorial", "test/f1", 1))],
        "0.2778": [Measured(_seed("hf_trainer_tutorial", "test/f1", 2))],
        "0.250": [Measured(_results("tutorial", "test/f1"))],
        "0.244": [Measured(_results("hf_trainer_tutorial", "test/f1"))],
        "0.6": [
            Measured(100 * (_results("tutorial", "test/f1") - _results("hf_trainer_tutorial", "test/f1")))
        ],
        "0.11": [Measured(min(bench("results", "results", "tutorial", "scores", "test/recall", "values")))],
        "0.24": [Measured(max(bench("results", "results", "tutorial", "scores", "test/recall", "values")))],
        "1.4x": [Measured(_results("tutorial", "minutes") / _results("tutorial_grouped", "minutes"))],
        "0.3023": [Measured(_seed("tutorial_grouped", "test/f1", 1))],
        "0.2720": [Measured(_seed("tutorial_grouped", "test/f1", 2))],
        "0.0519": [Measured(_seed("tutorial_grouped", "test/f1", 0))],
        "0.028": [Measured(_seed("tutorial_grouped", "test/recall", 0))],
        "0.096": [Measured(_seed("tutorial_grouped", "best/val_f1", 0))],
        "0.052": [Measured(_seed("tutorial_grouped", "test/f1", 0))],
        "0.158": [Measured(_seed("hf_trainer_tutorial", "test/f1", 0))],
        "1.0": [Setting("configs/wnut.yaml", "trainer.gradient_clip_val")],
        "0.40": [Published("the WNUT-17 shared task's systems' entity F1, Derczynski et al. (2017)")],
        "40.78": [SPINNINGBYTES_F1],
        "26": [
            Measured(
                sum(
                    sum(bench("results", "results", row, "scores", "minutes", "values"))
                    for row in ("tutorial", "tutorial_grouped", "hf_trainer_tutorial")
                )
            )
        ],
    },
    "docs/speed.md": {
        "3,394": [Measured(sentences("train"))],
        "10%": [Measured(bench("results", "training", "recipe", "warmup"))],
        "0.01": [Measured(bench("results", "training", "recipe", "weight_decay"))],
        "1.0": [Measured(bench("results", "training", "recipe", "max_grad_norm"))],
        "1,009": [Measured(sentences("validation"))],
        "41%": [Measured(_training_run("hf_tutorial", "padded_fraction"))],
        "2.3%": [Measured(_training_run("lit_ner_bf16", "padded_fraction"))],
        "2.35x": [Measured(bench("results", "training", "speedups", "lit_ner_bf16 / hf_tutorial"))],
        "1.16x": [
            Measured(bench("results", "training", "speedups", "lit_ner_bf16 / hf_group_by_length_bf16"))
        ],
        "0.97x": [Measured(bench("results", "training", "speedups", "lit_ner_fp32 / hf_group_by_length"))],
        "1.1x": [Fact("the fp32 training speed-up an earlier issue set as a target")],
        "60%": [Measured(_training_run("lit_ner_fp32", "model_flops_fraction_of_peak"))],
        "1.09x": [
            Measured(
                bench("results", "training", "speedups", "validation, lit_ner_fp32 vs hf_group_by_length")
            )
        ],
        "2.0x": [
            Measured(_training_run("hf_tutorial", "validate_s") / _training_run("lit_ner_fp32", "validate_s"))
        ],
        "3.25": [Measured(_training_run("lit_ner_fp32", "validate_s"))],
        "3.53": [Measured(_training_run("hf_group_by_length", "validate_s"))],
        "6.51": [Measured(_training_run("hf_tutorial", "validate_s"))],
        "1.5x": [Fact("the validation speed-up an earlier issue set as a target")],
        "0.415": [Measured(_training_run("lit_ner_fp32", "val_f1"))],
        "0.414": [Measured(_training_run("lit_ner_bf16", "val_f1"))],
        "0.39": [
            Measured(
                min(
                    _training_run(run, "val_f1")
                    for run in ("hf_tutorial", "hf_group_by_length", "hf_group_by_length_bf16")
                )
            )
        ],
        "0.40": [
            Measured(
                max(
                    _training_run(run, "val_f1")
                    for run in ("hf_tutorial", "hf_group_by_length", "hf_group_by_length_bf16")
                )
            )
        ],
        "1,287": [Measured(sentences("test"))],
        "2.15x": [INT8_OVER_TORCH],
        "6.26x": [INT8_OVER_PIPELINE],
        "2.64": [Measured(_engine("onnx_int8", "cpu_ms_per_text"))],
        "5.80": [Measured(_engine("torch_fp32", "cpu_ms_per_text"))],
        "0.05": [Measured(100 * (_engine("torch_fp32", "test_f1") - _engine("onnx_int8", "test_f1")))],
        "90.3": [Measured(bench("results", "tagging", "size_mb", "safetensors"))],
        "90.9": [Measured(bench("results", "tagging", "size_mb", "onnx_fp32"))],
        "59.0": [Measured(bench("results", "tagging", "size_mb", "onnx_int8"))],
        "150.1": [Measured(bench("results", "tagging", "size_mb", "export_with_onnx_int8"))],
        "56%": [Measured(_serve("onnx_int8", "32_clients_1_texts", "fraction_of_offline_tagger"))],
        "4.42": [Measured(_serve("onnx_int8", "32_clients_1_texts", "server_cpu_ms_per_text"))],
        "3.01": [Measured(_serve("onnx_int8", "32_clients_8_texts", "server_cpu_ms_per_text"))],
        "84%": [Measured(_serve("onnx_int8", "32_clients_8_texts", "fraction_of_offline_tagger"))],
        "45%": [Measured(_serve("torch", "32_clients_1_texts", "fraction_of_offline_tagger"))],
        "73%": [Measured(_serve("torch", "32_clients_8_texts", "fraction_of_offline_tagger"))],
        "76.85": [Measured(_parity("32-true", "lit_ner_s"))],
        "66.23": [Measured(_parity("bf16-mixed", "lit_ner_s"))],
        "68.06": [Measured(_parity("32-true", "hf_trainer_s"))],
        "57.1": [Measured(_parity("bf16-mixed", "hf_trainer_s"))],
        "0.886": [Measured(_parity("32-true", "ratio"))],
        "0.862": [Measured(_parity("bf16-mixed", "ratio"))],
        "0.865": [Measured(_parity("32-true", "ratio", key="parity_before"))],
        "0.841": [Measured(_parity("bf16-mixed", "ratio", key="parity_before"))],
        "4.11": [Measured(_parity("32-true", "cost_s", "test"))],
        "3.82": [Measured(_parity("bf16-mixed", "cost_s", "test"))],
        "5.64": [Measured(bench("results", "parity", "import_lit_ner_cli_s"))],
        "3.59": [Measured(-_parity("32-true", "cost_s", "plots"))],
        "1.09": [Measured(_parity("bf16-mixed", "cost_s", "periodic_last_ckpt"))],
        "72.61": [Measured(bench("results", "parity", "runs_s", "32-true", "hf_trainer")[1])],
        "76.78": [Measured(bench("results", "parity", "runs_s", "32-true", "hf_trainer")[2])],
        "258": [Measured(bench("results", "parity", "cuts", "checkpoint_mb_approx"))],
        "0.497": [Measured(bench("results", "parity", "cuts", "checkpoint_save_wait_s", "foreground"))],
        "0.212": [Measured(bench("results", "parity", "cuts", "checkpoint_save_wait_s", "background"))],
        "8.34": [Measured(bench("results", "parity", "cuts", "clip_within_bound_ms", "lit_ner"))],
        "13.68": [Measured(bench("results", "parity", "cuts", "clip_within_bound_ms", "torch"))],
        "8.79": [Measured(_parity("32-true", "lit_ner_s") - _parity("32-true", "hf_trainer_s"))],
        "6%": [Measured(_parity("32-true", "cost_s", "test") / _parity("32-true", "hf_trainer_s"))],
        "0.95x": [Fact("the whole-run ratio issue #32 set as a target")],
        "111": [Measured(_training_run("lit_ner_fp32_compile", "epoch_s"))],
        "104": [Measured(_training_run("lit_ner_bf16_compile", "epoch_s"))],
        "32": [Measured(_training_run("lit_ner_bf16_compile", "validate_s"))],
    },
    "docs/runs.md": {
        "0.2858": [Measured(_engine("pipeline_per_text", "test_f1"))],
        "0.4804": [Measured(_engine("torch_fp32", "test_f1"))],
    },
    "docs/clusters.md": {
        "1.6": [Fact("the learning rate 1.6e-4 of a linear-scaling table (a setting, not a measurement)")],
        "3,394": [Measured(sentences("train"))],
        "90": [Fact("the example's --signal=SIGUSR1@90: SLURM's warning, in seconds before the limit")],
        "1.5x": [Measured(_training("lit_ner_bf16") / _training("lit_ner_fp32"))],
    },
    "docs/development.md": {
        "10,000": [Fact("how many random sequences the metric test draws")],
    },
    "docs/configuration.md": {
        "0.01": [Setting("configs/wnut.yaml", "model.weight_decay")],
        "1.0": [Setting("configs/wnut.yaml", "trainer.gradient_clip_val")],
        "0.3": [Setting("configs/offline.yaml", "data.augment.mention_replacement")],
        "10%": [Setting("configs/offline.yaml", "model.warmup_steps")],
        "0.5": [Setting("configs/offline-distilled.yaml", "model.distill_weight")],
        "0.0": [Fact("a default: label smoothing off")],
        "438": [Fact("all-mpnet-base-v2 unpacked, in MB (du -sb: 438,694,707 bytes)")],
    },
    "docs/data.md": {
        "4.0": [Fact("the WNUT-17 data's licence, CC-BY 4.0")],
        "0.4815": [
            Measured(bench("schemes", "IOB1", "crf", "test/f1")),
            Measured(bench("schemes", "IOBES", "crf", "test/f1")),
        ],
        "0.6082": [
            Measured(bench("schemes", "IOB1", "crf", "best/val_f1")),
            Measured(bench("schemes", "IOBES", "crf", "best/val_f1")),
        ],
        "0.4493": [
            Measured(bench("schemes", "IOB1", "softmax", "test/f1")),
            Measured(bench("schemes", "IOBES", "softmax", "test/f1")),
        ],
        "0.5714": [
            Measured(bench("schemes", "IOB1", "softmax", "best/val_f1")),
            Measured(bench("schemes", "IOBES", "softmax", "best/val_f1")),
        ],
        "0.4804": [Measured(bench("levers", "word_features_mention_replacement", "runs")[0]["test_f1"])],
        "1.0": [Fact("a round trip's F1 and accuracy (the round trip gives back the same tags)")],
    },
    "docs/design.md": {
        "0.9": [Fact("a threshold a DDP test asserts on its tiny model's validation F1")],
        "10%": [Fact("the Tagger's default --max_padding, 0.1")],
        "1,287": [Measured(sentences("test"))],
        "5,000": [Fact("a test's text length, in words")],
        "101,857": [Measured(len(release_tokens()))],
        "0.4%": [Measured(share_of_tokens_the_word_finder_cuts())],
        "4.58": [Fact("the transformers version optimum's ONNX package is pinned below")],
    },
    "docs/tagging.md": {
        "5,000": [Fact("a test's text length, in words")],
        "1,287": [Measured(sentences("test"))],
        "0.2858": [Measured(_engine("pipeline_per_text", "test_f1"))],
        "0.4804": [Measured(_engine("torch_fp32", "test_f1")), Measured(bench("raw_text", "typed", "f1"))],
        "1,079": [Measured(entities("test"))],
        "1,000": [Fact("an example of a number written with a separator")],
        "2.6": [
            Measured(
                100
                * (
                    bench("results", "tagging", "int8_choices", "all_ops_per_channel", "test_f1")
                    - bench("results", "tagging", "int8_choices", "all_ops_per_tensor", "test_f1")
                )
            )
        ],
        "0.4": [
            Measured(
                100
                * (
                    bench("results", "tagging", "int8_choices", "matmul_per_channel", "test_f1")
                    - bench("results", "tagging", "int8_choices", "all_ops_per_channel", "test_f1")
                )
            )
        ],
        "1,210": [Measured(_engine("onnx_int8", "texts_agreeing_with_torch_fp32"))],
        "2.15x": [INT8_OVER_TORCH],
        "6.26x": [INT8_OVER_PIPELINE],
        "0.05": [Measured(100 * (_engine("torch_fp32", "test_f1") - _engine("onnx_int8", "test_f1")))],
        "0.01": [Fact("lit_ner serve's default --batch_timeout, in seconds")],
        "10,000": [Fact("lit_ner serve's default --max_text_length, in characters")],
    },
    "docs/search.md": {},
    "docs/robustness.md": {},
}
