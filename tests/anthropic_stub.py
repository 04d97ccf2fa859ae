"""A scripted stand-in for Anthropic's Messages API, for driving the real Claude Code binary.

A real HTTP server on 127.0.0.1 (standard library only, port 0) that answers
``POST /v1/messages`` the way Claude Code expects: with ``"stream": true`` as Anthropic's SSE
events (``message_start``, ``content_block_start`` / ``content_block_delta`` /
``content_block_stop``, ``message_delta``, ``message_stop``), otherwise as one JSON message.
Every request is kept (path, headers, decoded body) so tests can assert on what the model was
sent, e.g. that hook context really is in the request whose answer is an edit.

Which "model" turn to give is decided from the conversation received, never from a counter:

* A conversation whose first user text holds ``[[scenario:NAME]]`` plays SCENARIOS[NAME] (or
  one given to the constructor): a list of steps, one per assistant turn after that prompt.
  The step index is the number of assistant messages since the last user message that is not
  a tool result, so a retried request gets the same answer, a resumed session (whose new prompt
  carries its own marker) starts its own script, and a subagent (whose prompt carries a marker)
  plays its own.
* A compaction request (Claude Code asks for a summary of the conversation) is answered with an
  ``<analysis>``/``<summary>`` text that repeats the conversation's marker words, so a test can
  tell whether the thread survived.
* Anything else (titles, topic checks, other side requests) gets plain text.

Each step is a dict: ``{"text": "..."}``, ``{"tool": "Bash", "input": {...}}``, or a list of
such blocks; or a callable(body) -> that.  ``usage`` on the stub (a dict) is reported in
every answer; a large ``input_tokens`` makes Claude Code compact automatically.

Manual use (prints each request's summary)::

    python tests/anthropic_stub.py --port 8089
"""
import http.server
import json
import threading
import time
import uuid

MODEL = "claude-sonnet-4-5"

# The project the scenarios work on: a failing test that the "fix" scenario runs, makes pass by
# writing and editing ledger.py, and runs again.
LEDGER_PROJECT = {
    "tests/test_ledger.py": '''import sys
sys.path.insert(0, __file__.rsplit("/tests/", 1)[0])
try:
    import ledger
    got = ledger.round_cents(10.5)
except Exception as exc:
    got = exc
if got != 1050:
    print("E       AssertionError: ZEBRA-7731 expected 1050 cents, got", got)
    sys.exit(1)
print("1 passed")
''',
    "README.md": "A ledger.\n",
}

# a failing test command, Write, Read, Edit, a passing command
FIX_STEPS = [
    {"text": "Running the tests first.",
     "tool": "Bash", "input": {"command": "python3 tests/test_ledger.py",
                               "description": "Run the ledger tests"}},
    {"tool": "Write", "input": {"file_path": "{cwd}/ledger.py",
                                "content": '"""Money helpers."""\n\n\ndef round_cents(amount):'
                                           '\n    return int(amount * 100)\n'}},
    {"tool": "Read", "input": {"file_path": "{cwd}/ledger.py"}},
    {"tool": "Edit", "input": {"file_path": "{cwd}/ledger.py",
                               "old_string": "    return int(amount * 100)\n",
                               "new_string": "    return int(round(amount * 100))"
                                             "  # half-even, see ZEBRA-7731\n"}},
    {"tool": "Bash", "input": {"command": "python3 tests/test_ledger.py",
                               "description": "Run the tests again"}},
]

