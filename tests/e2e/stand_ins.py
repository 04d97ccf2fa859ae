"""Scripted model stand-ins for Gemini CLI, Codex CLI and Qwen Code, one HTTP server for all.

Each is a real HTTP server on 127.0.0.1 (standard library, port 0) that speaks one vendor's API
the way its CLI calls it, streamed as that API streams:

* ``GeminiStandIn``: ``POST /v1beta/models/MODEL:streamGenerateContent?alt=sse`` (and the
  non-streamed ``:generateContent`` side requests), Gemini ``candidates`` chunks;
* ``ResponsesStandIn`` (Codex CLI): ``POST /v1/responses``, the Responses API's SSE events
  (``response.created``, ``response.output_item.done``, ``response.completed``);
* ``ChatStandIn`` (Qwen Code): ``POST /v1/chat/completions`` with ``stream: true``, OpenAI
  ``chat.completion.chunk`` deltas ending in ``data: [DONE]``.

Every request body is logged (``requests``).  The answer to each model request is decided from
the conversation in it, never from a counter: the latest user text carrying a
``[[scenario:NAME]]`` marker names the script, and the number of tool calls the model has made
since that text is the step.  A step is ``{"text": ...}`` (final answer) or
``{"tool": KIND, "args": {...}}`` where KIND is one of DevStream's scenario verbs (``shell``,
``write``, ``read``, ``edit``); each subclass turns a verb into its CLI's own tool call.  Past
the end of a script, or without a marker, the answer is a short text.
"""
import http.server
import json
import threading
import time

SCENARIO_MARK = "[[scenario:"

# The session the e2e tests play, in two parts.  "fix": a shell command that fails with the
# marker ZQX7731, then a new file; "tune": read that file, change one line.
FAIL_COMMAND = ("python3 -c \"import sys; sys.stderr.write('ZQX7731 flux capacitor overheated "
                "at 88 mph\\n'); sys.exit(3)\"")
CALIBRATE = "# calibration settings\nFLUX_LIMIT = 1.21  # gigawatts\n"
SCENARIOS = {
    "fix": [
        {"tool": "shell", "args": {"command": FAIL_COMMAND, "description": "calibration check"}},
        {"tool": "write", "args": {"path": "calibrate.py", "content": CALIBRATE}},
        {"text": "Calibration file written; the check failed with ZQX7731."},
    ],
    "tune": [
        {"tool": "read", "args": {"path": "calibrate.py"}},
        {"tool": "edit", "args": {"path": "calibrate.py", "old": "FLUX_LIMIT = 1.21  # gigawatts",
                                  "new": "FLUX_LIMIT = 1.10  # gigawatts"}},
        {"text": "Lowered the flux limit to 1.10 in calibrate.py."},
    ],
}


def scenario_of(text):
    i = text.rfind(SCENARIO_MARK)
    if i < 0:
        return None
    return text[i + len(SCENARIO_MARK):].split("]]", 1)[0]


class StandIn:
    """The shared server: request log, scenario lookup, SSE writing.  Subclasses parse their
    API's conversation (``turns``) and encode answers (``answer``)."""

    model = "stand-in"

    def __init__(self, cwd="", scenarios=None):
        self.cwd = cwd
        self.scenarios = dict(SCENARIOS, **(scenarios or {}))
        self.requests = []          # {"path", "body", "at"} of every request, in order
        self.lock = threading.Lock()
        self.server = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self):
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                stand_in._record(self.path, None)
                self._json(200, stand_in.on_get(self.path))

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                if self.headers.get("Content-Encoding") == "zstd":
                    self._json(415, {"error": "zstd bodies are not accepted here"})
                    return
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                stand_in._record(self.path, body)
                status, events, obj = stand_in.on_post(self.path, body)
                if events is None:
                    self._json(status, obj)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                for name, data in events:
                    chunk = (f"event: {name}\n" if name else "") + f"data: {data}\n\n"
                    self.wfile.write(chunk.encode("utf-8"))
                    self.wfile.flush()
                self.close_connection = True

            def _json(self, status, obj):
                data = json.dumps(obj).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def _record(self, path, body):
        with self.lock:
            self.requests.append({"path": path, "body": body, "at": time.time()})

    # -- deciding a turn ------------------------------------------------------------------------

    def step(self, user_texts_and_calls):
        """The scripted step for a conversation given as a list of ("user", text) and
        ("call", name) items in order."""
        name, calls = None, 0
        for kind, value in user_texts_and_calls:
            if kind == "user" and "DevStream" in value and "<hook_context>" not in value:
                continue            # DevStream's own context (it may quote earlier prompts)
            if kind == "user" and scenario_of(value):
                name, calls = scenario_of(value), 0
            elif kind == "call":
                calls += 1
        script = self.scenarios.get(name) or []
        if calls < len(script):
            return script[calls]
        return {"text": "Nothing more to do."}

    def path_of(self, rel):
        return f"{self.cwd.rstrip('/')}/{rel}" if self.cwd else rel

    def model_requests(self):
        """Bodies of the requests that asked the model for a turn."""
        return [r["body"] for r in self.requests if r["body"] and self.is_turn(r["path"])]

    # -- to override ----------------------------------------------------------------------------

    def on_get(self, path):
        return {}

    def is_turn(self, path):
        return False

    def on_post(self, path, body):
        """(status, SSE events [(event name or None, data text)] or None, JSON object)."""
        return 404, None, {"error": f"no such endpoint: {path}"}


