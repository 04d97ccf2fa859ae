"""Tests for the stand-in Ollama server (tests/ollama_stub.py), over real HTTP."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ollama_stub import OllamaStub, embed_text, free_port  # noqa: E402

STUB_FILE = Path(__file__).resolve().parent / "ollama_stub.py"


# ---- small urllib client --------------------------------------------------

class Resp:
    def __init__(self, status: int, headers, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self):
        return json.loads(self.body)

    def ndjson(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


def call(url: str, method: str = "GET", body=None, raw: bytes | None = None,
         timeout: float = 5.0) -> Resp:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Resp(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, e.headers, e.read())


def cos(a, b) -> float:
    return sum(x * y for x, y in zip(a, b))


@pytest.fixture()
def stub():
    with OllamaStub(models={"embeddinggemma": 768, "llama3.2": None}) as s:
        yield s


# ---- basic endpoints ---------------------------------------------------------

def test_url_and_root(stub):
    assert stub.url == f"http://127.0.0.1:{stub.port}"
    r = call(stub.url + "/")
    assert r.status == 200 and r.text == "Ollama is running"


def test_version(stub):
    r = call(stub.url + "/api/version")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert isinstance(r.json()["version"], str)


def test_tags(stub):
    r = call(stub.url + "/api/tags")
    assert r.status == 200
    models = r.json()["models"]
    assert {m["name"] for m in models} == {"embeddinggemma:latest", "llama3.2:latest"}
    for m in models:
        assert m["model"] == m["name"]
        assert len(m["digest"]) == 64 and isinstance(m["size"], int)
        assert {"format", "family", "parameter_size", "quantization_level"} <= set(m["details"])
        assert m["modified_at"]


def test_unknown_path_and_wrong_method(stub):
    r = call(stub.url + "/api/nope")
    assert (r.status, r.text) == (404, "404 page not found")
    r = call(stub.url + "/api/embed")  # GET on a POST route
    assert (r.status, r.text) == (405, "405 method not allowed")


# ---- embeddings -------------------------------------------------------------

def test_embed_single(stub):
    r = call(stub.url + "/api/embed", "POST", {"model": "embeddinggemma", "input": "hello world"})
    assert r.status == 200
    data = r.json()
    assert data["model"] == "embeddinggemma"
    assert len(data["embeddings"]) == 1 and len(data["embeddings"][0]) == 768
    assert math.isclose(math.sqrt(sum(v * v for v in data["embeddings"][0])), 1.0, rel_tol=1e-9)
    for key in ("total_duration", "load_duration", "prompt_eval_count"):
        assert isinstance(data[key], int) and data[key] > 0


def test_embed_batch_and_semantics(stub):
    texts = ["fix the login bug in the auth module",
             "login bug in auth module needs a fix",
             "bake sourdough bread with a long cold proof"]
    r = call(stub.url + "/api/embed", "POST",
             {"model": "embeddinggemma:latest", "input": texts, "truncate": True,
              "keep_alive": "5m", "options": {"temperature": 0}})
    assert r.status == 200
    a, b, c = r.json()["embeddings"]
    for v in (a, b, c):
        assert math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-9)
    assert cos(a, b) > 0.6
    assert abs(cos(a, c)) < 0.2
    # Same input -> same vector, and equal to the helper used by tests.
    assert a == embed_text(texts[0], 768)


def test_embed_tag_and_case_equivalence(stub):
    r1 = call(stub.url + "/api/embed", "POST", {"model": "embeddinggemma", "input": "x y"})
    r2 = call(stub.url + "/api/embed", "POST", {"model": "EmbeddingGemma:latest", "input": "x y"})
    assert r1.json()["embeddings"] == r2.json()["embeddings"]
    assert r2.json()["model"] == "EmbeddingGemma:latest"  # echoed as sent


def test_embed_dimensions(stub):
    r = call(stub.url + "/api/embed", "POST",
             {"model": "embeddinggemma", "input": "abc", "dimensions": 128})
    v = r.json()["embeddings"][0]
    assert len(v) == 128 and math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-9)


def test_embed_empty_input(stub):
    for inp in ("", [], None):
        r = call(stub.url + "/api/embed", "POST", {"model": "embeddinggemma", "input": inp})
        assert r.status == 200 and r.json() == {"model": "embeddinggemma", "embeddings": []}


def test_embed_deterministic_across_processes():
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); "
            "from ollama_stub import embed_text; "
            "print(json.dumps(embed_text('cross process check', 32)))")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code, str(STUB_FILE.parent)],
                         capture_output=True, text=True, env=env, check=True).stdout
    assert json.loads(out) == embed_text("cross process check", 32)


def test_embed_errors(stub):
    url = stub.url + "/api/embed"
    r = call(url, "POST", {"model": "nomic-embed-text", "input": "x"})
    assert r.status == 404
    assert r.json() == {"error": 'model "nomic-embed-text" not found, try pulling it first'}
    r = call(url, "POST", {"input": "x"})
    assert (r.status, r.json()) == (404, {"error": "model '' not found"})
    r = call(url, "POST", {"model": "embeddinggemma", "input": [1, 2]})
    assert (r.status, r.json()) == (400, {"error": "invalid input type"})
    r = call(url, "POST", raw=b"")
    assert (r.status, r.json()) == (400, {"error": "missing request body"})
    r = call(url, "POST", raw=b"not json")
    assert r.status == 400 and r.json()["error"].startswith("invalid character 'n'")
    r = call(url, "POST", {"model": 5, "input": "x"})
    assert r.status == 400
    assert r.json()["error"] == ("json: cannot unmarshal number into Go struct field "
                                 "EmbedRequest.model of type string")
    r = call(url, "POST", {"model": "embeddinggemma", "input": "x", "keep_alive": "soon"})
    assert (r.status, r.json()) == (400, {"error": 'time: invalid duration "soon"'})


def test_chat_model_can_embed(stub):
    r = call(stub.url + "/api/embed", "POST", {"model": "llama3.2", "input": "x"})
    assert r.status == 200 and len(r.json()["embeddings"][0]) == 3072


def test_models_can_be_added_and_removed(stub):
    stub.remove_model("embeddinggemma")
    r = call(stub.url + "/api/embed", "POST", {"model": "embeddinggemma", "input": "x"})
    assert r.status == 404
    stub.add_model("all-minilm", 384)
    r = call(stub.url + "/api/embed", "POST", {"model": "all-minilm:latest", "input": "x"})
    assert len(r.json()["embeddings"][0]) == 384


# ---- chat ---------------------------------------------------------------------

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "plan my day"}]}


def assert_valid_plan(content: str) -> None:
    plan = json.loads(content)
    assert len(plan["steps"]) == 3
    for i, step in enumerate(plan["steps"], start=1):
        assert isinstance(step["title"], str) and isinstance(step["description"], str)
        assert isinstance(step["estimate_minutes"], int)
        assert step["priority"] in range(5)
        assert all(isinstance(d, int) and 1 <= d < i for d in step["depends_on"])


def test_chat_non_stream(stub):
    r = call(stub.url + "/api/chat", "POST", {**CHAT, "stream": False, "format": "json"})
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("application/json")
    data = r.json()
    assert data["model"] == "llama3.2"
    assert data["message"]["role"] == "assistant"
    assert data["done"] is True and data["done_reason"] == "stop"
    assert data["total_duration"] > 0 and data["eval_count"] > 0
    assert data["created_at"].endswith("Z")
    assert_valid_plan(data["message"]["content"])


@pytest.mark.parametrize("stream_field", [{}, {"stream": True}, {"stream": None}])
def test_chat_streams_by_default(stub, stream_field):
    r = call(stub.url + "/api/chat", "POST", {**CHAT, **stream_field})
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/x-ndjson"
    assert r.headers["Transfer-Encoding"] == "chunked"
    lines = r.ndjson()
    assert len(lines) > 2
    assert all(line["done"] is False for line in lines[:-1])
    final = lines[-1]
    assert final["done"] is True and final["done_reason"] == "stop"
    for key in ("total_duration", "load_duration", "prompt_eval_count", "eval_count"):
        assert final[key] > 0
    content = "".join(line["message"]["content"] for line in lines)
    assert_valid_plan(content)


def test_chat_reply_string_and_callable(stub):
    stub.chat_reply = "hello there, general"
    lines = call(stub.url + "/api/chat", "POST", CHAT).ndjson()
    assert "".join(x["message"]["content"] for x in lines) == "hello there, general"

    seen = []
    stub.chat_reply = lambda body: seen.append(body) or body["messages"][-1]["content"].upper()
    r = call(stub.url + "/api/chat", "POST", {**CHAT, "stream": False})
    assert r.json()["message"]["content"] == "PLAN MY DAY"
    assert seen[0]["model"] == "llama3.2"

    stub.chat_reply = lambda body: 1 / 0
    r = call(stub.url + "/api/chat", "POST", {**CHAT, "stream": False})
    assert r.status == 500 and "error" in r.json()


def test_chat_errors(stub):
    url = stub.url + "/api/chat"
    r = call(url, "POST", {**CHAT, "model": "mistral"})
    assert (r.status, r.json()) == (404, {"error": "model 'mistral' not found"})
    r = call(url, "POST", {"messages": CHAT["messages"]})
    assert (r.status, r.json()) == (400, {"error": "model is required"})
    r = call(url, "POST", {**CHAT, "model": "embeddinggemma"})
    assert (r.status, r.json()) == (400, {"error": '"embeddinggemma" does not support chat'})
    r = call(url, "POST", {**CHAT, "stream": "yes"})
    assert r.status == 400
    assert r.json()["error"] == ("json: cannot unmarshal string into Go struct field "
                                 "ChatRequest.stream of type bool")
    r = call(url, "POST", {"model": "llama3.2", "messages": "hi"})
    assert r.status == 400 and "ChatRequest.messages" in r.json()["error"]
    r = call(url, "POST", raw=b"")
    assert (r.status, r.json()) == (400, {"error": "missing request body"})


def test_chat_load_and_unload(stub):
    r = call(stub.url + "/api/chat", "POST", {"model": "llama3.2", "messages": []})
    assert r.status == 200 and r.json()["done_reason"] == "load"
    r = call(stub.url + "/api/chat", "POST",
             {"model": "llama3.2", "messages": [], "keep_alive": 0})
    assert r.json()["done_reason"] == "unload"


def test_generate(stub):
    stub.chat_reply = "one two three"
    r = call(stub.url + "/api/generate", "POST",
             {"model": "llama3.2", "prompt": "count", "stream": False})
    assert r.status == 200 and r.json()["response"] == "one two three"
    lines = call(stub.url + "/api/generate", "POST",
                 {"model": "llama3.2", "prompt": "count"}).ndjson()
    assert "".join(x["response"] for x in lines) == "one two three"
    assert lines[-1]["done"] is True
    r = call(stub.url + "/api/generate", "POST", {"model": "nope", "prompt": "x"})
    assert (r.status, r.json()) == (404, {"error": "model 'nope' not found"})


# ---- recording ----------------------------------------------------------------

def test_recording_and_counts(stub):
    call(stub.url + "/api/embed", "POST", {"model": "embeddinggemma", "input": "token sk-123"})
    call(stub.url + "/api/tags")
    call(stub.url + "/api/tags")
    reqs = stub.requests
    assert [r["path"] for r in reqs] == ["/api/embed", "/api/tags", "/api/tags"]
    embed = stub.requests_to("/api/embed")[0]
    assert embed["method"] == "POST"
    assert embed["json"] == {"model": "embeddinggemma", "input": "token sk-123"}
    assert "sk-123" in embed["body_text"]
    assert embed["headers"]["Content-Type"] == "application/json"
    assert stub.counts == {"/api/embed": 1, "/api/tags": 2}
    stub.reset()
    assert stub.requests == [] and stub.counts == {}


# ---- faults -------------------------------------------------------------------

def test_fault_validation(stub):
    for bad in ("explode", "slow:", "slow:-1", "slow:abc", 3):
        with pytest.raises(ValueError):
            stub.fault = bad
    stub.fault = "slow:0.5"
    assert stub.fault == "slow:0.5"
    stub.fault = None


def test_fault_hang_then_prompt_stop():
    stub = OllamaStub().start()
    stub.fault = "hang"
    t0 = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        call(stub.url + "/api/embed", "POST",
             {"model": "embeddinggemma", "input": "x"}, timeout=0.5)
    assert time.monotonic() - t0 < 3
    assert stub.counts.get("/api/embed") == 1  # the request was read
    t1 = time.monotonic()
    stub.stop()
    assert time.monotonic() - t1 < 2.5


def test_stop_while_request_is_hanging():
    import threading
    stub = OllamaStub().start()
    stub.fault = "hang"
    outcome = []

    def client():
        try:
            call(stub.url + "/api/tags", timeout=10)
            outcome.append("answered")
        except Exception as exc:  # connection closed by stop()
            outcome.append(type(exc).__name__)

    t = threading.Thread(target=client)
    t.start()
    deadline = time.monotonic() + 3
    while not stub.counts and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    stub.stop()
    assert time.monotonic() - t0 < 2.5
    t.join(5)
    assert outcome and outcome[0] != "answered"


def test_fault_error500(stub):
    stub.fault = "error500"
    r = call(stub.url + "/api/embed", "POST", {"model": "embeddinggemma", "input": "x"})
    assert r.status == 500 and isinstance(r.json()["error"], str)
    r = call(stub.url + "/api/chat", "POST", CHAT)
    assert r.status == 500 and "error" in r.json()


def test_fault_wrong_dim(stub):
    stub.fault = "wrong_dim"
    r = call(stub.url + "/api/embed", "POST", {"model": "embeddinggemma", "input": ["a", "b"]})
    assert r.status == 200
    assert all(len(v) != 768 for v in r.json()["embeddings"])


def test_fault_non_json(stub):
    stub.fault = "non_json"
    r = call(stub.url + "/api/embed", "POST", {"model": "embeddinggemma", "input": "x"})
    assert r.status == 200
    with pytest.raises(ValueError):
        r.json()


def test_fault_slow(stub):
    stub.fault = "slow:0.4"
    t0 = time.monotonic()
    r = call(stub.url + "/api/embed", "POST", {"model": "embeddinggemma", "input": "x"})
    assert time.monotonic() - t0 >= 0.4
    assert r.status == 200 and len(r.json()["embeddings"][0]) == 768
    stub.fault = None
    t0 = time.monotonic()
    call(stub.url + "/api/version")
    assert time.monotonic() - t0 < 0.4


def test_connection_refused_after_stop_and_free_port():
    stub = OllamaStub().start()
    url = stub.url
    stub.stop()
    with pytest.raises(urllib.error.URLError) as info:
        call(url + "/api/version", timeout=2)
    assert isinstance(info.value.reason, ConnectionRefusedError)
    with pytest.raises(urllib.error.URLError) as info:
        call(f"http://127.0.0.1:{free_port()}/api/version", timeout=2)
    assert isinstance(info.value.reason, ConnectionRefusedError)


def test_quiet(capfd):
    with OllamaStub() as stub:
        call(stub.url + "/api/tags")
        call(stub.url + "/api/nope")
        call(stub.url + "/api/embed", "POST", raw=b"{bad")
        stub.fault = "hang"
        with pytest.raises(Exception):
            call(stub.url + "/api/tags", timeout=0.3)
    out, err = capfd.readouterr()
    assert err == "" and out == ""


def test_command_line_entry():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(STUB_FILE), "--port", str(port),
         "--model", "embeddinggemma:768", "--model", "llama3.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == f"OllamaStub listening on http://127.0.0.1:{port}"
        r = call(f"http://127.0.0.1:{port}/api/embed", "POST",
                 {"model": "embeddinggemma", "input": "hi"})
        assert len(r.json()["embeddings"][0]) == 768
        names = {m["name"] for m in call(f"http://127.0.0.1:{port}/api/tags").json()["models"]}
        assert names == {"embeddinggemma:latest", "llama3.2:latest"}
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert err == ""
