"""An export decodes as lit_ner trained it wherever it goes: in `transformers.pipeline` (with
`trust_remote_code`, even without lit_ner installed) and in ONNX Runtime (fp32 and int8), the
ONNX backend tagging without torch."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lit_ner.__main__ import run_command
from lit_ner.export.onnx import ONNX_FILENAME
from lit_ner.formats import read_conll
from lit_ner.tagging.tagger import Tagger

from .test_inference import SPECIAL_TEXTS, assert_same_entities


def spans(entities):
    return [(e["entity_group"], e["start"], e["end"]) for e in entities]


def wnut17_test_texts(wnut17_dir):
    return [" ".join(words) for words in read_conll(wnut17_dir / "emerging.test.annotated")["tokens"]]


@pytest.mark.slow
@pytest.mark.parametrize("decoding", ["crf", "valid_bio"])
def test_the_pipeline_with_trust_remote_code_finds_lit_ner_tags_entities_on_the_wnut17_test_texts(
    decoding, crf_export_dir, valid_bio_export_dir, wnut17_dir
):
    from transformers import pipeline

    export = crf_export_dir if decoding == "crf" else valid_bio_export_dir
    tagger = Tagger.from_pretrained(export, precision="32")
    assert tagger.decoding == decoding
    texts = [text for text in wnut17_test_texts(wnut17_dir) if len(tagger.windower(text)) == 1]
    assert len(texts) == 1285  # the tiny model's 128 positions: two test sentences need two windows
    ours = tagger(texts)
    shipped = pipeline("token-classification", model=export, trust_remote_code=True)
    assert type(shipped).__name__ == "LitNerTokenClassificationPipeline"
    theirs = [shipped(text) for text in texts]
    assert sum(map(len, ours)) > 1000
    for mine, reference in zip(ours, theirs):
        assert_same_entities(mine, reference)
    # Without trust_remote_code the same folder loads into transformers' standard pipeline,
    # which takes each subword's argmax: other entities.
    plain = pipeline("token-classification", model=export, aggregation_strategy="simple")
    assert type(plain).__name__ == "TokenClassificationPipeline"
    assert sum(spans(plain(text)) != spans(entities) for text, entities in zip(texts[:200], ours)) > 100


@pytest.mark.slow
def test_the_shipped_pipeline_runs_where_lit_ner_cannot_be_imported(crf_export_dir):
    expected = [
        spans(entities) for entities in Tagger.from_pretrained(crf_export_dir, precision="32")(SPECIAL_TEXTS)
    ]
    code = f"""
import json, sys
sys.modules["lit_ner"] = None  # any import of lit_ner now fails
from transformers import pipeline
tagger = pipeline("ner", model={crf_export_dir!r}, trust_remote_code=True)
texts = {SPECIAL_TEXTS!r}
spans = [[(e["entity_group"], e["start"], e["end"]) for e in tagger(t)] if t else [] for t in texts]
print(json.dumps(spans))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert [[tuple(span) for span in text] for text in got] == expected
    assert sum(map(len, expected)) > 10


def test_an_export_of_an_argmax_model_stays_a_plain_hugging_face_model(export_dir, tmp_path):
    out = tmp_path / "plain"
    run_command("export", [export_dir, str(out)])
    config = json.loads((out / "config.json").read_text())
    assert "auto_map" not in config and not (out / "lit_ner_pipeline.py").exists()
    assert "trust_remote_code" not in (out / "README.md").read_text()


ONNX_PROBE = """
import json, sys
from lit_ner.tagging.tagger import Tagger
tagger = Tagger.from_pretrained(sys.argv[1], backend="onnx")
texts = json.loads(sys.stdin.read())
entities = [[{k: float(v) if k == "score" else v for k, v in e.items()} for e in f] for f in tagger(texts)]
print(json.dumps({"entities": entities, "precision": tagger.precision,
                  "loaded": [m for m in ("torch", "transformers", "lightning") if m in sys.modules]}))
"""


