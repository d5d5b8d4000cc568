"""`lit_ner serve`: answers as `lit_ner tag` does, refuses bad requests with one line and keeps
serving, shows a page that highlights entities in a real browser, and stops cleanly on SIGTERM."""

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lit_ner.tagging.tag import to_json
from lit_ner.tagging.tagger import Tagger

pytestmark = pytest.mark.slow  # each server takes ~15 s to start

ARTIFACTS = Path(os.environ.get("LIT_NER_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model, *args):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lit_ner", "serve", "--model", str(model), "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"lit_ner serve exited {process.returncode}: {process.stdout.read()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise AssertionError("lit_ner serve did not become healthy in 180 s")


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def post(url, body: bytes | str | dict, timeout=60):
    data = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
    request = urllib.request.Request(
        f"{url}/predict", data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server(crf_export_dir):
    """The tiny CRF model served by ONNX Runtime, with small request limits."""
    process, url = start_server(
        crf_export_dir, "--backend", "onnx", "--max_texts", "4", "--max_text_length", "80"
    )
    yield url
    stop(process)


@pytest.fixture(scope="module")
def tagger(crf_export_dir):
    return Tagger.from_pretrained(crf_export_dir, backend="onnx")


def tag_json(tagger, text):
    """`lit_ner tag`'s JSON for one text."""
    return {"text": text, "entities": to_json(tagger(text))}


def test_a_text_and_a_list_of_texts_are_answered_as_lit_ner_tag_answers(server, tagger):
    text = "Empire State Building = ESB . Pretty bad storm"
    status, answer = post(server, {"text": text})
    assert status == 200 and answer == json.loads(json.dumps(tag_json(tagger, text)))
    assert len(answer["entities"]) > 2
    texts = ["new york", "", "😀 visit @paulwalk"]
    status, answer = post(server, {"texts": texts, "aggregation_strategy": "first"})
    assert status == 200
    assert answer == json.loads(json.dumps([tag_json(tagger, t) for t in texts]))


def test_concurrent_clients_each_get_their_own_answer(server, tagger):
    texts = [f"{word} went to new york with {word}" for word in "ann bob cy dee eve fay gus hal".split()] * 4
    answers = [None] * len(texts)

    def ask(i):
        answers[i] = post(server, {"text": texts[i]})

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in answers] == [200] * len(texts)
    assert [answer for _, answer in answers] == [json.loads(json.dumps(tag_json(tagger, t))) for t in texts]


BAD_REQUESTS = [
    (b"{not json", 400, "the body is not JSON"),
    (b"\xff\xfe", 400, "the body is not JSON"),
    ('["a text"]', 422, "the body must be a JSON object"),
    ({}, 422, 'give one of "text"'),
    ({"text": "a", "texts": ["b"]}, 422, 'give one of "text"'),
    ({"text": 3}, 422, '"text" must hold strings only'),
    ({"texts": "a text"}, 422, '"texts" must be a list of strings'),
    ({"texts": ["a", None]}, 422, '"texts" must hold strings only'),
    ({"txt": "a"}, 422, "unknown field(s) ['txt']"),
    ({"texts": ["a"] * 5}, 413, "5 texts in one request; the limit is 4"),
    ({"text": "x" * 81}, 413, "the text has 81 characters; the limit is 80"),
    ({"texts": ["a", "x" * 90]}, 413, "text 1 has 90 characters; the limit is 80"),
    ({"text": "a", "aggregation_strategy": "mean"}, 422, "aggregation_strategy must be one of"),
    ({"text": "a", "aggregation_strategy": ["first"]}, 422, "aggregation_strategy must be one of"),
    (b"[" * 2900 + b"]" * 2900, 400, "nested too deeply"),  # within the size limit, deeper than json goes
    ('{"texts": ' + "[" * 500 + "]" * 500 + "}", 422, '"texts" must hold strings only'),
]


@pytest.mark.parametrize("body, status, message", BAD_REQUESTS, ids=[m[:24] for _, _, m in BAD_REQUESTS])
def test_a_bad_request_gets_one_line_and_the_server_keeps_serving(server, body, status, message):
    got, answer = post(server, body)
    assert got == status and list(answer) == ["error"]
    assert message in answer["error"] and "\n" not in answer["error"]
    assert post(server, {"text": "new york"})[0] == 200


def test_health_and_the_page_are_served(server):
    with urllib.request.urlopen(f"{server}/health") as response:
        assert response.read() == b"ok"
    with urllib.request.urlopen(server) as response:
        page = response.read().decode()
    assert response.headers["content-type"].startswith("text/html")
    assert 'fetch("/predict"' in page
    # Self-contained: nothing is fetched from elsewhere.
    assert "http://" not in page and "https://" not in page and "<link" not in page


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (.ci/run installs Debian's)")
@pytest.mark.skipif(
    importlib.util.find_spec("playwright") is None,
    reason="the browser extra is opt-in: make install EXTRAS=...,browser",
)
def test_the_page_highlights_the_entities_in_a_headless_browser(server, tagger):
    from playwright.sync_api import sync_playwright

    text = "Empire State Building in New York , says 😀 @paulwalk about Zürich"
    expected = [(e["entity_group"], e["start"], e["end"]) for e in tagger(text)]
    assert len(expected) >= 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        try:
            page = browser.new_page()
            page.goto(server)
            page.fill("#text", text)
            page.click("#tag")
            page.wait_for_selector(f"#status:has-text('{len(expected)} entities')", timeout=30_000)
            marks = page.eval_on_selector_all(
                "mark.entity",
                "marks => marks.map(m => [m.dataset.type, +m.dataset.start, +m.dataset.end,"
                " m.querySelector('.words').textContent, m.querySelector('.label').textContent,"
                " getComputedStyle(m).backgroundColor])",
            )
            page.screenshot(path=str(ARTIFACTS / "serve_page.png"), full_page=True)
        finally:
            browser.close()
    assert [tuple(mark[:3]) for mark in marks] == expected
    assert [mark[3] for mark in marks] == [text[start:end] for _, start, end in expected]
    assert [mark[4] for mark in marks] == [type_ for type_, _, _ in expected]
    # Highlighted: a colour for each type, and a different one for each of WNUT-17's types.
    colours = {mark[4]: mark[5] for mark in marks}
    assert {mark[5] for mark in marks} == set(colours.values()) and len(set(colours.values())) == len(colours)
    assert all(colour not in ("rgba(0, 0, 0, 0)", "transparent") for colour in colours.values())
    assert (ARTIFACTS / "serve_page.png").stat().st_size > 10_000


def test_sigterm_answers_the_request_in_flight_then_stops_cleanly(export_dir):
    process, url = start_server(export_dir)
    texts = ["the cat sat on a mat in new york today " * 12] * 64
    answer = {}

    def ask():
        answer["reply"] = post(url, {"texts": texts}, timeout=120)

    thread = threading.Thread(target=ask)
    thread.start()
    time.sleep(0.3)  # the request is in flight
    process.send_signal(signal.SIGTERM)
    thread.join()
    assert process.wait(timeout=90) == 0
    status, results = answer["reply"]
    assert status == 200 and len(results) == 64
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/health", timeout=2)