SCENARIOS = {
    # the session the e2e suite plays
    "fix": FIX_STEPS + [
        {"text": "Done: the ZEBRA-7731 rounding failure is fixed in ledger.py with round()."},
    ],
    # bench/agent.py: ten tool calls (a failing test run, writes, reads, edits, passing runs)
    "bench10": FIX_STEPS + [
        {"tool": "Read", "input": {"file_path": "{cwd}/README.md"}},
        {"tool": "Edit", "input": {"file_path": "{cwd}/README.md", "old_string": "A ledger.",
                                   "new_string": "A ledger in integer cents."}},
        {"tool": "Write", "input": {"file_path": "{cwd}/NOTES.md",
                                    "content": "Cents are rounded half-even.\n"}},
        {"tool": "Bash", "input": {"command": "git status --short", "description": "status"}},
        {"tool": "Bash", "input": {"command": "python3 -c 'import ledger; "
                                              "print(ledger.round_cents(10.5))'",
                                   "description": "Check the fix"}},
        {"text": "Done: ledger.py rounds, README and NOTES updated."},
    ],
    "ask": [
        {"text": "The last session fixed the ZEBRA-7731 rounding failure in ledger.py."},
    ],
    "read": [
        {"tool": "Read", "input": {"file_path": "{cwd}/ledger.py"}},
        {"tool": "Edit", "input": {"file_path": "{cwd}/ledger.py",
                                   "old_string": "# half-even", "new_string": "# banker's"}},
        {"text": "Edited ledger.py."},
    ],
    "subagent": [
        {"tool": "Bash", "input": {"command": "ls", "description": "list"}},
        {"text": "The repository holds tests/test_ledger.py and ledger.py; nothing else of note."},
    ],
    "delegate": [
        {"tool": "Agent", "input": {"description": "Look around",
                                    "prompt": "[[scenario:subagent]] Report what is in the "
                                              "repository.",
                                    "subagent_type": "general-purpose"}},
        {"text": "A subagent is looking around."},
        {"text": "The subagent reports: two files."},
        {"text": "Nothing more to do."},
    ],
    "remember": [
        {"tool": "Bash", "input": {"command": "devstream memory add --type decision "
                                              "\"Cents are rounded half-even (ZEBRA-7731)\"",
                                   "description": "Record the decision"}},
        {"text": "Recorded."},
    ],
    "hello": [
        {"text": "Hello."},
    ],
    # one tool call, so a large reported usage gets compacted before the second request
    "probe": [
        {"tool": "Bash", "input": {"command": "ls", "description": "list"}},
        {"text": "Listed."},
    ],
}


def _texts(content):
    """The text parts of one message's content (string or list of blocks)."""
    if isinstance(content, str):
        return [content]
    out = []
    for block in content or ():
        if isinstance(block, dict):
            if block.get("type") == "text":
                out.append(block.get("text") or "")
            elif block.get("type") == "tool_result":
                out.extend(_texts(block.get("content")))
    return out


def message_text(message):
    return "\n".join(_texts(message.get("content")))


def is_tool_result(message):
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def body_text(body):
    """Everything the model is shown in one request (system prompt and all messages), as text."""
    parts = []
    system = body.get("system")
    parts.extend(_texts(system) if isinstance(system, list) else [system or ""])
    for m in body.get("messages") or ():
        parts.append(message_text(m))
    return "\n".join(parts)


def scenario_name(text):
    start = text.find("[[scenario:")
    if start < 0:
        return None
    end = text.find("]]", start)
    return text[start + len("[[scenario:"):end] if end > 0 else None