# ------------------------------------------------------------------------------------- Gemini

class GeminiStandIn(StandIn):
    model = "gemini-2.5-flash"

    def is_turn(self, path):
        return ":streamGenerateContent" in path

    def turns(self, body):
        items = []
        for content in body.get("contents") or ():
            for part in content.get("parts") or ():
                if content.get("role") == "model" and "functionCall" in part:
                    items.append(("call", part["functionCall"].get("name")))
                elif content.get("role") == "user" and isinstance(part.get("text"), str):
                    items.append(("user", part["text"]))
        return items

    def tool_call(self, step):
        a = step["args"]
        if step["tool"] == "shell":
            return "run_shell_command", {"command": a["command"], "description": a["description"]}
        if step["tool"] == "write":
            return "write_file", {"file_path": self.path_of(a["path"]), "content": a["content"]}
        if step["tool"] == "read":
            return "read_file", {"file_path": self.path_of(a["path"])}
        return "replace", {"file_path": self.path_of(a["path"]), "instruction": "change it",
                           "old_string": a["old"], "new_string": a["new"]}

    def chunk(self, parts):
        return {"candidates": [{"content": {"role": "model", "parts": parts},
                                "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 10,
                                  "totalTokenCount": 110},
                "modelVersion": self.model}

    def on_post(self, path, body):
        if ":streamGenerateContent" in path:
            step = self.step(self.turns(body))
            if "text" in step:
                parts = [{"text": step["text"]}]
            else:
                name, args = self.tool_call(step)
                parts = [{"functionCall": {"name": name, "args": args}}]
            return 200, [(None, json.dumps(self.chunk(parts)))], None
        if ":generateContent" in path:       # side requests (next speaker, titles, ...)
            text = json.dumps({"reasoning": "done", "next_speaker": "user"})
            return 200, None, self.chunk([{"text": text}])
        if ":countTokens" in path:
            return 200, None, {"totalTokens": 100}
        return super().on_post(path, body)


# ------------------------------------------------------------------ Codex: the Responses API

class ResponsesStandIn(StandIn):
    model = "gpt-5.5"

    def is_turn(self, path):
        return path.rstrip("/").endswith("/responses")

    def on_get(self, path):
        if path.rstrip("/").endswith("/models"):
            return {"object": "list", "data": [{"id": self.model, "object": "model"}],
                    "models": []}
        return {}

    def turns(self, body):
        items = []
        for item in body.get("input") or ():
            kind = item.get("type")
            if kind in ("function_call", "custom_tool_call", "local_shell_call"):
                items.append(("call", item.get("name")))
            elif kind == "message" and item.get("role") == "user":
                for c in item.get("content") or ():
                    if isinstance(c, dict) and isinstance(c.get("text"), str):
                        items.append(("user", c["text"]))
        return items

    def tools(self, body):
        return {t.get("name"): t for t in body.get("tools") or () if isinstance(t, dict)}

    def tool_item(self, body, step, call_id):
        a = step["args"]
        tools = self.tools(body)
        if step["tool"] == "shell":
            if "exec_command" in tools:
                return {"type": "function_call", "name": "exec_command", "call_id": call_id,
                        "arguments": json.dumps({"cmd": a["command"]})}
            return {"type": "function_call", "name": "shell", "call_id": call_id,
                    "arguments": json.dumps({"command": ["bash", "-lc", a["command"]]})}
        if step["tool"] == "write":
            body_lines = "".join("+" + line + "\n" for line in a["content"].splitlines())
            patch = f"*** Begin Patch\n*** Add File: {a['path']}\n{body_lines}*** End Patch\n"
        elif step["tool"] == "edit":
            patch = (f"*** Begin Patch\n*** Update File: {a['path']}\n@@\n-{a['old']}\n"
                     f"+{a['new']}\n*** End Patch\n")
        else:                                   # Codex reads files with the shell
            return self.tool_item(body, {"tool": "shell",
                                         "args": {"command": f"cat {a['path']}"}}, call_id)
        if tools.get("apply_patch", {}).get("type") == "custom":
            return {"type": "custom_tool_call", "name": "apply_patch", "call_id": call_id,
                    "input": patch}
        return {"type": "function_call", "name": "apply_patch", "call_id": call_id,
                "arguments": json.dumps({"input": patch})}

    def on_post(self, path, body):
        if not self.is_turn(path):
            return super().on_post(path, body)
        n = len(self.requests)
        step = self.step(self.turns(body))
        rid = f"resp_{n}"
        if "text" in step:
            item = {"type": "message", "role": "assistant", "id": f"msg_{n}",
                    "content": [{"type": "output_text", "text": step["text"], "annotations": []}]}
        else:
            item = self.tool_item(body, step, f"call_{n}")
            item["id"] = f"fc_{n}"
        usage = {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": 10, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": 110}
        events = [
            ("response.created", {"type": "response.created",
                                  "response": {"id": rid, "status": "in_progress"}}),
            ("response.output_item.added", {"type": "response.output_item.added",
                                            "output_index": 0, "item": item}),
            ("response.output_item.done", {"type": "response.output_item.done",
                                           "output_index": 0, "item": item}),
            ("response.completed", {"type": "response.completed",
                                    "response": {"id": rid, "status": "completed",
                                                 "output": [item], "usage": usage}}),
        ]
        return 200, [(name, json.dumps(data)) for name, data in events], None


# ---------------------------------------------------------- Qwen Code: OpenAI chat completions

class ChatStandIn(StandIn):
    model = "fake-coder"

    def is_turn(self, path):
        return path.rstrip("/").endswith("/chat/completions")

    def on_get(self, path):
        return {"object": "list", "data": [{"id": self.model, "object": "model"}]}

    def turns(self, body):
        items = []
        for m in body.get("messages") or ():
            if m.get("role") == "assistant":
                for call in m.get("tool_calls") or ():
                    items.append(("call", (call.get("function") or {}).get("name")))
            elif m.get("role") == "user":
                content = m.get("content")
                texts = [content] if isinstance(content, str) else \
                    [c.get("text") for c in content or () if isinstance(c, dict)]
                items.extend(("user", t) for t in texts if isinstance(t, str))
        return items

    def tool_call(self, step):
        a = step["args"]
        if step["tool"] == "shell":
            return "run_shell_command", {"command": a["command"],
                                         "description": a["description"], "is_background": False}
        if step["tool"] == "write":
            return "write_file", {"file_path": self.path_of(a["path"]), "content": a["content"]}
        if step["tool"] == "read":
            return "read_file", {"file_path": self.path_of(a["path"])}
        return "edit", {"file_path": self.path_of(a["path"]), "old_string": a["old"],
                        "new_string": a["new"]}

    def on_post(self, path, body):
        if not self.is_turn(path):
            return super().on_post(path, body)
        n = len(self.requests)
        step = self.step(self.turns(body))
        base = {"id": f"chatcmpl-{n}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": self.model}
        if "text" in step:
            delta, finish = {"role": "assistant", "content": step["text"]}, "stop"
        else:
            name, args = self.tool_call(step)
            delta = {"role": "assistant", "content": None, "tool_calls": [
                {"index": 0, "id": f"call_{n}", "type": "function",
                 "function": {"name": name, "arguments": json.dumps(args)}}]}
            finish = "tool_calls"
        if not body.get("stream"):
            message = dict(delta)
            return 200, None, dict(base, object="chat.completion", choices=[
                {"index": 0, "message": message, "finish_reason": finish}],
                usage={"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110})
        chunks = [dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": None}]),
                  dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": finish}],
                       usage={"prompt_tokens": 100, "completion_tokens": 10,
                              "total_tokens": 110})]
        return 200, [(None, json.dumps(c)) for c in chunks] + [(None, "[DONE]")], None
