"""`lit_ner evaluate`: seqeval's and WNUT-17's official scores for any pair of CoNLL files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from seqeval.metrics import classification_report as seqeval_report

from lit_ner.errors import LitNerError
from lit_ner.evaluate import evaluate_files, read_aligned

FIXTURES = Path(__file__).parent / "fixtures"
LIT_NER = Path(sys.executable).parent / "lit_ner"


def rebuild_submission(test_file: Path, sparse: Path, out: Path) -> Path:
    """The full `token<TAB>prediction` submission from its non-O lines and the test tokens.

    Each kept line names its token and the token before it (`<s>` at a sentence start); lines
    are in file order, so each is found at the first such place after the previous one.
    """
    gold = read_aligned(test_file, test_file)[0]
    positions = [(n, i) for n, sentence in enumerate(gold["tokens"]) for i in range(len(sentence))]
    predicted = {}
    cursor = 0
    for line in sparse.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            continue
        previous, token, tag = line.split("\t")
        while True:
            n, i = positions[cursor]
            words = gold["tokens"][n]
            cursor += 1
            if words[i] == token and (words[i - 1] == previous if i else previous == "<s>"):
                predicted[n, i] = tag
                break
    lines = []
    for n, words in enumerate(gold["tokens"]):
        lines.extend(f"{word}\t{predicted.get((n, i), 'O')}" for i, word in enumerate(words))
        lines.append("")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def test_reproduces_the_wnut17_shared_tasks_published_scores_for_a_submitted_system(wnut17_dir, tmp_path):
    test_file = wnut17_dir / "emerging.test.annotated"
    submission = rebuild_submission(
        test_file, FIXTURES / "wnut17_test_spinningbytes.tsv", tmp_path / "spinningbytes.txt"
    )
    result = subprocess.run(
        [LIT_NER, "evaluate", str(test_file), str(submission), "--json", "true"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    # Derczynski et al. (2017), table of results: SpinningBytes, entity F1 40.78, surface F1 39.33.
    assert round(100 * scores["overall"]["f1"], 2) == 40.78
    assert round(100 * scores["overall"]["surface_f1"], 2) == 39.33
    assert scores["overall"]["support"] == 1079  # the test set's entities
    # And the entity scores are seqeval's, type by type.
    gold, pred = read_aligned(test_file, submission)
    reference = seqeval_report(gold["tags"], pred["tags"], output_dict=True, zero_division=0)
    for type_, row in scores["per_type"].items():
        assert row["f1"] == pytest.approx(reference[type_]["f1-score"], abs=1e-12)
        assert row["support"] == reference[type_]["support"]


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


GOLD = "Paris\tB-location\nis\tO\nnice\tO\n\nParis\tB-location\nHilton\tI-location\n\nParis\tB-person\n"
PRED = "Paris\tB-location\nis\tO\nnice\tO\n\nParis\tB-location\nHilton\tO\n\nParis\tB-person\n"


def test_json_has_the_documented_keys_and_fractions(tmp_path):
    scores = evaluate_files(write(tmp_path / "gold", GOLD), write(tmp_path / "pred", PRED))
    keys = {"precision", "recall", "f1", "surface_precision", "surface_recall", "surface_f1", "support"}
    assert set(scores) == {"overall", "per_type", "mode", "tag_scheme"} and scores["mode"] == "default"
    assert set(scores["overall"]) == keys | {"accuracy"}
    assert set(scores["per_type"]) == {"location", "person"}
    for row in [scores["overall"], *scores["per_type"].values()]:
        assert set(row) <= keys | {"accuracy"}
        assert all(0.0 <= value <= 1.0 for name, value in row.items() if name != "support")
    # 3 gold entities, 3 predicted, 2 right. Surface forms: 3 gold ((location, Paris), (location,
    # Paris Hilton), (person, Paris)), 2 predicted (the wrong "Paris" is a location form already
    # found elsewhere), both right: precision 1, recall 2/3.
    assert scores["overall"]["precision"] == 2 / 3 and scores["overall"]["recall"] == 2 / 3
    assert scores["overall"]["surface_precision"] == 1.0 and scores["overall"]["surface_recall"] == 2 / 3
    assert scores["per_type"]["location"]["surface_recall"] == 1 / 2
    assert scores["overall"]["accuracy"] == 5 / 6


def test_one_file_with_token_gold_and_predicted_columns_scores_the_same(tmp_path):
    two = evaluate_files(write(tmp_path / "gold", GOLD), write(tmp_path / "pred", PRED))
    joined = "\n".join(
        f"{g}\t{p.split(chr(9))[-1]}" if g else "" for g, p in zip(GOLD.split("\n"), PRED.split("\n"))
    )
    assert evaluate_files(write(tmp_path / "joined", joined)) == two


def test_crlf_and_space_separated_columns_are_read(tmp_path):
    two = evaluate_files(write(tmp_path / "gold", GOLD), write(tmp_path / "pred", PRED))
    crlf_spaces = PRED.replace("\t", "   ").replace("\n", "\r\n")
    assert evaluate_files(write(tmp_path / "gold", GOLD), write(tmp_path / "pred", crlf_spaces)) == two


def test_strict_mode_drops_an_i_that_continues_no_b(tmp_path):
    gold = write(tmp_path / "gold", "New\tB-location\nYork\tI-location\n")
    pred = write(tmp_path / "pred", "New\tO\nYork\tI-location\n")
    assert evaluate_files(gold, pred, "default")["overall"]["precision"] == 0.0  # a wrong 1-word entity
    strict = evaluate_files(gold, pred, "strict")
    assert strict["mode"] == "strict" and strict["per_type"]["location"]["support"] == 1
    assert strict["overall"]["recall"] == 0.0 and strict["overall"]["precision"] == 0.0


@pytest.mark.parametrize(
    ("pred", "message"),
    [
        # a different token: both files and lines named
        (PRED.replace("Hilton", "Hyatt"), r"gold:6: token 'Hilton', but .*pred:6: token 'Hyatt'"),
        # the prediction runs a sentence on
        (
            PRED.replace("O\n\nParis\tB-person", "O\nParis\tB-person\n\nParis\tB-person"),
            r"gold:6: the sentence ",
        ),
        # a sentence missing at the end
        (PRED.rsplit("\n\n", 1)[0] + "\n", r"gold has 3 sentences but .*pred has 2; .*gold:8"),
    ],
)
def test_tokens_and_sentence_breaks_must_line_up(tmp_path, pred, message):
    with pytest.raises(LitNerError, match=message):
        evaluate_files(write(tmp_path / "gold", GOLD), write(tmp_path / "pred", pred))


def test_a_misaligned_file_is_one_line_and_exit_status_2_from_the_command(tmp_path):
    gold, pred = write(tmp_path / "gold", GOLD), write(tmp_path / "pred", PRED.replace("nice", "bad"))
    result = subprocess.run([LIT_NER, "evaluate", str(gold), str(pred)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"lit_ner: error: {gold}:3: token 'nice', but {pred}:3: token 'bad'"
    ]
    assert "Traceback" not in result.stderr


def test_the_text_report_has_the_entity_and_the_surface_form_tables(tmp_path):
    gold, pred = write(tmp_path / "gold", GOLD), write(tmp_path / "pred", PRED)
    result = subprocess.run(
        [LIT_NER, "evaluate", str(gold), str(pred)], capture_output=True, text=True, env={**os.environ}
    )
    assert result.returncode == 0, result.stderr
    assert "entities (seqeval, default mode); token accuracy 0.8333" in result.stdout
    assert "unique surface forms (WNUT-17 shared task" in result.stdout
    assert result.stdout.count("overall (micro)") == 2


def test_bootstrap_intervals_are_the_quantiles_of_each_f1_recomputed_on_resampled_sentences(
    wnut17_dir, tmp_path
):
    import numpy as np

    from lit_ner.evaluate import bootstrap_draws, evaluate_tags

    test_file = wnut17_dir / "emerging.test.annotated"
    submission = rebuild_submission(
        test_file, FIXTURES / "wnut17_test_spinningbytes.tsv", tmp_path / "spinningbytes.txt"
    )
    samples = 25
    results = evaluate_files(test_file, submission, bootstrap=samples, seed=7, confidence=0.9)
    gold, pred = read_aligned(test_file, submission)
    # The slow way: score every resample of the sentences from scratch.
    resampled = []
    for draw in bootstrap_draws(len(gold["tags"]), samples, seed=7):
        resampled.append(
            evaluate_tags(
                [gold["tokens"][n] for n in draw],
                [gold["tags"][n] for n in draw],
                [pred["tags"][n] for n in draw],
            )
        )
    boot = results["bootstrap"]
    assert (boot["samples"], boot["seed"], boot["confidence"]) == (samples, 7, 0.9)
    for key in ("f1", "surface_f1"):
        values = [r["overall"][key] for r in resampled]
        assert boot["overall"][key] == pytest.approx(np.quantile(values, [0.05, 0.95]).tolist(), abs=1e-12)
        low, high = boot["overall"][key]
        assert low < results["overall"][key] < high  # SpinningBytes' 0.4078 and 0.3933 inside
        for type_ in results["per_type"]:
            values = [r["per_type"].get(type_, {key: 0.0})[key] for r in resampled]
            assert boot["per_type"][type_][key] == pytest.approx(
                np.quantile(values, [0.05, 0.95]).tolist(), abs=1e-12
            )


def test_bootstrap_is_reproducible_by_seed_and_printed_beside_each_f1(tmp_path):
    gold, pred = write(tmp_path / "gold", GOLD), write(tmp_path / "pred", PRED)
    perfect = evaluate_files(gold, gold, bootstrap=200)["bootstrap"]
    assert perfect["overall"] == {"f1": [1.0, 1.0], "surface_f1": [1.0, 1.0]}
    assert evaluate_files(gold, pred, bootstrap=200, seed=3) == evaluate_files(
        gold, pred, bootstrap=200, seed=3
    )
    result = subprocess.run(
        [LIT_NER, "evaluate", str(gold), str(pred), "--bootstrap", "200"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert (
        "F1 with 95% confidence intervals (bootstrap: 200 resamples of the sentences, seed 0)"
        in result.stdout
    )
    overall = evaluate_files(gold, pred, bootstrap=200)
    low, high = overall["bootstrap"]["overall"]["f1"]
    assert f"{overall['overall']['f1']:.4f} [{low:.4f}, {high:.4f}]" in result.stdout
    bad = subprocess.run(
        [LIT_NER, "evaluate", str(gold), "--bootstrap", "-1"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
