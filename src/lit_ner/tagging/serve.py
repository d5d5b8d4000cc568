"""`lit_ner serve`: a model behind HTTP on LitServe, Lightning's serving engine.

- `POST /predict` with `{"text": "..."}` answers `{"text": ..., "entities": [...]}`, exactly a line
  of `lit_ner tag`'s output; `{"texts": [...]}` answers a list of those. An optional
  `aggregation_strategy` is the pipeline's (default `simple`).
- Requests from all clients are batched dynamically (up to `max_batch_size` requests, waiting at
  most `batch_timeout` seconds for a batch to fill), and each batch is one `Tagger` call: its
  texts sorted by length and run in padded batches.
- A bad request (not JSON, no text, wrong types, a text over `max_text_length` characters, more
  than `max_texts` texts, an unknown aggregation strategy) is answered 4xx with a one-line JSON
  `{"error": ...}` before it reaches the batch, so it never fails the requests batched with it.
- `GET /` is a page to try the model (`serve_page.html`: self-contained, no outside assets);
  `GET /health` says `ok` once the model is loaded.
- SIGTERM (or Ctrl-C) stops the server after the requests in flight are answered (uvicorn's
  graceful shutdown, which LitServe runs).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any, Literal

from lit_ner import compat
from lit_ner.errors import LitNerError
from lit_ner.tagging.aggregation import AGGREGATION_STRATEGIES
from lit_ner.tagging.runtime import usable_cores

try:
    import litserve
except ImportError:  # the serve extra is not installed: `serve` says so in one line
    litserve = None

PAGE = Path(__file__).with_name("serve_page.html")


def request_error(body: bytes, max_texts: int, max_text_length: int) -> tuple[int, str] | None:
    """`(status, message)` for a bad `/predict` body, or None for a good one."""
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return 400, f"the body is not JSON: {exc}"
    except RecursionError:  # [[[[...]]]] deeper than Python's parser recurses
        return 400, "the body is not JSON this server reads: nested too deeply"
    if not isinstance(request, dict):
        return 422, 'the body must be a JSON object: {"text": "..."} or {"texts": ["...", ...]}'
    unknown = sorted(set(request) - {"text", "texts", "aggregation_strategy"})
    if unknown:
        return 422, f"unknown field(s) {unknown}: expected text or texts, and aggregation_strategy"
    if ("text" in request) == ("texts" in request):
        return 422, 'give one of "text" (a string) or "texts" (a list of strings)'
    texts = [request["text"]] if "text" in request else request["texts"]
    if "texts" in request and not isinstance(texts, list):
        return 422, '"texts" must be a list of strings'
    if not all(isinstance(text, str) for text in texts):
        field = "text" if "text" in request else "texts"
        return 422, f'"{field}" must hold strings only'
    if len(texts) > max_texts:
        return 413, f"{len(texts)} texts in one request; the limit is {max_texts}"
    for i, text in enumerate(texts):
        if len(text) > max_text_length:
            where = "the text" if "text" in request else f"text {i}"
            return 413, f"{where} has {len(text)} characters; the limit is {max_text_length}"
    strategy = request.get("aggregation_strategy", "simple")
    if not isinstance(strategy, str) or strategy not in AGGREGATION_STRATEGIES:
        return 422, f"aggregation_strategy must be one of {list(AGGREGATION_STRATEGIES)}, not {strategy!r}"
    return None


class RequestCheck:
    """ASGI middleware: checks each `POST /predict` body (`request_error`) before LitServe sees it,
    answering a bad one itself; a good one goes on, its body replayed."""

    def __init__(self, app: Any, path: str, max_texts: int, max_text_length: int) -> None:
        self.app, self.path = app, path
        self.max_texts, self.max_text_length = max_texts, max_text_length
        # Bytes a body may hold: every text at its limit, escaped (6 bytes a character at worst).
        self.max_body = 6 * max_texts * max_text_length + 4096

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                await answer(send, 413, f"the body is over {self.max_body} bytes")
                return
        error = request_error(body, self.max_texts, self.max_text_length)
        if error:
            await answer(send, *error)
            return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        # The body is JSON whatever the client declared (curl -d says form data).
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
        scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, replay, send)


async def answer(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class NERAPI(litserve.LitAPI if litserve else object):  # type: ignore[misc]
    """The LitAPI: loads a `Tagger` in each worker and tags each batch of requests in one call.

    Args:
        model, backend, tagger: `Tagger.from_pretrained`'s model, backend and options.
        max_batch_size, batch_timeout: LitServe's dynamic batching.
    """

    def __init__(
        self,
        model: str,
        backend: str,
        tagger: dict[str, Any],
        max_batch_size: int,
        batch_timeout: float,
        torch_threads: int | None = None,
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout)
        self.model, self.backend, self.tagger_options = model, backend, tagger
        self.torch_threads = torch_threads

    def setup(self, device: str) -> None:
        from lit_ner.tagging.tagger import Tagger

        if self.backend == "torch" and self.torch_threads:
            import torch

            torch.set_num_threads(self.torch_threads)

        self.tagger = Tagger.from_pretrained(self.model, backend=self.backend, **self.tagger_options)

    def decode_request(self, request):  # unannotated: LitServe parses the JSON
        single = "text" in request
        texts = [request["text"]] if single else request["texts"]
        return texts, request.get("aggregation_strategy", "simple"), single

    def batch(self, inputs: list) -> list:
        return inputs

    def predict(self, requests: Any) -> Any:
        from lit_ner.tagging.tag import to_json

        batched = isinstance(requests, list)  # LitServe skips batch() when max_batch_size is 1
        requests = requests if batched else [requests]
        results: list[Any] = [None] * len(requests)
        # One Tagger call per aggregation strategy in the batch (nearly always one).
        for strategy in {strategy for _, strategy, _ in requests}:
            chosen = [i for i, (_, s, _) in enumerate(requests) if s == strategy]
            found = iter(self.tagger.tag([text for i in chosen for text in requests[i][0]], strategy))
            for i in chosen:
                texts, _, single = requests[i]
                records = [{"text": text, "entities": to_json(next(found))} for text in texts]
                results[i] = records[0] if single else records
        return results if batched else results[0]

    def unbatch(self, output: list) -> list:
        return output

    def encode_response(self, output: Any) -> Any:
        return output


def serve(
    *,
    model: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    backend: Literal["torch", "onnx"] = "torch",
    max_batch_size: int = 32,
    batch_timeout: float = 0.01,
    workers: int = 1,
    max_texts: int = 64,
    max_text_length: int = 10000,
    timeout: float = 30.0,
    **tagger: Any,
) -> None:
    """Serves a model over HTTP: POST /predict, GET /health, and a page to try it at GET /.

    Args:
        model: an export (hf_model/), a Hub id or a lit_ner .ckpt.
        host: the address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface).
        port: the port.
        backend: "torch", or "onnx" (the export's model.onnx, from `lit_ner export --onnx`).
        max_batch_size: requests batched into one model call at most.
        batch_timeout: seconds a batch waits to fill.
        workers: model workers (processes, each with its own copy of the model).
        max_texts: texts one request may hold.
        max_text_length: characters one text may hold.
        timeout: seconds a request may wait for its answer (504 after).
        **tagger: the `Tagger`'s options (trust_remote_code, batch_size, device, precision,
            stride, threads, decoding, max_padding).
    """
    check_serve_options(host, backend, max_batch_size, batch_timeout, workers, max_texts, max_text_length)
    if backend == "onnx" and tagger.get("threads") is None:
        # The cores shared out between the workers (batches at once in each), so that workers
        # do not fight over them.
        tagger["threads"] = max(1, usable_cores() // workers)
    # Load once here, so that a bad model is one line now, not a worker's traceback later.
    from lit_ner.tagging.tagger import Tagger

    Tagger.from_pretrained(model, backend=backend, **tagger)
    # Several torch workers share the cores out too.
    torch_threads = max(1, usable_cores() // workers) if workers > 1 else None
    api = NERAPI(model, backend, tagger, max_batch_size, batch_timeout, torch_threads)
    server = litserve.LitServer(
        api,
        accelerator="cpu",
        devices=1,
        workers_per_device=workers,
        timeout=timeout,
        middlewares=[
            (RequestCheck, {"path": "/predict", "max_texts": max_texts, "max_text_length": max_text_length})
        ],
    )
    add_page(server.app)
    stop_on_sigterm(server)
    print(
        f"lit_ner serve: http://{host}:{port}/ (POST /predict, GET /health), model {model}, backend {backend}"
    )
    server.run(host=host, port=port, generate_client_file=False, log_level="warning")


def check_serve_options(
    host: str,
    backend: str,
    max_batch_size: int,
    batch_timeout: float,
    workers: int,
    max_texts: int,
    max_text_length: int,
) -> None:
    """Refuses, in one line, what `serve` cannot run with (LitServe missing, a host, backend or
    limit out of range), before any model loads."""
    if litserve is None:
        raise LitNerError("lit_ner serve needs LitServe: pip install 'lit_ner[serve]'")
    compat.require("litserve")
    if host not in ("127.0.0.1", "0.0.0.0", "::"):
        raise LitNerError(
            f"--host must be 127.0.0.1 (this machine), 0.0.0.0 or :: (every interface), not {host!r}"
        )
    if backend not in ("torch", "onnx"):
        raise LitNerError(f"--backend must be torch or onnx, not {backend!r}")
    if max_batch_size < 1 or batch_timeout < 0 or workers < 1 or max_texts < 1 or max_text_length < 1:
        raise LitNerError(
            "--max_batch_size, --workers, --max_texts and --max_text_length must be >= 1, "
            "--batch_timeout >= 0"
        )


def stop_on_sigterm(server: Any) -> None:
    """SIGTERM stops the server cleanly: the HTTP servers stop taking connections and answer the
    requests in flight (uvicorn's graceful shutdown, while the model workers still run), then
    LitServe shuts the model workers down and `serve` returns (exit status 0)."""
    main = os.getpid()

    def stop(signum: int, frame: Any) -> None:
        if os.getpid() != main:  # a forked worker inherited this handler: die as by default
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return

        def shut_down() -> None:
            http = compat.litserve_http_processes()
            for process in http:
                process.terminate()
            for process in http:
                process.join(timeout=60)
            compat.stop_litserve(server)  # LitServer.run then stops the model workers

        threading.Thread(target=shut_down, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)


def add_page(app: Any) -> None:
    """`GET /`: the page to try the model (in place of LitServe's own `/`)."""
    from fastapi.responses import HTMLResponse

    app.router.routes = [route for route in app.router.routes if getattr(route, "path", None) != "/"]
    page = PAGE.read_text(encoding="utf-8")

    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    app.add_api_route("/", index, methods=["GET"], response_class=HTMLResponse, include_in_schema=False)
