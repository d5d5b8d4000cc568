"""Tagging and serving: every way lit_ner runs a trained model, against transformers' pipeline,
on WNUT-17's test sentences (joined into texts), on this machine's CPU.

Usage: python bench/tagging.py [--model DIR] [--wnut17_dir DIR] [--out bench/results.json]

The model is a trained export: `--model`, else the offline recipe's own
(`runs/wnut-offline/version_0/hf_model`, trained first by `lit_ner fit --config configs/wnut.yaml
--config configs/offline.yaml` when it is not there: ~10 min). From it, `lit_ner export --onnx`
writes an fp32 and an int8 ONNX model.

Engines, each over all texts, `--repeats` passes, the fastest counting (this shared CPU's
timings vary by +-15% from pass to pass):
- pipeline_per_text: `pipeline("token-classification")` called once per text (the tutorial);
- pipeline_batched: the pipeline on the whole list with `batch_size=32` (its own batching);
- torch_fp32, torch_bf16: lit_ner's `Tagger` (texts sorted by length, padded batches of 32);
- onnx_fp32, onnx_int8: the same Tagger on ONNX Runtime (batches of 8 side by side, one a core).
For each: texts/s, CPU time a text (all threads), the texts whose entities (type, start, end)
equal the torch fp32 Tagger's, and the test entity F1 (seqeval, default mode) of its entities
read back onto the words. The pipeline reads a CRF export by argmax (it cannot know the CRF), so
its F1 is that of argmax.

Then a bounded load test of `lit_ner serve` on the loopback address, per backend (onnx int8, and
torch in its default precision; `--workers` one per core, each model process with one thread):
1, 8 and 32 concurrent clients (threads in this process, keep-alive connections) send every test
text once, a text a request, then 32 clients with 8 texts a request; texts/s, p50 and p99
request latency, failed requests, texts/s as a fraction of the offline Tagger's with the same
backend, and the CPU time a text cost the server's processes and the load generator. The clients
share the 2 cores with the server, as the HTTP server shares them with the model.
Results go in the JSON file under "tagging".
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from results import machine  # noqa: E402  (bench/ is not a package)

RECIPE_EXPORT = ROOT / "runs" / "wnut-offline" / "version_0" / "hf_model"


def word_tags(text: str, words: list[str], entities: list[dict]) -> list[str]:
    """BIO tags of the words of `text` (the words joined by single spaces) from character-span
    entities: a word belongs to the entity its first character falls in."""
    starts, position = [], 0
    for word in words:
        starts.append(position)
        position += len(word) + 1
    tags = ["O"] * len(words)
    for entity in entities:
        inside = [i for i, start in enumerate(starts) if entity["start"] <= start < entity["end"]]
        for rank, i in enumerate(inside):
            tags[i] = ("B-" if rank == 0 else "I-") + entity["entity_group"]
    return tags


def spans(entities: list[dict]) -> list[tuple]:
    return [(e["entity_group"], e["start"], e["end"]) for e in entities]


def fastest(run, repeats: int):
    """The outputs, the best time of `repeats` passes and the CPU time (all of this process's
    threads) of that pass."""
    best = (float("inf"), 0.0)
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        outputs = run()
        best = min(best, (time.perf_counter() - start, time.process_time() - cpu))
    return outputs, *best


def server_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a process and all its descendants (the HTTP servers, LitServe's
    queues and the model workers)."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def directory_mb(directory: Path, pattern: str = "*") -> float:
    return round(sum(p.stat().st_size for p in directory.glob(pattern) if p.is_file()) / 1e6, 1)


def load_test(
    model: Path, backend: str, texts: list[str], levels: list[tuple[int, int]], port: int, workers: int
) -> dict:
    """`lit_ner serve` under each level `(clients, texts a request)`: that many concurrent clients
    sending every text once, in requests of that many texts."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lit_ner", "serve", "--model", str(model), "--backend", backend,
         "--port", str(port), "--max_batch_size", "32", "--batch_timeout", "0.01", "--workers", str(workers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(240):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit(f"lit_ner serve ({backend}) did not start")
        results = {}
        for n_clients, per_request in levels:
            latencies: list[float] = []
            failed = [0]
            requests = [texts[i : i + per_request] for i in range(0, len(texts), per_request)]
            queue = iter(range(len(requests)))
            lock = threading.Lock()

            def client() -> None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                while True:
                    with lock:
                        i = next(queue, None)
                    if i is None:
                        return
                    single = per_request == 1
                    body = json.dumps({"text": requests[i][0]} if single else {"texts": requests[i]})
                    start = time.perf_counter()
                    try:
                        connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
                        response = connection.getresponse()
                        answer = json.loads(response.read()) if response.status == 200 else None
                        answer = [answer] if single and answer else answer
                        ok = answer is not None and [a["text"] for a in answer] == requests[i]
                    except (OSError, http.client.HTTPException, ValueError):
                        ok = False
                        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                    with lock:
                        latencies.append(time.perf_counter() - start)
                        failed[0] += not ok

            threads = [threading.Thread(target=client) for _ in range(n_clients)]
            server_cpu, client_cpu = server_cpu_seconds(process.pid), time.process_time()
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.perf_counter() - start
            server_cpu = server_cpu_seconds(process.pid) - server_cpu
            client_cpu = time.process_time() - client_cpu
            latencies.sort()
            results[f"{n_clients}_clients_{per_request}_texts"] = {
                "clients": n_clients,
                "texts_per_request": per_request,
                "requests": len(requests),
                "texts_per_s": round(len(texts) / seconds, 1),
                "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
                "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
                "failed": failed[0],
                # Where the 2 cores went: the server's processes, and the load generator's.
                "server_cpu_ms_per_text": round(1000 * server_cpu / len(texts), 2),
                "load_generator_cpu_ms_per_text": round(1000 * client_cpu / len(texts), 2),
            }
            print(f"serve {backend}: {results[f'{n_clients}_clients_{per_request}_texts']}", flush=True)
        return results
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


ENGINE_NAMES = {
    "pipeline_per_text": '`pipeline("token-classification")`, one call per text',
    "pipeline_batched": "`pipeline(...)(texts, batch_size=32)`",
    "torch_fp32": '`Tagger`, torch, `precision="32"`',
    "torch_bf16": '`Tagger`, torch, `precision="bf16"`',
    "onnx_fp32": "`Tagger`, ONNX Runtime, fp32",
    "onnx_int8": "`Tagger`, ONNX Runtime, int8",
}


def markdown_tables(result: dict) -> tuple[str, str, str, str]:
    """The docs' tables (docs/tagging.md) of a `tagging` result: the engines, the load test, the
    ways to quantize, and the ways to run ONNX Runtime."""
    rows = [
        "| | texts/s | CPU ms a text | texts agreeing with torch fp32 | test entity F1 |",
        "|---|---|---|---|---|",
    ]
    for name, label in ENGINE_NAMES.items():
        engine = result["engines"][name]
        if name == ("torch_bf16" if result["bf16_native"] else "torch_fp32"):
            label += " (`auto` here)"
        rows.append(
            f"| {label} | {engine['texts_per_s']:.0f} | {engine['cpu_ms_per_text']:.2f} "
            f"| {engine['texts_agreeing_with_torch_fp32']:,} "
            f"| {engine['test_f1']:.4f} |"
        )
    serve = [
        "| backend | clients | texts a request | texts/s | of the offline Tagger's | p50 ms | p99 ms "
        "| failed | CPU ms a text: server | load generator |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    workers, precision = result["serve"]["workers"], result["serve"]["backends"]["torch"]
    labels = {"onnx_int8": "ONNX int8", "torch": "torch bf16" if precision == "bf16" else "torch fp32"}
    for backend, label in labels.items():
        label += f", {workers[backend]} worker{'s' if workers[backend] > 1 else ''}"
        for level in result["serve"][backend].values():
            serve.append(
                f"| {label} | {level['clients']} | {level['texts_per_request']} | {level['texts_per_s']:.0f} "
                f"| {level['fraction_of_offline_tagger']:.0%} | {level['p50_ms']:.0f} "
                f"| {level['p99_ms']:.0f} | {level['failed']} | {level['server_cpu_ms_per_text']:.2f} "
                f"| {level['load_generator_cpu_ms_per_text']:.2f} |"
            )
    int8 = ["| ONNX Runtime dynamic quantization | test entity F1 | texts/s (one pass) | model.onnx MB |"]
    int8.append("|---|---|---|---|")
    names = {
        "all_ops_per_tensor": "its defaults: every weight, one scale per tensor",
        "all_ops_per_channel": "every weight, one scale per output channel",
        "matmul_per_channel": "MatMul weights only, per channel (`--quantize int8`)",
    }
    for name, label in names.items():
        choice = result["int8_choices"][name]
        int8.append(
            f"| {label} | {choice['test_f1']:.4f} | {choice['texts_per_s']:.0f} | {choice['onnx_mb']} |"
        )
    measured = result["onnx_runs"]
    cores = measured["cores"]
    batch, length = measured["shape"]
    runs = [f"| ONNX Runtime, int8 model, {batch}x{length} windows | ms a batch (wall time / batches) |"]
    runs.append("|---|---|")
    for key, label in (
        ("runs_side_by_side_one_thread_each", f"{cores} runs at once, one thread each (the backend's)"),
        ("one_run_at_a_time_on_every_core", f"one run at a time on {cores} threads"),
        ("one_thread_skip_layer_norm_unfused", "one thread, SkipLayerNorm fusion off (the backend's)"),
        ("one_thread_skip_layer_norm_fused", "one thread, SkipLayerNorm fusion on"),
    ):
        runs.append(f"| {label} | {measured[key]:.1f} |")
    return "\n".join(rows), "\n".join(serve), "\n".join(int8), "\n".join(runs)


# ONNX Runtime's dynamic quantization, three ways: its defaults (every weight op, the embedding
# Gathers included, one scale per tensor), one scale per output channel, and lit_ner's choice
# (`lit_ner export --quantize int8`: MatMul weights only, per channel).
INT8_CHOICES = {
    "all_ops_per_tensor": {},
    "all_ops_per_channel": {"per_channel": True},
    "matmul_per_channel": {"per_channel": True, "op_types_to_quantize": ["MatMul"]},
}


def int8_choices(fp32_dir: Path, work: Path, texts: list[str], f1) -> dict:
    """Test F1, texts/s (one pass) and size of each way of quantizing the fp32 model.onnx."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from lit_ner.export.onnx import quiet_logging
    from lit_ner.tagging.tagger import Tagger

    choices = {}
    for name, options in INT8_CHOICES.items():
        directory = work / f"int8-{name}"
        shutil.rmtree(directory, ignore_errors=True)
        shutil.copytree(fp32_dir, directory, ignore=shutil.ignore_patterns("model.onnx*"))
        with quiet_logging():
            quantize_dynamic(
                str(fp32_dir / "model.onnx"),
                str(directory / "model.onnx"),
                weight_type=QuantType.QInt8,
                **options,
            )
        tagger = Tagger.from_pretrained(directory, backend="onnx")
        tagger(texts[:64])
        start = time.perf_counter()
        found = tagger(texts)
        seconds = time.perf_counter() - start
        choices[name] = {
            "test_f1": f1(found),
            "texts_per_s": round(len(texts) / seconds, 1),
            "onnx_mb": directory_mb(directory, "model.onnx*"),
        }
        print("int8", name, choices[name], flush=True)
    return choices


def onnx_runs(int8_dir: Path, batch: int = 8, length: int = 32, runs: int = 20) -> dict:
    """Milliseconds a batch of the int8 model (`batch` x `length` random windows), ONNX Runtime
    set up four ways: the ONNX backend's (each run on one thread, as many runs at once as
    cores, SkipLayerNormFusion off); one run at a time on every core; and one thread, one run at
    a time, with ONNX Runtime's SkipLayerNormalization fusion off (the backend's) and on."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import onnxruntime

    from lit_ner.tagging.runtime import OnnxModel, usable_cores

    cores = usable_cores()
    names = OnnxModel(int8_dir).input_names
    ids = np.random.default_rng(0).integers(1000, 30000, (batch, length))
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    feed = {name: feed[name] for name in names}

    def ms_a_batch(threads: int, at_once: int, fused: bool) -> float:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(
            str(int8_dir / "model.onnx"), options, providers=["CPUExecutionProvider"],
            disabled_optimizers=[] if fused else ["SkipLayerNormFusion"],
        )  # fmt: skip
        with ThreadPoolExecutor(at_once) as pool:
            list(pool.map(lambda _: session.run(None, feed), range(2 * at_once)))  # warm up
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                list(pool.map(lambda _: session.run(None, feed), range(runs)))
                best = min(best, (time.perf_counter() - start) / runs)
        return round(1000 * best, 2)

    result = {
        "shape": [batch, length],
        "cores": cores,
        "runs_side_by_side_one_thread_each": ms_a_batch(1, cores, fused=False),
        "one_run_at_a_time_on_every_core": ms_a_batch(cores, 1, fused=False),
        "one_thread_skip_layer_norm_unfused": ms_a_batch(1, 1, fused=False),
        "one_thread_skip_layer_norm_fused": ms_a_batch(1, 1, fused=True),
    }
    print("onnx runs", result, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help=f"a trained export (default: {RECIPE_EXPORT.relative_to(ROOT)})")
    parser.add_argument("--wnut17_dir", default=os.environ.get("WNUT17_DIR"))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results.json"))
    parser.add_argument("--work_dir", default=str(ROOT / "runs" / "bench-tagging"))
    parser.add_argument("--batch_size", type=int, help="the Taggers' (default: each backend's own)")
    parser.add_argument("--repeats", type=int, default=3, help="passes per engine; the fastest counts")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--texts_per_request", type=int, default=8, help="the last level's, at the most clients"
    )
    parser.add_argument("--workers", type=int, help="lit_ner serve's model workers (default: one per core)")
    parser.add_argument("--port", type=int, default=8731)
    parser.add_argument(
        "--only", choices=["int8_choices", "onnx_runs"], help="run this part alone (after a full run)"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    model = Path(args.model) if args.model else RECIPE_EXPORT
    if not model.is_dir():
        if args.model:
            raise SystemExit(f"{model}: no such export")
        print("no trained export: training the offline recipe first (~10 min)", flush=True)
        subprocess.run(
            [sys.executable, "-m", "lit_ner", "fit", "--config", "configs/wnut.yaml", "--config",
             "configs/offline.yaml", "--trainer.enable_progress_bar=false"],
            cwd=ROOT, check=True,
        )  # fmt: skip
    import torch
    from transformers import pipeline

    from lit_ner.export.command import export
    from lit_ner.formats import read_conll
    from lit_ner.scoring import ner_scores
    from lit_ner.tagging.runtime import bf16_is_native
    from lit_ner.tagging.tagger import Tagger
    from lit_ner.wnut17 import wnut17_files

    gold = read_conll(wnut17_files(*([args.wnut17_dir] if args.wnut17_dir else []))["test"])
    texts = [" ".join(words) for words in gold["tokens"]]

    work = Path(args.work_dir)
    onnx_dirs = {"onnx_fp32": work / "onnx-fp32", "onnx_int8": work / "onnx-int8"}
    export(str(model), str(onnx_dirs["onnx_fp32"]), onnx=True)
    export(str(model), str(onnx_dirs["onnx_int8"]), onnx=True, quantize="int8")

    def f1(outputs: list[list[dict]]) -> float:
        predicted = [word_tags(t, w, e) for t, w, e in zip(texts, gold["tokens"], outputs)]
        return round(ner_scores(gold["tags"], predicted)["f1"], 4)

    if args.only:  # this part alone, merged into the last full run's results
        out = Path(args.out)
        results = json.loads(out.read_text())
        if args.only == "int8_choices":
            results["tagging"]["int8_choices"] = int8_choices(onnx_dirs["onnx_fp32"], work, texts, f1)
        else:
            results["tagging"]["onnx_runs"] = onnx_runs(onnx_dirs["onnx_int8"])
        out.write_text(json.dumps(results, indent=2) + "\n")
        return
    engines: dict[str, dict] = {}
    outputs: dict[str, list] = {}
    plain = pipeline("token-classification", model=str(model), aggregation_strategy="simple")
    plain(texts[0])
    runs = {
        "pipeline_per_text": lambda: [plain(text) for text in texts],
        "pipeline_batched": lambda: plain(texts, batch_size=32),
    }
    taggers = {
        "torch_fp32": Tagger.from_pretrained(model, batch_size=args.batch_size, precision="32"),
        "torch_bf16": Tagger.from_pretrained(model, batch_size=args.batch_size, precision="bf16"),
        "onnx_fp32": Tagger.from_pretrained(
            onnx_dirs["onnx_fp32"], backend="onnx", batch_size=args.batch_size
        ),
        "onnx_int8": Tagger.from_pretrained(
            onnx_dirs["onnx_int8"], backend="onnx", batch_size=args.batch_size
        ),
    }
    for name, tagger in taggers.items():
        tagger(texts[:64])  # warm up
        runs[name] = lambda tagger=tagger: tagger(texts)
    for name, run in runs.items():
        found, seconds, cpu = fastest(run, args.repeats)
        outputs[name] = found
        engines[name] = {
            "texts_per_s": round(len(texts) / seconds, 1),
            "test_f1": f1(found),
            "cpu_ms_per_text": round(1000 * cpu / len(texts), 2),
        }
        print(name, engines[name], flush=True)
    reference = [spans(e) for e in outputs["torch_fp32"]]
    for name in engines:
        engines[name]["texts_agreeing_with_torch_fp32"] = sum(
            spans(e) == r for e, r in zip(outputs[name], reference)
        )
    # A model process per core, each with one thread: on small batches of requests, threads of
    # one model wait for each other (on 2 cores, both backends served more this way).
    workers = {"onnx_int8": args.workers or os.cpu_count(), "torch": args.workers or os.cpu_count()}
    choices = int8_choices(onnx_dirs["onnx_fp32"], work, texts, f1)
    runs_measured = onnx_runs(onnx_dirs["onnx_int8"])
    levels = [(n, 1) for n in args.clients] + [(max(args.clients), args.texts_per_request)]
    serve = {
        "onnx_int8": load_test(
            onnx_dirs["onnx_int8"], "onnx", texts, levels, args.port, workers["onnx_int8"]
        ),
        "torch": load_test(model, "torch", texts, levels, args.port + 1, workers["torch"]),
    }
    offline = {"onnx_int8": engines["onnx_int8"]["texts_per_s"]}
    torch_precision = Tagger.from_pretrained(model).precision
    offline["torch"] = engines["torch_bf16" if torch_precision == "bf16" else "torch_fp32"]["texts_per_s"]
    for backend, levels in serve.items():
        for level in levels.values():
            level["fraction_of_offline_tagger"] = round(level["texts_per_s"] / offline[backend], 3)
    result = {
        "texts": len(texts),
        "model": str(model.relative_to(ROOT) if model.is_relative_to(ROOT) else model),
        "decoding": taggers["torch_fp32"].decoding,
        "engines": engines,
        "onnx_int8_speedup": {
            "over_torch_fp32": round(
                engines["onnx_int8"]["texts_per_s"] / engines["torch_fp32"]["texts_per_s"], 2
            ),
            "over_pipeline_batched": round(
                engines["onnx_int8"]["texts_per_s"] / engines["pipeline_batched"]["texts_per_s"], 2
            ),
        },
        "size_mb": {
            "safetensors": directory_mb(model, "*.safetensors"),
            "onnx_fp32": directory_mb(onnx_dirs["onnx_fp32"], "model.onnx*"),
            "onnx_int8": directory_mb(onnx_dirs["onnx_int8"], "model.onnx*"),
            "export_with_onnx_int8": directory_mb(onnx_dirs["onnx_int8"]),
        },
        "int8_choices": choices,
        "onnx_runs": runs_measured,
        "serve": {
            "backends": {"onnx_int8": "onnx", "torch": torch_precision},
            "workers": workers,
            **serve,
        },
        "batch_size": {"torch": taggers["torch_fp32"].batch_size, "onnx": taggers["onnx_int8"].batch_size},
        "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(),
        # ONNX Runtime: batches run at once, each on one thread (`Tagger(threads=...)`).
        "onnx_batches_at_once": taggers["onnx_int8"].model.parallel,
        "bf16_native": bf16_is_native(torch.device("cpu")),
        "machine": machine(),
    }
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results["tagging"] = result
    results.pop("tagging_trained_offline_recipe", None)  # folded into "tagging": a trained export
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print("\n\n".join(markdown_tables(result)))


if __name__ == "__main__":
    main()