class AnthropicStub:
    def __init__(self, scenarios=None, usage=None, cwd="", log_path=None):
        self.scenarios = dict(SCENARIOS, **(scenarios or {}))
        self.usage = dict(usage or {})
        self.cwd = cwd
        self.requests = []          # {"path", "headers", "body", "kind", "at"}
        self.log_path = log_path
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self, port=0):
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                stub._record(self.path, self.headers, None, "get")
                self._send_json(200, {})

            def do_HEAD(self):
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                path = self.path.split("?")[0]
                if path.endswith("/count_tokens"):
                    stub._record(self.path, self.headers, body, "count_tokens")
                    return self._send_json(200, {"input_tokens": 1000})
                if not path.endswith("/v1/messages"):
                    stub._record(self.path, self.headers, body, "unknown")
                    return self._send_json(404, {"type": "error", "error": {
                        "type": "not_found_error", "message": f"no route {path}"}})
                kind, blocks = stub.decide(body)
                stub._record(self.path, self.headers, body, kind)
                if body.get("stream"):
                    self._send_stream(body, blocks)
                else:
                    self._send_json(200, stub.message(body, blocks))

            def _send_json(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("request-id", "req_" + uuid.uuid4().hex[:20])
                self.end_headers()
                self.wfile.write(data)

            def _send_stream(self, body, blocks):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.send_header("request-id", "req_" + uuid.uuid4().hex[:20])
                self.end_headers()
                for event, data in stub.sse_events(body, blocks):
                    self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()
                self.close_connection = True

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _record(self, path, headers, body, kind):
        entry = {"path": path, "kind": kind, "at": time.time(), "body": body,
                 "headers": {k.lower(): v for k, v in headers.items()
                             if k.lower() in ("anthropic-version", "anthropic-beta",
                                              "user-agent", "x-app")}}
        with self._lock:
            self.requests.append(entry)
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry) + "\n")

    # -- the "model" ----------------------------------------------------------------------------
    def decide(self, body):
        """(kind, content blocks) for one request."""
        messages = body.get("messages") or []
        if not body.get("tools") or not messages:
            return "side", [{"type": "text", "text": "Scripted session"}]
        last = message_text(messages[-1]) if messages else ""
        first_user = next((message_text(m) for m in messages if m.get("role") == "user"), "")
        if "summary" in last.lower() and "<analysis>" in last and len(messages) > 1:
            return "compact", [{"type": "text", "text": self.compact_summary(body)}]
        # the prompt this turn answers: the last user message that is not a tool result
        start = 0
        for i, m in enumerate(messages):
            if m.get("role") == "user" and not is_tool_result(m) and \
                    scenario_name(message_text(m)):
                start = i
        name = scenario_name(message_text(messages[start])) if messages else None
        if name is None:
            name = scenario_name(first_user)
        script = self.scenarios.get(name)
        if script is None:
            return "main", [{"type": "text", "text": "Nothing scripted for this prompt."}]
        step = sum(1 for m in messages[start:] if m.get("role") == "assistant")
        if step >= len(script):
            return f"main:{name}:end", [{"type": "text", "text": "Done."}]
        item = script[step]
        if callable(item):
            item = item(body)
        return f"main:{name}:{step}", self._blocks(item)

    def compact_summary(self, body):
        text = body_text(body)
        words = sorted({w.strip(".,:;()'\"") for w in text.split()
                        if w.startswith("ZEBRA-") or w.startswith("THREAD-")})
        return ("<analysis>The user ran a scripted session.</analysis>\n<summary>1. Primary "
                f"Request: the scripted task ({' '.join(words) or 'no markers'}). 2. Work done: "
                "tests run, files written and edited.</summary>")

    def _blocks(self, item):
        items = item if isinstance(item, list) else [item]
        blocks = []
        for it in items:
            if it.get("text"):
                blocks.append({"type": "text", "text": it["text"]})
            if it.get("tool"):
                tool_input = json.loads(json.dumps(it.get("input") or {}).replace(
                    "{cwd}", self.cwd))
                blocks.append({"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:24],
                               "name": it["tool"], "input": tool_input})
        return blocks

    def _usage(self, output_tokens=10):
        usage = {"input_tokens": 100, "output_tokens": output_tokens,
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        usage.update(self.usage)
        return usage

    def message(self, body, blocks):
        stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
        return {"id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant",
                "model": body.get("model") or MODEL, "content": blocks, "stop_reason": stop,
                "stop_sequence": None, "usage": self._usage()}

    def sse_events(self, body, blocks):
        msg = self.message(body, blocks)
        start = dict(msg, content=[], stop_reason=None, usage=self._usage(1))
        yield "message_start", {"type": "message_start", "message": start}
        for i, block in enumerate(blocks):
            if block["type"] == "text":
                yield "content_block_start", {"type": "content_block_start", "index": i,
                                              "content_block": {"type": "text", "text": ""}}
                yield "content_block_delta", {"type": "content_block_delta", "index": i,
                                              "delta": {"type": "text_delta",
                                                        "text": block["text"]}}
            else:
                yield "content_block_start", {"type": "content_block_start", "index": i,
                                              "content_block": dict(block, input={})}
                yield "content_block_delta", {"type": "content_block_delta", "index": i,
                                              "delta": {"type": "input_json_delta",
                                                        "partial_json": json.dumps(
                                                            block["input"])}}
            yield "content_block_stop", {"type": "content_block_stop", "index": i}
        yield "message_delta", {"type": "message_delta",
                                "delta": {"stop_reason": msg["stop_reason"],
                                          "stop_sequence": None},
                                "usage": {"output_tokens": msg["usage"]["output_tokens"]}}
        yield "message_stop", {"type": "message_stop"}

    # -- assertions helpers ---------------------------------------------------------------------
    def main_requests(self):
        return [r for r in self.requests if str(r["kind"]).startswith("main")]


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cwd", default="")
    ap.add_argument("--log", default=None)
    a = ap.parse_args()
    s = AnthropicStub(cwd=a.cwd, log_path=a.log).start(a.port)
    print(s.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        s.stop()
