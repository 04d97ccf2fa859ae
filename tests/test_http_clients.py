"""DevStream speaks HTTP to one place, the configured Ollama URL, through two clients only: one
for every path off the hook's clock (embedder, `embed`, `plan`, summaries, doctor) and one minimal
client for the hook's query vector.  The source is scanned for a third; each client is shown to
refuse an endless answer, to follow no redirect, to ignore proxy settings, and to speak https."""
import ast
import json
import os
import shutil
import socket
import subprocess
import threading

import pytest

from conftest import ROOT
from ollama_stub import OllamaStub

# the only places in devstream.py allowed to touch the network
CLIENTS = {"post_json_fast": "_socket", "OllamaClient": "httpx"}
NETWORK_MODULES = {"socket", "_socket", "ssl", "_ssl", "http", "urllib", "urllib3", "httpx",
                   "httpcore", "requests", "aiohttp", "asyncio", "xmlrpc", "ftplib", "smtplib",
                   "telnetlib", "websocket", "websockets", "pycurl"}


def network_uses(tree):
    """[(top-level definition, module, line)] for every import of a network module, every
    dynamic import of one by name, and every name or attribute spelled like one."""
    found = []
    for top in tree.body:
        owner = getattr(top, "name", "<module>")
        for node in ast.walk(top):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module]
            elif isinstance(node, ast.Call) and node.args and \
                    isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                fn = node.func
                name = fn.id if isinstance(fn, ast.Name) else getattr(fn, "attr", "")
                if name in ("__import__", "import_module"):
                    mods = [node.args[0].value]
            elif isinstance(node, ast.Name) and node.id in NETWORK_MODULES:
                mods = [node.id]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    node.value.split(" ")[0] in ("curl", "wget"):
                mods = [node.value.split(" ")[0]]
            found += [(owner, m, node.lineno) for m in mods
                      if m.split(".")[0] in NETWORK_MODULES | {"curl", "wget"}]
    return found


def test_exactly_two_http_clients_in_the_source():
    with open(os.path.join(ROOT, "devstream.py")) as fh:
        tree = ast.parse(fh.read())
    uses = network_uses(tree)
    outside = [u for u in uses if u[0] not in CLIENTS]
    assert not outside, f"network code outside the two HTTP clients {sorted(CLIENTS)}: {outside}"
    for client, module in CLIENTS.items():
        assert any(u[0] == client and u[1] == module for u in uses), \
            f"{client} no longer uses {module}: update this test with the new client"
    # the hook's client is only ever pointed at the configured URL (the other takes the config)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and getattr(n.func, "id", None) == "post_json_fast"]
    assert calls and all(ast.unparse(c.args[0]) == "cfg.ollama_url" for c in calls), \
        [ast.unparse(c) for c in calls]
    # the scan itself sees what it must refuse
    probe = ast.parse("def f():\n    import urllib.request\n"
                      "def g():\n    __import__('http.client')\n"
                      "def h(x):\n    return socket.create_connection(x)\n")
    assert [u[0] for u in network_uses(probe)] == ["f", "g", "h"]