def tag_with_onnx(export, texts):
    """The ONNX backend's entities, in a fresh process, and the heavy modules that it imported."""
    result = subprocess.run(
        [sys.executable, "-c", ONNX_PROBE, str(export)], input=json.dumps(texts), capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_onnx_backend_tags_as_torch_does_without_importing_torch(crf_export_dir):
    onnx = tag_with_onnx(crf_export_dir, SPECIAL_TEXTS)
    assert onnx["loaded"] == [] and onnx["precision"] == "32"
    torch_entities = Tagger.from_pretrained(crf_export_dir, precision="32")(SPECIAL_TEXTS)
    assert sum(map(len, torch_entities)) > 10
    for ours, theirs in zip(onnx["entities"], torch_entities):
        assert_same_entities(ours, theirs)


@pytest.mark.slow
def test_onnx_is_exported_with_eager_attention_and_leaves_the_model_as_it_was(tiny_model_dir, tmp_path):
    import onnx

    from lit_ner.export.onnx import export_onnx
    from lit_ner.model.encoder import load_token_classifier
    from lit_ner.wnut17 import WNUT17_LABELS

    model = load_token_classifier(tiny_model_dir, WNUT17_LABELS)
    assert model.config._attn_implementation == "sdpa"
    export_onnx(model, ["input_ids", "attention_mask"], tmp_path)
    # SDPA's export guards fully masked rows with IsNaN/Where: ONNX Runtime time for nothing.
    ops = {node.op_type for node in onnx.load(str(tmp_path / ONNX_FILENAME)).graph.node}
    assert "Softmax" in ops and "IsNaN" not in ops
    assert model.config._attn_implementation == "sdpa"


def test_onnx_batches_run_at_once_on_single_threaded_runs_and_tag_as_one_at_a_time(
    crf_export_dir, wnut17_dir
):
    import threading

    texts = SPECIAL_TEXTS + wnut17_test_texts(wnut17_dir)[:40]
    one_at_a_time = Tagger.from_pretrained(crf_export_dir, backend="onnx", batch_size=2, threads=1)
    at_once = Tagger.from_pretrained(crf_export_dir, backend="onnx", batch_size=2, threads=3)
    assert one_at_a_time.model.parallel == 1 and at_once.model.parallel == 3
    # Each run on one thread: the cores go to runs side by side, not to one run's ops.
    assert at_once.model.session.get_session_options().intra_op_num_threads == 1
    callers = set()
    run = at_once.model.session.run

    def recorded_run(*args, **kwargs):
        callers.add(threading.current_thread().name)
        return run(*args, **kwargs)

    at_once.model.session.run = recorded_run
    expected = one_at_a_time(texts)
    assert sum(map(len, expected)) > 10
    for ours, theirs in zip(at_once(texts), expected):
        assert_same_entities(ours, theirs)
    assert len(callers) > 1 and all(name.startswith("lit_ner-onnx") for name in callers)


def test_an_error_in_a_batch_run_beside_others_reaches_the_caller(crf_export_dir, wnut17_dir):
    tagger = Tagger.from_pretrained(crf_export_dir, backend="onnx", batch_size=2, threads=2)
    run, calls = tagger.model.session.run, []

    def failing_run(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the third batch failed")
        return run(*args, **kwargs)

    tagger.model.session.run = failing_run
    with pytest.raises(RuntimeError, match="the third batch failed"):
        tagger(wnut17_test_texts(wnut17_dir)[:40])


def _tag_in_forked_child(tagger, texts, queue):
    queue.put([spans(entities) for entities in tagger(texts)])


def test_a_tagger_used_before_a_fork_still_tags_in_the_child(crf_export_dir, wnut17_dir):
    import multiprocessing

    texts = wnut17_test_texts(wnut17_dir)[:40]
    tagger = Tagger.from_pretrained(crf_export_dir, backend="onnx", batch_size=2, threads=2)
    expected = [spans(entities) for entities in tagger(texts)]  # its threads exist now
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_tag_in_forked_child, args=(tagger, texts, queue))
    child.start()
    try:
        assert queue.get(timeout=120) == expected  # a copied pool without threads would hang
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["simple", "first"])
def test_onnx_fp32_finds_the_torch_taggers_entities_on_the_wnut17_test_texts(
    export_dir, tmp_path, wnut17_dir, strategy
):
    run_command("export", [export_dir, str(tmp_path / "onnx"), "--onnx", "true"])
    texts = wnut17_test_texts(wnut17_dir)
    onnx = Tagger.from_pretrained(tmp_path / "onnx", backend="onnx")(texts, strategy)
    torch_entities = Tagger.from_pretrained(export_dir, precision="32")(texts, strategy)
    assert sum(map(len, torch_entities)) > 1000
    for ours, theirs in zip(onnx, torch_entities):
        assert_same_entities(ours, theirs)


