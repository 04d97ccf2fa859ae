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


def groups(texts, size):
    """Texts joined into chunks of about `size` characters."""
    out, cur = [], ""
    for t in texts:
        if cur and len(cur) + len(t) > size:
            out.append(cur)
            cur = ""
        cur += t + "\n\n"
    return out + ([cur] if cur else [])


def write_transcript(path, texts, cwd):
    """A Claude Code transcript in which every text is a prompt, a command's output, an edit, a
    written file and a failed tool's error."""
    lines, n = [], 0
    for i, text in enumerate(texts):
        stamp = f"2026-11-30T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z"
        common = {"sessionId": "imported-1", "cwd": cwd, "timestamp": stamp}
        lines.append(dict(common, type="user", message={"role": "user", "content": text}))
        for name, tin, res, err in (
                ("Bash", {"command": "./run.sh"}, {"stdout": text, "exit_code": 0}, False),
                ("Edit", {"file_path": f"{cwd}/src/m{i}.py", "old_string": "x = 1",
                          "new_string": text}, {}, False),
                ("Write", {"file_path": f"{cwd}/notes/n{i}.md", "content": text},
                 {"type": "create"}, False),
                ("Bash", {"command": "make"}, None, True)):
            n += 1
            lines.append(dict(common, type="assistant", message={"role": "assistant", "content": [
                {"type": "tool_use", "id": f"tu{n}", "name": name, "input": tin}]}))
            rec = dict(common, type="user", message={"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": f"tu{n}", "is_error": err,
                 "content": ("Exit code 2\n" + text) if err else "ok"}]})
            if res:
                rec["toolUseResult"] = res
            lines.append(rec)
    path.write_text("\n".join(json.dumps(l) for l in lines) + "\n")


def write_export(path, texts, key):
    """An export whose tasks and task events carry every text in every text field."""
    recs = [{"kind": "devstream-export", "version": 1}]
    for i, text in enumerate(texts):
        tid = f"t-e{i:05d}"
        recs.append({"kind": "task", "id": tid, "project": key, "title": text, "description": text,
                     "status": "blocked", "priority": 2, "labels": [text], "block_reason": text,
                     "created_at": 1.0 + i, "updated_at": 2.0 + i})
        recs.append({"kind": "task_event", "task": tid, "at": 3.0 + i, "from": "open",
                     "to": "blocked", "note": text})
        recs.append({"kind": "memory", "id": f"m-e{i:05d}", "project": key, "type": "note",
                     "content": "imported: " + text, "tags": [text], "created_at": 4.0 + i})
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")


def test_nothing_secret_reaches_disk_log_or_ollama(ds, tmp_path):
    with OllamaStub(models={"embeddinggemma": 768}) as stub:
        ds.env.update(DEVSTREAM_OLLAMA_URL=stub.url, DEVSTREAM_EMBED_MODE="inline",
                      DEVSTREAM_LOG_LEVEL="debug")
        texts = list(dict.fromkeys(e["text"] for e in SECRETS))
        # one process per text for the prompt hook and `memory add`
        for i, text in enumerate(texts):
            ds.hook({"hook_event_name": "UserPromptSubmit", "prompt": text, "session_id": f"s{i}"})
            ds.cli("memory", "add", "-", "--tag", "t" + str(i), input=text, check=True)
        # the other paths take many texts at once (each group fits the path's length limits)
        for n, group in enumerate(groups(texts, 2000)):
            sid = f"g{n}"
            ds.hook({"hook_event_name": "PostToolUseFailure", "tool_name": "Bash", "session_id": sid,
                     "tool_input": {"command": "make deploy"}, "error": "Exit code 1\n" + group})
            ds.hook({"hook_event_name": "SubagentStop", "session_id": sid, "agent_type": "Explore",
                     "last_assistant_message": "Found this in the config:\n" + group})
            ds.hook({"hook_event_name": "PostToolUse", "tool_name": "Bash", "session_id": sid,
                     "tool_input": {"command": "./deploy.sh"},
                     "tool_response": {"stdout": "", "stderr": group, "exit_code": 1}})
            ds.hook({"hook_event_name": "PreCompact", "trigger": "auto", "session_id": sid})
            ds.hook({"hook_event_name": "SessionEnd", "reason": "other", "session_id": sid})
        write_transcript(tmp_path / "t.jsonl", texts, ds.project_dir)
        ds.cli("import-transcripts", str(tmp_path / "t.jsonl"), check=True)
        key = ds.sql("SELECT key FROM projects LIMIT 1")[0][0]
        write_export(tmp_path / "e.jsonl", texts, key)
        ds.cli("import", str(tmp_path / "e.jsonl"), check=True)
        (tmp_path / "plan.md").write_text("".join(f"- [ ] {' '.join(t.split())[:300]}\n"
                                                  for t in texts))
        ds.cli("plan", "--from", str(tmp_path / "plan.md"), check=True)
        # not JSON, with secrets inside: the error path logs, and must not log them
        ds.hook(("{broken " + texts[0]).encode())
        ds.hook({"hook_event_name": "Stop", "session_id": "s0"})      # embeds inline
        ds.cli("embed", check=True)          # and whatever the hook's deadline left over
        for i in range(3):                                              # query embeddings too
            ds.hook({"hook_event_name": "UserPromptSubmit", "prompt": texts[i] + " again",
                     "session_id": "q"})
        embed_inputs = []
        for req in stub.requests_to("/api/embed"):
            inp = req["json"]["input"]
            embed_inputs.extend([inp] if isinstance(inp, str) else inp)
        bodies = "\n".join(r["body_text"] for r in stub.requests)
    assert len(embed_inputs) >= len(texts), "the embedder really ran"
    assert ds.sql("SELECT count(*) FROM embed_pending")[0][0] <= 3   # the three queries
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