class Hostile:
    """A raw HTTP server on 127.0.0.1 that answers every request one way: `endless` (200 and a
    JSON body that never ends), `redirect` (307 to `target`), or `count` (counts and answers 502,
    as a proxy that must never be used).  `hits` counts requests."""

    def __init__(self, mode, target=None):
        self.mode, self.target, self.hits = mode, target, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stopped = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

    def answer(self, conn):
        try:
            conn.settimeout(30)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            path = head.split(b" ")[1].decode()
            length = next((int(l.split(b":")[1]) for l in head.split(b"\r\n")
                           if l.lower().startswith(b"content-length:")), 0)
            while len(body) < length:
                body += conn.recv(65536)
            self.hits += 1
            if self.mode == "redirect":
                conn.sendall(f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {self.target}{path}"
                             "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            elif self.mode == "count":
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Connection: close\r\n\r\n{\"embeddings\": [[0.5")
                filler = b", 0.5" * 20000
                for _ in range(20000):                 # 2 GB: far past either cap
                    if self.stopped.is_set():
                        return
                    conn.sendall(filler)
        except OSError:
            pass                                        # the client hung up: expected
        finally:
            conn.close()

    def close(self):
        self.stopped.set()
        self.sock.close()


@pytest.fixture
def hostile():
    servers = []

    def make(mode, target=None):
        servers.append(Hostile(mode, target))
        return servers[-1]
    yield make
    for s in servers:
        s.close()


@pytest.fixture
def stub():
    with OllamaStub(models={"embeddinggemma": 768, "llama3.2": None}) as s:
        yield s


def config(ds, text):
    os.makedirs(ds.home, exist_ok=True)
    with open(os.path.join(ds.home, "config.toml"), "w") as fh:
        fh.write(text)


def embedded_with_ollama(ds, stub):
    """A store whose serving model is the stand-in's, so each prompt asks Ollama for its vector."""
    ds.env.update(DEVSTREAM_OLLAMA_URL=stub.url, DEVSTREAM_EMBED_MODE="background")
    mid = ds.cli("memory", "add", "--type", "decision", "invoices are stored as integer cents",
                 check=True).stdout.strip()
    ds.cli("embed", check=True)
    return mid


def prompt(ds, text, session="h"):
    proc = ds.hook({"hook_event_name": "UserPromptSubmit", "prompt": text, "session_id": session})
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    assert proc.stdout, ds.log_records()[-3:]
    return json.loads(proc.stdout)["hookSpecificOutput"]["additionalContext"]


def query_failures(ds):
    return [r.get("error", "") for r in ds.log_records() if r["event"] == "embed.query_failed"]


def test_an_endless_answer_is_cut_at_the_cap(ds, stub, hostile):
    mid = embedded_with_ollama(ds, stub)
    endless = hostile("endless")
    ds.env["DEVSTREAM_OLLAMA_URL"] = endless.url
    # the background client: `embed` stops at 32 MiB and says so in one line
    ds.cli("memory", "add", "--type", "decision", "refunds are issued as credit notes", check=True)
    proc = ds.cli("embed")
    assert proc.returncode == 1 and "larger than 32 MiB" in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    # the hook's client: the query vector stops at 1 MiB, long before a generous deadline, and
    # the prompt still gets its keyword match
    config(ds, "query_embed_deadline_ms = 2000\n")
    assert mid in prompt(ds, "how are invoices stored, integer cents?")
    assert any("larger than 1024 KiB" in e for e in query_failures(ds)), query_failures(ds)


def test_only_the_configured_url_is_ever_asked(ds, stub, hostile):
    """Redirects are not followed and proxy settings are not read, by either client."""
    mid = embedded_with_ollama(ds, stub)
    stub.reset()
    proxy = hostile("count")
    elsewhere = hostile("redirect", target=stub.url)
    ds.env.update(DEVSTREAM_OLLAMA_URL=elsewhere.url, DEVSTREAM_CHAT_MODEL="llama3.2",
                  http_proxy=proxy.url, HTTP_PROXY=proxy.url, https_proxy=proxy.url,
                  ALL_PROXY=proxy.url, NO_PROXY="")
    ds.cli("memory", "add", "--type", "decision", "refunds are issued as credit notes", check=True)
    proc = ds.cli("embed")
    assert proc.returncode == 1 and "HTTP 307" in proc.stderr, proc.stderr
    proc = ds.cli("plan", "Add CSV export")
    assert proc.returncode == 1 and "HTTP 307" in proc.stderr, proc.stderr
    ds.cli("doctor")
    assert mid in prompt(ds, "how are invoices stored, integer cents?")
    assert elsewhere.hits >= 4                      # embed, plan, doctor, the hook: all asked it
    assert stub.requests == [], "a redirect was followed"
    assert proxy.hits == 0, "a proxy setting was used"


def test_both_clients_speak_https(ds, tmp_path):
    """An https Ollama URL works on both paths, trusting the system's certificates (here one
    added through SSL_CERT_FILE); a certificate nobody vouches for is refused."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a certificate")
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    with OllamaStub(models={"embeddinggemma": 768}, tls=(cert, key)) as tls:
        assert tls.url.startswith("https://")
        ds.env["SSL_CERT_FILE"] = cert
        mid = embedded_with_ollama(ds, tls)             # the background client
        assert len(tls.requests_to("/api/embed")) == 1
        assert mid in prompt(ds, "how are invoices stored, integer cents?")
        asked = [r["json"]["input"] for r in tls.requests_to("/api/embed")]
        assert asked[-1] == ["how are invoices stored, integer cents?"]      # the hook's client
        assert not query_failures(ds)
        # without the certificate trusted, neither client accepts the server
        del ds.env["SSL_CERT_FILE"]
        ds.cli("memory", "add", "--type", "decision", "refunds are credit notes", check=True)
        proc = ds.cli("embed")
        assert proc.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in proc.stderr, proc.stderr
        assert mid in prompt(ds, "integer cents for invoices?", session="h2")
        assert any("CERTIFICATE_VERIFY_FAILED" in e for e in query_failures(ds)), \
            query_failures(ds)