@pytest.mark.slow
def test_export_of_a_crf_checkpoint_with_int8_onnx_tags_from_the_command_line(
    tiny_model_dir, tmp_path, capsys
):
    from lit_ner.training.cli import cli_main

    from .conftest import FIXTURES

    conll = str(FIXTURES / "quirks.conll")
    cli_main(
        [
            "fit", "--model.model_name_or_path", tiny_model_dir, "--model.head=crf",
            f"--data.train_file={conll}", f"--data.validation_file={conll}", f"--data.cache_dir={tmp_path}",
            "--trainer.max_steps=2", "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}",
            "--trainer.enable_progress_bar=false",
        ]
    )  # fmt: skip
    ckpt, out = tmp_path / "checkpoints" / "last.ckpt", tmp_path / "int8"
    run_command("export", [str(ckpt), str(out), "--onnx", "true", "--quantize", "int8"])
    assert "with model.onnx, int8" in capsys.readouterr().out
    files = {p.name for p in out.iterdir()}
    assert {
        ONNX_FILENAME,
        "lit_ner_pipeline.py",
        "word_decoding.py",
        "lit_ner_config.py",
        "README.md",
    } <= files
    assert not any(name.startswith("model.fp32") for name in files)
    card = (out / "README.md").read_text()
    assert "trust_remote_code=True" in card and "**Without it**" in card and "int8" in card
    # int8 matrix products with weights quantized per output channel; re-exported with fp32 ONNX,
    # none of them.
    import onnx

    def op_types(directory):
        return {node.op_type for node in onnx.load(str(directory / ONNX_FILENAME)).graph.node}

    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= op_types(out)
    run_command("export", [str(out), str(tmp_path / "fp32"), "--onnx", "true"])
    assert "MatMulInteger" not in op_types(tmp_path / "fp32")
    assert (tmp_path / "fp32" / ONNX_FILENAME).stat().st_size > (out / ONNX_FILENAME).stat().st_size
    assert (tmp_path / "fp32" / "README.md").read_text().count("## Use") == 1
    source = tmp_path / "in.txt"
    source.write_text("\n".join(text for text in SPECIAL_TEXTS if text) + "\n")
    capsys.readouterr()
    run_command("tag", ["--model", str(out), "--backend", "onnx", str(source)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == [text for text in SPECIAL_TEXTS if text]
    int8 = Tagger.from_pretrained(out, backend="onnx")
    assert int8.precision == "int8" and int8.decoding == "crf"


def test_onnx_misuse_is_one_line(export_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_command("export", [export_dir, str(tmp_path / "x"), "--quantize", "int8"])
    assert exit_.value.code == 2
    assert "--quantize applies to the ONNX model: add --onnx" in capsys.readouterr().err
    source = tmp_path / "in.txt"
    source.write_text("hello\n")
    with pytest.raises(SystemExit) as exit_:
        run_command("tag", ["--model", export_dir, "--backend", "onnx", str(source)])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1
    assert f"{Path(export_dir)}: no model.onnx" in err


def test_threads_below_one_is_one_line(crf_export_dir, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("hello\n")
    with pytest.raises(SystemExit) as exit_:
        run_command("tag", ["--model", crf_export_dir, "--backend", "onnx", "--threads", "0", str(source)])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err.splitlines() == ["lit_ner: error: threads must be >= 1, not 0"]


class HubStandIn:
    """`huggingface_hub.HfApi` at the network boundary: a repo is a folder under `root`, and an
    upload copies the export there (the Hub cannot be reached from the test machines)."""

    root: Path

    def create_repo(self, repo_id, private, exist_ok, repo_type):
        assert repo_type == "model" and exist_ok
        (self.root / repo_id).mkdir(parents=True, exist_ok=True)
        (self.root / repo_id / ".private").write_text(str(private))

    def upload_folder(self, folder_path, repo_id, repo_type):
        import shutil

        shutil.copytree(folder_path, self.root / repo_id, dirs_exist_ok=True)
        return f"https://huggingface.co/{repo_id}/commit/0"


def test_export_pushes_the_folder_it_wrote_to_the_hub_and_it_tags_from_there(
    crf_export_dir, tmp_path, monkeypatch, capsys
):
    import huggingface_hub

    HubStandIn.root = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub, "HfApi", HubStandIn)
    out = tmp_path / "model"
    run_command(
        "export", [crf_export_dir, str(out), "--push_to_hub", "someone/wnut-tagger", "--hub_private", "false"]
    )
    assert "pushed to the Hub: https://huggingface.co/someone/wnut-tagger/commit/0" in capsys.readouterr().out
    repo = HubStandIn.root / "someone" / "wnut-tagger"
    assert (repo / ".private").read_text() == "False"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in repo.iterdir() if p.name != ".private"
    )
    text = "Empire State Building in New York"
    assert Tagger.from_pretrained(str(repo))(text) == Tagger.from_pretrained(str(out))(text)


def test_a_failed_push_is_one_line_and_the_export_stays(export_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "model"
    with pytest.raises(SystemExit) as exit_:
        run_command("export", [export_dir, str(out), "--push_to_hub", "someone/wnut-tagger"])
    assert exit_.value.code == 2 and (out / "model.safetensors").is_file()
    assert (
        capsys.readouterr()
        .err.strip()
        .splitlines()[-1]
        .startswith("lit_ner: error: push to the Hub repo 'someone/wnut-tagger' failed")
    )
