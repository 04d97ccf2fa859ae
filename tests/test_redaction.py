"""Secrets never reach the database file, its WAL, the log or an embedding request; ordinary
code mostly survives.  Corpus: tests/data/redaction_corpus.json (all secrets are fake)."""
import glob
import json
import os

import pytest

import devstream
from ollama_stub import OllamaStub

CORPUS = json.load(open(os.path.join(os.path.dirname(__file__), "data", "redaction_corpus.json")))
SECRETS = CORPUS["secrets"]
BENIGN = CORPUS["benign"]


def secret_fragments(secret):
    """The secret itself and, for multi-line secrets (key blocks), each substantial line."""
    frags = [secret]
    for line in secret.splitlines():
        line = line.strip().lstrip("+").strip()
        if len(line) >= 24 and "-----" not in line:
            frags.append(line)
    return frags


def leaked(secret, blob):
    return [f for f in secret_fragments(secret) if f in blob]


@pytest.mark.parametrize("entry", SECRETS, ids=[f"{i}-{s['kind']}" for i, s in enumerate(SECRETS)])
def test_each_secret_is_redacted(entry):
    out = devstream.redact(entry["text"])
    assert not leaked(entry["secret"], out), out
    assert "[REDACTED:" in out


def test_rates(capsys):
    caught = sum(not leaked(e["secret"], devstream.redact(e["text"])) for e in SECRETS)
    kept = sum(e["value"] in devstream.redact(e["text"]) for e in BENIGN)
    secret_rate, benign_rate = caught / len(SECRETS), kept / len(BENIGN)
    with capsys.disabled():
        print(f"\nredaction: {caught}/{len(SECRETS)} secrets removed ({secret_rate:.1%}), "
              f"{kept}/{len(BENIGN)} benign values kept ({benign_rate:.1%})")
    assert secret_rate == 1.0
    assert benign_rate >= 0.9


def test_nothing_secret_reaches_disk_log_or_ollama(ds):
    with OllamaStub(models={"embeddinggemma": 768}) as stub:
        ds.env.update(DEVSTREAM_OLLAMA_URL=stub.url, DEVSTREAM_EMBED_MODE="inline",
                      DEVSTREAM_LOG_LEVEL="debug")
        texts = list(dict.fromkeys(e["text"] for e in SECRETS))
        for i, text in enumerate(texts):
            sid = f"s{i}"
            ds.hook({"hook_event_name": "UserPromptSubmit", "prompt": text, "session_id": sid})
            ds.hook({"hook_event_name": "PostToolUseFailure", "tool_name": "Bash", "session_id": sid,
                     "tool_input": {"command": "make deploy"}, "error": "Exit code 1\n" + text})
            ds.hook({"hook_event_name": "SubagentStop", "session_id": sid, "agent_type": "Explore",
                     "last_assistant_message": "Found this in the config:\n" + text})
            ds.cli("memory", "add", "-", input=text, check=True)
        # not JSON, with secrets inside: the error path logs, and must not log them
        ds.hook(("{broken " + texts[0]).encode())
        ds.hook({"hook_event_name": "Stop", "session_id": "s0"})      # embeds inline
        for i in range(3):                                              # query embeddings too
            ds.hook({"hook_event_name": "UserPromptSubmit", "prompt": texts[i] + " again",
                     "session_id": "q"})
        embed_inputs = []
        for req in stub.requests_to("/api/embed"):
            inp = req["json"]["input"]
            embed_inputs.extend([inp] if isinstance(inp, str) else inp)
        bodies = "\n".join(r["body_text"] for r in stub.requests)
    assert len(embed_inputs) >= len(texts), "the embedder really ran"
    assert ds.sql("SELECT count(*) FROM embed_pending")[0][0] < len(texts)
    files = [ds.db] + glob.glob(ds.db + "-wal") + [ds.log_path]
    blobs = {f: open(f, "rb").read().decode("utf-8", "replace") for f in files if os.path.exists(f)}
    assert os.path.exists(ds.log_path)
    problems = []
    for e in SECRETS:
        for name, blob in blobs.items():
            if leaked(e["secret"], blob):
                problems.append((e["kind"], os.path.basename(name)))
        if any(leaked(e["secret"], t) for t in embed_inputs) or leaked(e["secret"], bodies):
            problems.append((e["kind"], "embedding request"))
    assert not problems


@pytest.mark.parametrize("text,secret", [
    ("my password is hunter22, please log in", "hunter22"),
    ("here's my key: sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345", "AbCdEfGhIjKlMnOpQrStUvWxYz012345"),
    ("<private>the staging box is 10.0.3.7, root pw on the sticky note</private> fix deploy",
     "10.0.3.7"),
    ("mysql -h db -u app -pS3cretPassw0rd app_prod", "S3cretPassw0rd"),
])
def test_prompts_in_prose(text, secret):
    assert secret not in devstream.redact(text)


@pytest.mark.parametrize("text", ["5 passed, 1 skipped in 0.41s", "Asked about the high score",
                                  "the password is required", "tokenizer.next_token()"])
def test_everyday_text_is_left_alone(text):
    assert devstream.redact(text) == text
