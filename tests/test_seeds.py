"""`lit_ner fit --seeds N` trains one run per seed and reports their mean and spread;
`lit_ner summarize` does the same for runs trained apart (one job per seed on a cluster)."""

import json
import statistics

import pytest

from lit_ner.errors import LitNerError
from lit_ner.training.summary import parse_seeds

from .test_cli import run_lit_ner, tiny_fit_args


def test_seeds_are_a_count_from_42_or_a_list():
    assert parse_seeds("3") == [42, 43, 44]
    assert parse_seeds("1,7,9") == [1, 7, 9]
    for bad in ("", "x", "1,1", "0"):
        with pytest.raises(LitNerError, match="--seeds"):
            parse_seeds(bad)


@pytest.mark.slow
def test_fit_with_two_seeds_trains_two_runs_and_reports_their_mean_and_spread(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file

    result = run_lit_ner(
        *tiny_fit_args(tiny_model_dir, tmp_path), "--trainer.max_epochs=1", "--model.learning_rate=1e-3",
        "--trainer.enable_progress_bar=false", "--seeds", "5,6",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted((tmp_path / "quirks").glob("version_*/fit_summary.json"))
    assert len(runs) == 2
    records = [json.loads(path.read_text()) for path in runs]
    assert [record["seed"] for record in records] == [5, 6]
    # Different seeds, different models (the head's initialisation at least).
    weights = [load_file(f"{record['export']}/model.safetensors")["classifier.weight"] for record in records]
    assert not weights[0].equal(weights[1])
    summary_path = tmp_path / "quirks" / "seeds-5-6.json"
    summary = json.loads(summary_path.read_text())
    test_f1 = [record["test/f1"] for record in records]
    assert summary["scores"]["test/f1"]["values"] == test_f1
    assert summary["scores"]["test/f1"]["mean"] == pytest.approx(statistics.fmean(test_f1))
    assert summary["scores"]["test/f1"]["std"] == pytest.approx(statistics.stdev(test_f1))
    mean, std = summary["scores"]["best/val_f1"]["mean"], summary["scores"]["best/val_f1"]["std"]
    assert f"best/val_f1: {mean:.4f} ± {std:.4f}" in result.stdout
    assert "2 runs (seeds 5, 6): mean ± standard deviation" in result.stdout

    # The same summary from the folder of run directories, as after one cluster job per seed.
    again = run_lit_ner("summarize", str(tmp_path / "quirks"), "--json", "true")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == summary
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = run_lit_ner("summarize", str(empty))
    assert missing.returncode == 2 and "no fit_summary.json in it or below it" in missing.stderr
