"""A stand-in Ollama server for DevStream's tests.

It is a real HTTP server on 127.0.0.1 (standard library only) that speaks the
subset of Ollama's native API that DevStream uses, so tests exercise our real
HTTP code path instead of mocks.

Usage::

    with OllamaStub(models={"embeddinggemma": 768, "llama3.2": None}) as stub:
        stub.url                      # "http://127.0.0.1:PORT"
        stub.fault = "hang"           # see FAULTS below
        stub.chat_reply = "hi"        # or a callable(body) -> str
        stub.requests                 # every request seen, oldest first
        stub.counts["/api/embed"]     # requests per path

Manual use::

    python tests/ollama_stub.py --port 11434 --model embeddinggemma:768 --model llama3.2

Ollama facts this file relies on (looked up in the ollama/ollama repository:
server/routes.go, internal/modelref/modelref.go, api/types.go, docs/api.md,
docs/api/streaming.mdx, docs/api/errors.mdx):

* Routes (routes.go, GenerateRoutes): GET/HEAD ``/`` answers the plain text
  ``Ollama is running``; GET/HEAD ``/api/version`` -> ``{"version": ...}``;
  GET/HEAD ``/api/tags``; POST ``/api/show``; GET ``/api/ps``;
  POST ``/api/generate``, ``/api/chat``, ``/api/embed``. The router is gin with
  ``HandleMethodNotAllowed = true``; gin's stock plain-text replies
  ``404 page not found`` / ``405 method not allowed`` are assumed for
  unknown paths and wrong methods (that is gin's behaviour, not read here).
* Body decoding (every POST handler): an empty body gives
  400 ``{"error":"missing request body"}``; any other decode error gives
  400 ``{"error": <Go encoding/json message>}``. The Go messages
  ("invalid character 'x' looking for beginning of value", "json: cannot
  unmarshal string into Go struct field ChatRequest.stream of type bool", ...)
  are imitated on a best-effort basis. Go's decoder stops after the first JSON
  value, so trailing bytes are ignored, and object keys match fields
  case-insensitively; both are imitated.
* Model names (docs/api.md "Model names"): ``model:tag``; a missing tag means
  ``latest``. Lookup of local models is case-insensitive (getExistingName uses
  strings.EqualFold). ``/api/tags`` lists ``name`` and ``model`` as the
  shortest display form, e.g. ``embeddinggemma:latest``.
* ``/api/embed`` (EmbedHandler): an empty ``model`` fails model-reference
  parsing (modelref.ErrModelRequired) and falls through writeModelRefParseError
  to 404 ``model '' not found``. ``input`` may be a string (empty string means
  no input) or a list of strings; anything else gives
  400 ``invalid input type``. A model that is not pulled reaches
  handleScheduleError (os.ErrNotExist) and gives
  404 ``model "x" not found, try pulling it first`` (Go ``%q`` of the model as
  sent). No input at all gives 200 with ``"embeddings": []``. Each vector is
  L2-normalised; ``dimensions`` (0 < d < len) truncates and renormalises
  (the stub hashes directly into d dimensions instead, see _h_embed).
  The reply is ``{"model", "embeddings", "total_duration", "load_duration",
  "prompt_eval_count"}`` (docs/api.md example), ``model`` echoed as sent.
  No capability check is made for embed, so chat models embed too.
* ``/api/chat`` (ChatHandler): an empty ``model`` gives
  400 ``model is required``; a model that is not pulled gives
  404 ``model 'x' not found`` (note: single quotes, no pull hint - different
  from embed); a model without the completion capability (an embedding
  model) gives 400 ``"x" does not support chat``. Empty ``messages`` with
  ``keep_alive`` 0 answers ``done_reason: "unload"``, otherwise empty
  ``messages`` answers ``done_reason: "load"``; both as one JSON object.
* Streaming is the DEFAULT (api/types.go: ChatRequest.Stream "true by
  default"; docs/api/streaming.mdx "Certain API endpoints stream responses by
  default"). Only ``"stream": false`` gives a single ``application/json;
  charset=utf-8`` object whose ``message.content`` is the whole reply.
  Otherwise (stream absent, null or true) the body is ``application/x-ndjson``:
  one JSON object per line, each ``{"model","created_at","message":{"role":
  "assistant","content":<piece>},"done":false}``, then a final object with
  ``"done":true``, ``"done_reason":"stop"`` and the metrics
  ``total_duration, load_duration, prompt_eval_count, prompt_eval_duration,
  eval_count, eval_duration`` (all durations in nanoseconds, docs/api.md
  "Durations"). Zero-valued metrics are omitted (``omitempty``).
* ``/api/generate`` (GenerateHandler): same shapes with ``response`` instead
  of ``message``; not pulled -> 404 ``model 'x' not found``; empty model ->
  404 ``model '' not found``; embedding model -> 400
  ``"x" does not support generate``; empty prompt -> ``done_reason: "load"``.
* ``/api/show`` (ShowHandler): empty model -> 400 ``model is required``;
  not pulled -> 404 ``model 'x' not found``.
* Errors (docs/api/errors.mdx): JSON ``{"error": "..."}``; the documented
  example message "the model failed to generate a response" is what the
  ``error500`` fault sends.
* History: older releases phrased "not found" differently (2023, PR #718:
  ``model 'x' not found, try pulling it first`` on generate). Clients should
  key on the 404 status, not on the exact text.

Not emulated: context-length limits / ``truncate: false`` errors, tools,
thinking, images, ``/api/pull`` and the other model-management routes,
the legacy ``/api/embeddings`` route.
"""

from __future__ import annotations

import argparse
import collections
import datetime as _dt
import hashlib
import json
import math
import re
import signal
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

__all__ = [
    "OllamaStub",
    "free_port",
    "embed_text",
    "canonical_model_name",
    "default_plan_reply",
    "FAULTS",
]

DEFAULT_VERSION = "0.12.6"
DEFAULT_MODELS: dict[str, int | None] = {"embeddinggemma": 768, "llama3.2": None}
# Dimension used when a chat model (mapped to None) is asked for embeddings.
# Real Ollama embeds with any model; 3072 is llama3.2:3b's embedding length.
CHAT_MODEL_EMBED_DIM = 3072
FAULTS = ("hang", "error500", "wrong_dim", "non_json", "slow:SECONDS")
ERROR500_MESSAGE = "the model failed to generate a response"
NON_JSON_BODY = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>\n"

_JSON_TYPE = "application/json; charset=utf-8"
_NDJSON_TYPE = "application/x-ndjson"
_TEXT_TYPE = "text/plain; charset=utf-8"


# --------------------------------------------------------------------------
# Helpers usable without a server
# --------------------------------------------------------------------------

def free_port() -> int:
    """Return a 127.0.0.1 port with nothing listening on it (for "connection
    refused" tests). The port is briefly bound and released, so in theory
    another process could grab it; in practice that race is negligible."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def canonical_model_name(name: str) -> str:
    """Normalise a model name the way Ollama matches local models: case-
    insensitive, default registry/namespace dropped, missing tag = latest."""
    n = name.strip().lower()
    n = n.split("@", 1)[0]  # ignore a "@sha256:..." digest suffix
    if n.startswith("registry.ollama.ai/"):
        n = n[len("registry.ollama.ai/"):]
    if n.startswith("library/"):
        n = n[len("library/"):]
    if ":" not in n.rsplit("/", 1)[-1]:
        n += ":latest"
    return n


def _display_name(name: str) -> str:
    """Shortest display form as in /api/tags: keep spelling, add ':latest'."""
    n = name.strip()
    for prefix in ("registry.ollama.ai/", "library/"):
        if n.lower().startswith(prefix):
            n = n[len(prefix):]
    if ":" not in n.rsplit("/", 1)[-1]:
        n += ":latest"
    return n


_WORD_RE = re.compile(r"[^\W_]+")  # unicode letters/digits; "_" splits words


# Very common words get little weight so that unrelated sentences sharing
# only "the"/"for" stay far apart (a crude stand-in for IDF).
_STOPWORDS = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the "
    "this to was were will with".split())


def _features(text: str) -> list[tuple[str, float]]:
    feats: list[tuple[str, float]] = []
    for word in _WORD_RE.findall(text.lower()):
        if word in _STOPWORDS:
            feats.append(("w:" + word, 0.15))
            continue
        feats.append(("w:" + word, 1.0))
        # Character trigrams make near-identical words ("bug"/"bugs") similar.
        padded = f"<{word}>"
        for i in range(len(padded) - 2):
            feats.append(("t:" + padded[i:i + 3], 0.35))
    if not feats:  # empty or punctuation-only text: still a distinct vector
        feats.append(("raw:" + text, 1.0))
    return feats


def embed_text(text: str, dim: int) -> list[float]:
    """Deterministic, L2-normalised "embedding" by signed feature hashing.

    Texts that share words land close together, unrelated texts are nearly
    orthogonal. Uses blake2b (not Python's salted hash()), so the result is
    identical across processes and runs."""
    if dim <= 0:
        raise ValueError("dim must be positive")
    vec = [0.0] * dim
    for feat, weight in _features(text):
        h = int.from_bytes(
            hashlib.blake2b(feat.encode("utf-8"), digest_size=8).digest(), "big")
        sign = 1.0 if (h >> 40) & 1 else -1.0
        vec[h % dim] += sign * weight
    return _normalise(vec)


def _normalise(vec: list[float]) -> list[float]:
    # Same rule as Ollama's normalize(): divide by max(norm, 1e-12).
    norm = math.sqrt(sum(v * v for v in vec))
    scale = 1.0 / max(norm, 1e-12)
    return [v * scale for v in vec]


def default_plan_reply(body: dict | None = None) -> str:
    """The default chat reply: a JSON plan string with 3 valid steps."""
    plan = {
        "steps": [
            {
                "title": "Outline the approach",
                "description": "List the parts involved and decide the order of work.",
                "estimate_minutes": 15,
                "priority": 1,
                "depends_on": [],
            },
            {
                "title": "Implement the core change",
                "description": "Make the main code change in small, reviewable commits.",
                "estimate_minutes": 45,
                "priority": 2,
                "depends_on": [1],
            },
            {
                "title": "Test and document",
                "description": "Add tests for the new behaviour and update the notes.",
                "estimate_minutes": 30,
                "priority": 2,
                "depends_on": [2],
            },
        ]
    }
    return json.dumps(plan)


def _go_quote(s: str) -> str:
    """Approximation of Go's %q for ordinary strings."""
    return json.dumps(s, ensure_ascii=False)


def _now_rfc3339() -> str:
    """time.Now().UTC() as Go marshals it (RFC 3339, trailing zeros trimmed)."""
    now = _dt.datetime.now(_dt.timezone.utc)
    frac = f"{now.microsecond:06d}".rstrip("0")
    return now.strftime("%Y-%m-%dT%H:%M:%S") + (("." + frac) if frac else "") + "Z"


def _count_tokens(text: str) -> int:
    return max(1, len(text.split()))


def _split_stream_pieces(text: str) -> list[str]:
    """Split a reply into token-like pieces ("word" + following whitespace)."""
    pieces = re.findall(r"\S+\s*|\s+", text)
    return pieces or [""]


# --------------------------------------------------------------------------
# Imitation of Go's encoding/json errors for request bodies
# --------------------------------------------------------------------------

class _BadRequest(Exception):
    """A 400 with an Ollama-style {"error": message} body."""


def _go_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _go_dynamic_type(value: Any) -> str:
    # reflect.TypeOf(v) for values decoded into `any`
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    return type(value).__name__


def _go_syntax_error(text: str, err: json.JSONDecodeError) -> str:
    """Map a Python JSON error to the message Go's decoder would give."""
    if err.pos >= len(text.rstrip()) or err.msg.startswith("Unterminated string"):
        return "unexpected EOF"
    if err.msg.startswith("Invalid control character"):
        return f"invalid character {text[err.pos]!r} in string literal"
    where = {
        "Expecting property name enclosed in double quotes":
            "looking for beginning of object key string",
        "Expecting ':' delimiter": "after object key",
        "Expecting ',' delimiter": "after object key:value pair",
    }.get(err.msg, "looking for beginning of value")
    return f"invalid character {text[err.pos]!r} {where}"


_GO_DURATION_RE = re.compile(
    r"^[-+]?(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+)$")


def _check_field(struct: str, key: str, kind: str, value: Any) -> None:
    if value is None:
        return  # JSON null leaves the Go zero value, no error

    def fail(go_type: str, shown_kind: str | None = None) -> None:
        raise _BadRequest(
            f"json: cannot unmarshal {shown_kind or _go_kind(value)} into Go struct "
            f"field {struct}.{key} of type {go_type}")

    if kind == "string" and not isinstance(value, str):
        fail("string")
    elif kind == "bool" and not isinstance(value, bool):
        fail("bool")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail("int")
        if isinstance(value, float):
            fail("int", f"number {json.dumps(value)}")
    elif kind == "map" and not isinstance(value, dict):
        fail("map[string]interface {}")
    elif kind == "duration":
        # api.Duration.UnmarshalJSON: numbers are seconds, strings go through
        # time.ParseDuration, anything else is rejected.
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            raise _BadRequest(f"Unsupported type: '{_go_dynamic_type(value)}'")
        if isinstance(value, str) and not _GO_DURATION_RE.match(value):
            raise _BadRequest(f"time: invalid duration {_go_quote(value)}")
    elif kind == "messages":
        if not isinstance(value, list):
            fail("[]api.Message")
        for msg in value:
            if msg is None:
                continue
            if not isinstance(msg, dict):
                raise _BadRequest(
                    f"json: cannot unmarshal {_go_kind(msg)} into Go struct field "
                    f"{struct}.messages of type api.Message")
            for mkey in ("role", "content"):
                mval = msg.get(mkey)
                if mval is not None and not isinstance(mval, str):
                    raise _BadRequest(
                        f"json: cannot unmarshal {_go_kind(mval)} into Go struct field "
                        f"Message.messages.{mkey} of type string")


def _decode_request(raw: bytes, struct: str, fields: dict[str, str]) -> dict:
    """Decode a body like gin's ShouldBindJSON into a known Go struct."""
    text = raw.decode("utf-8", errors="replace")
    stripped = text.lstrip()
    if not stripped:
        raise _BadRequest("missing request body")
    try:
        value, _end = json.JSONDecoder().raw_decode(stripped)  # trailing data ignored
    except json.JSONDecodeError as err:
        raise _BadRequest(_go_syntax_error(stripped, err)) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _BadRequest(
            f"json: cannot unmarshal {_go_kind(value)} into Go value of type api.{struct}")
    out: dict[str, Any] = {}
    for key, val in value.items():
        field = key if key in fields else key.lower()
        if field not in fields:
            continue  # unknown keys are ignored by encoding/json
        if field != key and field in value:
            continue  # an exact-case key wins over a case-folded one
        _check_field(struct, field, fields[field], val)
        out[field] = val
    return out


# --------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------

def _parse_fault(value: Any) -> tuple[str, float] | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value in ("hang", "error500", "wrong_dim", "non_json"):
            return (value, 0.0)
        if value.startswith("slow:"):
            try:
                secs = float(value[5:])
            except ValueError:
                secs = -1.0
            if secs >= 0 and math.isfinite(secs):
                return ("slow", secs)
    raise ValueError(f"unknown fault {value!r}; expected None or one of {FAULTS}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for hanging handlers
    stub: "OllamaStub"

    def handle_error(self, request, client_address):  # noqa: D401
        # Quiet: clients hanging up mid-request are expected in fault tests.
        trace = traceback.format_exc()
        with self.stub._lock:
            self.stub._errors.append(trace)


class OllamaStub:
    """An Ollama-compatible HTTP server on 127.0.0.1 for tests.

    Args:
        models: mapping of model name -> embedding dimension (int) for
            embedding models, or None for chat/completion models.
            Default: {"embeddinggemma": 768, "llama3.2": None}.
        port: TCP port; 0 (default) picks a free ephemeral port.
        version: string returned by /api/version.
        chat_reply: initial value of the ``chat_reply`` attribute.
        tls: (certificate file, key file) to serve https instead of http.

    Attributes (all may be changed while the server runs):
        url: "http://127.0.0.1:PORT" (after start()).
        port: the bound port (after start()).
        fault: None or one of "hang", "error500", "wrong_dim", "non_json",
            "slow:SECONDS". Assigning anything else raises ValueError.
        chat_reply: None (default JSON plan), a string, or a callable taking
            the decoded request body (dict) and returning the reply content
            (a str; a dict/list is JSON-encoded). Used by /api/chat and
            /api/generate. If the callable raises, the request gets a 500.
        requests: snapshot list of recorded requests, each a dict
            {"method", "path", "headers", "body_text", "json"}.
        counts: snapshot dict of request counts per path.
        errors: tracebacks of exceptions swallowed by the server (debug aid).
    """

    def __init__(
        self,
        models: dict[str, int | None] | None = None,
        *,
        port: int = 0,
        version: str = DEFAULT_VERSION,
        chat_reply: str | Callable[[dict], Any] | None = None,
        tls: tuple[str, str] | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.tls = tls  # (certificate file, key file): serve https
        self._requested_port = port
        self.version = version
        self.chat_reply = chat_reply
        self._lock = threading.Lock()
        self._models: dict[str, tuple[str, int | None]] = {}
        self._modified_at = _dt.datetime.now().astimezone().isoformat()
        for name, dim in (DEFAULT_MODELS if models is None else models).items():
            self.add_model(name, dim)
        self._fault: tuple[str | None, tuple[str, float] | None] = (None, None)
        self._requests: list[dict] = []
        self._counts: collections.Counter[str] = collections.Counter()
        self._errors: list[str] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._handler_threads: set[threading.Thread] = set()
        self.port: int | None = None

    # ---- lifecycle -------------------------------------------------------

    def start(self) -> "OllamaStub":
        if self._server is not None:
            return self
        self._stopping = threading.Event()
        server = _Server((self.host, self._requested_port), _Handler)
        server.stub = self
        if self.tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"ollama-stub-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving; returns promptly even if requests are hanging.
        Afterwards the port refuses connections."""
        server = self._server
        if server is None:
            return
        self._stopping.set()  # releases "hang" and "slow:" waits
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
            threads = list(self._handler_threads)
        for conn in conns:  # wake handlers idling on keep-alive connections
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        self._server = None
        self._thread = None

    def __enter__(self) -> "OllamaStub":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("OllamaStub is not started")
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    # ---- configuration ---------------------------------------------------

    @property
    def fault(self) -> str | None:
        return self._fault[0]

    @fault.setter
    def fault(self, value: str | None) -> None:
        self._fault = (value, _parse_fault(value))  # one atomic assignment

    def add_model(self, name: str, dim: int | None) -> None:
        """Make a model "pulled" (dim=None for a chat model)."""
        if dim is not None and (not isinstance(dim, int) or dim <= 0):
            raise ValueError(f"bad dimension for {name!r}: {dim!r}")
        with self._lock:
            self._models[canonical_model_name(name)] = (_display_name(name), dim)

    def remove_model(self, name: str) -> None:
        """Forget a model, as if it had been deleted (`ollama rm`)."""
        with self._lock:
            self._models.pop(canonical_model_name(name), None)

    def lookup_model(self, name: str) -> tuple[str, int | None] | None:
        """(display name, dim) of a pulled model, or None."""
        if not name.strip():
            return None
        with self._lock:
            return self._models.get(canonical_model_name(name))

    # ---- recording -------------------------------------------------------

    @property
    def requests(self) -> list[dict]:
        with self._lock:
            return list(self._requests)

    @property
    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def errors(self) -> list[str]:
        with self._lock:
            return list(self._errors)

    def requests_to(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]

    def reset(self) -> None:
        """Clear recorded requests and counters."""
        with self._lock:
            self._requests.clear()
            self._counts.clear()

    def _record(self, method: str, path: str, headers: dict, body: bytes) -> None:
        text = body.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text) if text.strip() else None
        except ValueError:
            parsed = None
        entry = {"method": method, "path": path, "headers": headers,
                 "body_text": text, "json": parsed}
        with self._lock:
            self._requests.append(entry)
            self._counts[path] += 1

    # ---- replies ---------------------------------------------------------

    def _reply_for(self, body: dict) -> str:
        reply = self.chat_reply
        if reply is None:
            return default_plan_reply(body)
        if callable(reply):
            reply = reply(body)
        if isinstance(reply, (dict, list)):
            return json.dumps(reply)
        return str(reply)


# Routing table: path -> {method: handler method name}
_ROUTES: dict[str, dict[str, str]] = {
    "/": {"GET": "_h_root", "HEAD": "_h_root"},
    "/api/version": {"GET": "_h_version", "HEAD": "_h_version"},
    "/api/tags": {"GET": "_h_tags", "HEAD": "_h_tags"},
    "/api/ps": {"GET": "_h_ps"},
    "/api/show": {"POST": "_h_show"},
    "/api/embed": {"POST": "_h_embed"},
    "/api/chat": {"POST": "_h_chat"},
    "/api/generate": {"POST": "_h_generate"},
}

_EMBED_FIELDS = {"model": "string", "input": "any", "truncate": "bool",
                 "keep_alive": "duration", "options": "map", "dimensions": "int"}
_CHAT_FIELDS = {"model": "string", "messages": "messages", "stream": "bool",
                "format": "any", "options": "map", "keep_alive": "duration",
                "tools": "any", "think": "any", "truncate": "bool"}
_GENERATE_FIELDS = {"model": "string", "prompt": "string", "suffix": "string",
                    "system": "string", "template": "string", "stream": "bool",
                    "raw": "bool", "format": "any", "options": "map",
                    "keep_alive": "duration", "context": "any", "images": "any",
                    "think": "any"}
_SHOW_FIELDS = {"model": "string", "name": "string", "verbose": "bool",
                "system": "string", "options": "map"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streaming, like Go
    server: _Server

    def version_string(self) -> str:  # "Server:" header
        return "OllamaStub"

    # Quiet: never write access logs or errors to stderr.
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def handle(self) -> None:
        stub = self.server.stub
        me = threading.current_thread()
        with stub._lock:
            stub._conns.add(self.connection)
            stub._handler_threads.add(me)
        try:
            super().handle()
        except (ConnectionError, OSError):
            pass  # client went away; nothing to report
        finally:
            with stub._lock:
                stub._conns.discard(self.connection)
                stub._handler_threads.discard(me)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    # ---- plumbing --------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # skip trailers
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        stub = self.server.stub
        body = self._read_body()
        path = urlsplit(self.path).path
        stub._record(method, path, dict(self.headers.items()), body)

        _raw, fault = stub._fault
        if fault is not None:
            kind, secs = fault
            if kind == "hang":
                stub._stopping.wait()  # never answer; released by stop()
                self.close_connection = True
                return
            if kind == "slow" and stub._stopping.wait(secs):
                self.close_connection = True  # stopped while "slow"
                return
            if kind == "error500":
                self._send_json(500, {"error": ERROR500_MESSAGE})
                return
            if kind == "non_json":
                self._send_raw(200, _JSON_TYPE, NON_JSON_BODY)
                return

        route = _ROUTES.get(path)
        if route is None:
            self._send_raw(404, _TEXT_TYPE, b"404 page not found")
            return
        name = route.get(method)
        if name is None:
            self._send_raw(405, _TEXT_TYPE, b"405 method not allowed")
            return
        try:
            getattr(self, name)(body, fault[0] if fault else None)
        except _BadRequest as err:
            self._send_json(400, {"error": str(err)})

    def _send_raw(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        self._send_raw(status, _JSON_TYPE, data)

    def _stream_ndjson(self, objects: list[dict]) -> None:
        # Chunked transfer encoding, one JSON object per line, like Go's
        # streamResponse (c.Stream + "\n" delimiter).
        self.send_response(200)
        self.send_header("Content-Type", _NDJSON_TYPE)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for obj in objects:
            line = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
            self.wfile.write(b"%X\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # ---- endpoints -------------------------------------------------------

    def _h_root(self, body: bytes, fault: str | None) -> None:
        self._send_raw(200, _TEXT_TYPE, b"Ollama is running")

    def _h_version(self, body: bytes, fault: str | None) -> None:
        self._send_json(200, {"version": self.server.stub.version})

    def _model_entry(self, display: str, dim: int | None) -> dict:
        stub = self.server.stub
        digest = hashlib.sha256(display.lower().encode()).hexdigest()
        family = re.match(r"[a-z]+", display.lower().rsplit("/", 1)[-1])
        family_name = family.group(0) if family else "llama"
        size = int(digest[:6], 16) * 1000 + (300_000_000 if dim else 2_000_000_000)
        return {
            "name": display,
            "model": display,
            "modified_at": stub._modified_at,
            "size": size,
            "digest": digest,
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": family_name,
                "families": [family_name],
                "parameter_size": "307.58M" if dim else "3.2B",
                "quantization_level": "BF16" if dim else "Q4_K_M",
            },
        }

    def _h_tags(self, body: bytes, fault: str | None) -> None:
        stub = self.server.stub
        with stub._lock:
            models = list(stub._models.values())
        self._send_json(200, {"models": [self._model_entry(d, dim) for d, dim in models]})

    def _h_ps(self, body: bytes, fault: str | None) -> None:
        self._send_json(200, {"models": []})

    def _h_show(self, body: bytes, fault: str | None) -> None:
        req = _decode_request(body, "ShowRequest", _SHOW_FIELDS)
        name = req.get("model") or req.get("name") or ""
        if not name:
            raise _BadRequest("model is required")
        found = self.server.stub.lookup_model(name)
        if found is None:
            self._send_json(404, {"error": f"model '{name}' not found"})
            return
        display, dim = found
        entry = self._model_entry(display, dim)
        family = entry["details"]["family"]
        info: dict[str, Any] = {"general.architecture": family}
        info[f"{family}.embedding_length"] = dim or CHAT_MODEL_EMBED_DIM
        self._send_json(200, {
            "details": entry["details"],
            "model_info": info,
            "capabilities": ["embedding"] if dim else ["completion"],
            "modified_at": entry["modified_at"],
        })

    def _h_embed(self, body: bytes, fault: str | None) -> None:
        start = time.monotonic_ns()
        stub = self.server.stub
        req = _decode_request(body, "EmbedRequest", _EMBED_FIELDS)
        model = req.get("model") or ""
        if not model.strip():
            self._send_json(404, {"error": f"model '{model}' not found"})
            return
        raw_input = req.get("input")
        if isinstance(raw_input, str):
            inputs = [raw_input] if raw_input else []
        elif isinstance(raw_input, list):
            if not all(isinstance(x, str) for x in raw_input):
                raise _BadRequest("invalid input type")
            inputs = list(raw_input)
        elif raw_input is None:
            inputs = []
        else:
            raise _BadRequest("invalid input type")

        found = stub.lookup_model(model)
        if found is None:
            self._send_json(404, {
                "error": f"model {_go_quote(model)} not found, try pulling it first"})
            return
        dim = found[1] or CHAT_MODEL_EMBED_DIM
        loaded = time.monotonic_ns()
        if not inputs:
            self._send_json(200, {"model": model, "embeddings": []})
            return

        want = req.get("dimensions") or 0
        if 0 < want < dim:
            # Ollama truncates to `dimensions` and renormalises. A prefix of a
            # sparse hashed vector may be all zeros, so hash straight into the
            # smaller size instead: same length and norm, still semantic.
            dim = want
        if fault == "wrong_dim":
            dim = max(1, dim // 2)  # clearly not the expected length
        vectors = [embed_text(text, dim) for text in inputs]
        end = time.monotonic_ns()
        self._send_json(200, {
            "model": model,
            "embeddings": vectors,
            "total_duration": max(1, end - start),
            "load_duration": max(1, loaded - start),
            "prompt_eval_count": sum(_count_tokens(t) for t in inputs),
        })

    def _reply_or_500(self, req: dict) -> str | None:
        try:
            return self.server.stub._reply_for(req)
        except Exception as exc:  # the test's callable failed: report as 500
            self._send_json(500, {"error": f"chat_reply raised {exc!r}"})
            return None

    @staticmethod
    def _metrics(start: int, loaded: int, prompt_tokens: int, pieces: int) -> dict:
        end = time.monotonic_ns()
        total = max(3, end - start)
        load = max(1, min(loaded - start, total // 3))
        return {
            "total_duration": total,
            "load_duration": load,
            "prompt_eval_count": max(1, prompt_tokens),
            "prompt_eval_duration": max(1, total // 3),
            "eval_count": max(1, pieces),
            "eval_duration": max(1, total // 3),
        }

    def _h_chat(self, body: bytes, fault: str | None) -> None:
        start = time.monotonic_ns()
        stub = self.server.stub
        req = _decode_request(body, "ChatRequest", _CHAT_FIELDS)
        model = req.get("model") or ""
        if not model.strip():
            raise _BadRequest("model is required")
        found = stub.lookup_model(model)
        if found is None:
            self._send_json(404, {"error": f"model '{model}' not found"})
            return
        messages = [m for m in (req.get("messages") or []) if m is not None]
        keep_alive = req.get("keep_alive")
        base = {"model": model, "created_at": _now_rfc3339(),
                "message": {"role": "assistant", "content": ""}}
        if not messages and keep_alive in (0, "0", "0s"):
            self._send_json(200, {**base, "done_reason": "unload", "done": True})
            return
        if found[1] is not None:  # embedding model: no completion capability
            raise _BadRequest(f"{_go_quote(model)} does not support chat")
        loaded = time.monotonic_ns()
        if not messages:
            self._send_json(200, {**base, "done_reason": "load", "done": True})
            return

        reply = self._reply_or_500(req)
        if reply is None:
            return
        prompt_tokens = sum(_count_tokens(m.get("content") or "") for m in messages)
        pieces = _split_stream_pieces(reply)
        if req.get("stream") is False:
            self._send_json(200, {
                "model": model, "created_at": _now_rfc3339(),
                "message": {"role": "assistant", "content": reply},
                "done_reason": "stop", "done": True,
                **self._metrics(start, loaded, prompt_tokens, len(pieces)),
            })
            return
        chunks = [{"model": model, "created_at": _now_rfc3339(),
                   "message": {"role": "assistant", "content": p}, "done": False}
                  for p in pieces]
        chunks.append({"model": model, "created_at": _now_rfc3339(),
                       "message": {"role": "assistant", "content": ""},
                       "done_reason": "stop", "done": True,
                       **self._metrics(start, loaded, prompt_tokens, len(pieces))})
        self._stream_ndjson(chunks)

    def _h_generate(self, body: bytes, fault: str | None) -> None:
        start = time.monotonic_ns()
        stub = self.server.stub
        req = _decode_request(body, "GenerateRequest", _GENERATE_FIELDS)
        model = req.get("model") or ""
        found = stub.lookup_model(model) if model.strip() else None
        if found is None:
            self._send_json(404, {"error": f"model '{model}' not found"})
            return
        prompt = req.get("prompt") or ""
        base = {"model": model, "created_at": _now_rfc3339(), "response": ""}
        if not prompt and req.get("keep_alive") in (0, "0", "0s"):
            self._send_json(200, {**base, "done": True, "done_reason": "unload"})
            return
        if found[1] is not None:
            raise _BadRequest(f"{_go_quote(model)} does not support generate")
        loaded = time.monotonic_ns()
        if not prompt:
            self._send_json(200, {**base, "done": True, "done_reason": "load"})
            return

        reply = self._reply_or_500(req)
        if reply is None:
            return
        pieces = _split_stream_pieces(reply)
        prompt_tokens = _count_tokens(prompt)
        final_extra: dict[str, Any] = {}
        if not req.get("raw"):
            final_extra["context"] = list(range(1, prompt_tokens + len(pieces) + 1))
        if req.get("stream") is False:
            self._send_json(200, {
                "model": model, "created_at": _now_rfc3339(), "response": reply,
                "done": True, "done_reason": "stop", **final_extra,
                **self._metrics(start, loaded, prompt_tokens, len(pieces)),
            })
            return
        chunks = [{"model": model, "created_at": _now_rfc3339(), "response": p,
                   "done": False} for p in pieces]
        chunks.append({"model": model, "created_at": _now_rfc3339(), "response": "",
                       "done": True, "done_reason": "stop", **final_extra,
                       **self._metrics(start, loaded, prompt_tokens, len(pieces))})
        self._stream_ndjson(chunks)


# --------------------------------------------------------------------------
# Manual use
# --------------------------------------------------------------------------

def _parse_model_arg(spec: str) -> tuple[str, int | None]:
    """'name=DIM', 'name:DIM' (a numeric last part is a dimension) or 'name'."""
    if "=" in spec:
        name, dim = spec.rsplit("=", 1)
        return name, int(dim)
    head, sep, tail = spec.rpartition(":")
    if sep and tail.isdigit():
        return head, int(tail)
    return spec, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Stand-in Ollama server for tests.")
    parser.add_argument("--port", type=int, default=11434,
                        help="port on 127.0.0.1 (0 = any free port; default 11434)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME[:DIM]",
                        help="model to serve; with :DIM (or =DIM) it is an embedding "
                             "model of that dimension. Repeatable.")
    parser.add_argument("--fault", default=None, help=f"one of {FAULTS}")
    parser.add_argument("--reply", default=None, help="fixed chat reply content")
    parser.add_argument("--version", default=DEFAULT_VERSION, dest="ollama_version",
                        help="version reported by /api/version")
    args = parser.parse_args(argv)

    models = dict(_parse_model_arg(m) for m in args.model) if args.model else None
    stub = OllamaStub(models=models, port=args.port, version=args.ollama_version,
                      chat_reply=args.reply)
    stub.fault = args.fault
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    stub.start()
    print(f"OllamaStub listening on {stub.url}", flush=True)
    try:
        while not done.wait(0.2):
            pass
    finally:
        stub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
