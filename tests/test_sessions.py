"""Sessions and continuity end to end through the hook, transcripts, export/import, gc."""
import json
import os
import shutil

import pytest

from conftest import FIXTURES, assert_silent_success

TRANSCRIPTS = os.path.join(FIXTURES, "transcripts")


def ctx(proc):
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    return json.loads(proc.stdout)["hookSpecificOutput"]["additionalContext"] \
        if proc.stdout.strip() else ""


def work(ds, sid, cwd=None):
    base = {"session_id": sid}
    if cwd:
        base["cwd"] = cwd
    ds.hook(dict(base, hook_event_name="SessionStart", source="startup"))
    ds.hook(dict(base, hook_event_name="UserPromptSubmit",
                 prompt="make the invoice totals use Decimal"))
    ds.hook(dict(base, hook_event_name="PostToolUse", tool_name="Edit",
                 tool_input={"file_path": os.path.join(cwd or ds.project_dir, "billing.py"),
                             "old_string": "float(total)", "new_string": "Decimal(total)"},
                 tool_response={}))
    ds.hook(dict(base, hook_event_name="PostToolUseFailure", tool_name="Bash",
                 tool_input={"command": "pytest tests/test_billing.py"},
                 error="Exit code 1\nFAILED tests/test_billing.py::test_total - TypeError"))


@pytest.mark.parametrize("reason", ["clear", "logout", "prompt_input_exit", "other", "resume"])
def test_session_end_writes_a_summary_for_every_reason(ds, reason):
    work(ds, "s1")
    assert_silent_success(ds.hook({"hook_event_name": "SessionEnd", "session_id": "s1",
                                   "reason": reason}))
    status, end_reason, summary_id = ds.sql("SELECT status, end_reason, summary_id FROM sessions "
                                            "WHERE id='s1'")[0]
    assert (status, end_reason) == ("ended", reason)
    content = ds.sql("SELECT content FROM memories WHERE id=? AND type='summary'",
                     (summary_id,))[0][0]
    assert "billing.py" in content and "Decimal" in content and "Failed:" in content
    assert reason in content.splitlines()[0]


@pytest.mark.parametrize("source", ["startup", "clear"])
def test_next_session_starts_with_the_last_summary(ds, source):
    work(ds, "old")
    ds.hook({"hook_event_name": "SessionEnd", "session_id": "old", "reason": "other"})
    summary_id = ds.sql("SELECT summary_id FROM sessions WHERE id='old'")[0][0]
    sid = "new"
    text = ctx(ds.hook({"hook_event_name": "SessionStart", "session_id": sid, "source": source}))
    assert "### Last session" in text and summary_id in text and "billing.py" in text
    assert ds.sql("SELECT status FROM sessions WHERE id=?", (sid,)) == [("active",)]


def test_a_resumed_session_is_not_shown_its_own_summary_again(ds):
    # Claude Code replays a resumed session's earlier hook context from its transcript
    work(ds, "old")
    ds.hook({"hook_event_name": "SessionEnd", "session_id": "old", "reason": "other"})
    own = ds.sql("SELECT summary_id FROM sessions WHERE id='old'")[0][0]
    out = ds.hook({"hook_event_name": "SessionStart", "session_id": "old", "source": "resume"})
    assert own not in out.stdout.decode()
    assert ds.sql("SELECT status, resumes FROM sessions WHERE id='old'") == [("active", 1)]


def test_compaction_snapshot_comes_back(ds):
    work(ds, "s1")
    for trigger in ("manual", "auto"):
        assert_silent_success(ds.hook({"hook_event_name": "PreCompact", "session_id": "s1",
                                       "trigger": trigger, "custom_instructions": ""}))
    assert ds.sql("SELECT trigger FROM session_snapshots ORDER BY at") == [("manual",), ("auto",)]
    text = ctx(ds.hook({"hook_event_name": "SessionStart", "session_id": "s1", "source": "compact"}))
    assert "### This session before compaction" in text and "trigger auto" in text
    assert "billing.py" in text and "make the invoice totals use Decimal" in text
    assert ds.sql("SELECT compactions FROM sessions WHERE id='s1'") == [(1,)]


def test_a_session_without_session_end_is_summarised_at_the_next_start(ds):
    work(ds, "crashed")
    ds.sql("UPDATE sessions SET last_seen_at = last_seen_at - 7200 WHERE id='crashed'")
    text = ctx(ds.hook({"hook_event_name": "SessionStart", "session_id": "next",
                        "source": "startup"}))
    status, reason, sid = ds.sql("SELECT status, end_reason, summary_id FROM sessions "
                                 "WHERE id='crashed'")[0]
    assert status == "ended" and reason == "no SessionEnd" and sid
    assert sid in text


def test_nothing_leaks_between_projects(ds, tmp_path):
    a, b = tmp_path / "alpha", tmp_path / "beta"
    a.mkdir()
    b.mkdir()
    work(ds, "sa", cwd=str(a))
    ds.hook({"hook_event_name": "SessionEnd", "session_id": "sa", "reason": "other", "cwd": str(a)})
    ds.cli("memory", "add", "--type", "decision", "alpha uses integer cents", cwd=str(a), check=True)
    ds.cli("task", "add", "alpha task", cwd=str(a), check=True)
    text = ctx(ds.hook({"hook_event_name": "SessionStart", "session_id": "sb", "source": "startup",
                        "cwd": str(b)}))
    assert "alpha" not in text and "integer cents" not in text and "Session" not in text
    assert "Nothing is recorded for this project yet." in text   # only the how-to block
    prompt = ctx(ds.hook({"hook_event_name": "UserPromptSubmit", "session_id": "sb", "cwd": str(b),
                          "prompt": "invoice totals Decimal billing.py integer cents"}))
    assert prompt == ""
    assert ds.cli_json("task", "ready", cwd=str(b)) == []
    assert ds.cli_json("session", "list", cwd=str(b)) == [] or \
        [s["id"] for s in ds.cli_json("session", "list", cwd=str(b))] == ["sb"]


def test_session_list_and_show(ds):
    work(ds, "s1")
    ds.hook({"hook_event_name": "SessionEnd", "session_id": "s1", "reason": "logout"})
    listed = ds.cli_json("session", "list")
    assert [s["id"] for s in listed] == ["s1"] and listed[0]["prompts"] == 1
    shown = ds.cli_json("session", "show", "s1")
    assert shown["files"] == ["billing.py"] and shown["end_reason"] == "logout"
    assert "billing.py" in shown["summary"]


def copy_fixture(tmp_path, name):
    dst = tmp_path / name
    shutil.copy(os.path.join(TRANSCRIPTS, name), dst)
    return dst


def test_import_transcripts_from_real_sessions(ds, tmp_path):
    names = ["marot__spotter__short.jsonl", "marot__spotter__tool_heavy.jsonl",
             "kesslerio__attio-mcp-server__logs-chat.jsonl",
             "git-ai-project__git-ai__example-claude-code.jsonl",
             "d-kimuson__claude-code-viewer__1af7fc5e-8455-4414-9ccd-011d40f70b2a.jsonl"]
    paths = [str(copy_fixture(tmp_path, n)) for n in names]
    first = ds.cli_json("import-transcripts", *paths)
    assert first["sessions"] >= 5 and first["memories"] > 20
    again = ds.cli_json("import-transcripts", *paths)
    assert again["sessions"] == 0 and again["memories"] == 0
    types = dict(ds.sql("SELECT type, count(*) FROM memories GROUP BY type"))
    assert types["prompt"] > 0 and types["summary"] >= 5 and types.get("error", 0) > 0
    # every imported session in which something was recorded has its summary; one where nothing
    # was has none (no "nothing recorded" summary shown at every session start)
    n_sessions = ds.sql("SELECT count(*) FROM sessions s WHERE imported=1 AND EXISTS (SELECT 1 "
                        "FROM memories m WHERE m.session_id = s.id)")[0][0]
    assert n_sessions == types["summary"]
    assert ds.sql("SELECT count(*) FROM memories WHERE type='summary' AND content LIKE "
                  "'%No prompts, edits or commands were recorded%'")[0][0] == 0
    # the user's first prompt of the short session is a memory; the assistant's prose is not
    assert ds.sql("SELECT count(*) FROM memories WHERE content = "
                  "'mix phx.server doesnt seem to start'") == [(1,)]
    raw = open(os.path.join(TRANSCRIPTS, names[0])).read()
    assert ds.sql("SELECT count(*) FROM memories WHERE type='subagent'") == [(0,)]
    assert "thinking" not in " ".join(r[0] for r in ds.sql("SELECT content FROM memories"))[:0]
    listed = ds.cli_json("session", "list", "--limit", "50")
    assert all(s["imported"] for s in listed)
    assert raw  # the transcript itself is never stored: only memories derived from it


def test_truncated_and_corrupt_transcripts_are_reported_not_fatal(ds, tmp_path):
    good = copy_fixture(tmp_path, "marot__spotter__tool_heavy.jsonl")
    truncated = tmp_path / "truncated.jsonl"
    text = open(os.path.join(TRANSCRIPTS, "marot__spotter__short.jsonl")).read()
    truncated.write_text(text + '{"type":"user","message":{"role":"user","content":"half')
    corrupt = tmp_path / "corrupt.jsonl"
    corrupt.write_bytes(b"\x00\xff garbage \x89PNG\r\n" * 50)
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text('{"type":"some-future-line","sessionId":"zz","timestamp":"2026-01-01T00:00:00Z"}\n')
    proc = ds.cli("import-transcripts", str(truncated), str(corrupt), str(good), str(unknown),
                  "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["sessions"] == 2
    assert any("truncated.jsonl" in p and "1 unreadable line" in p for p in out["problems"])
    assert any("corrupt.jsonl" in p for p in out["problems"])
    assert "truncated.jsonl" in proc.stderr and "Traceback" not in proc.stderr


def test_default_transcripts_location(ds):
    claude_dir = os.path.join(ds.tmp, "claude-config")
    enc = "".join(c if c.isalnum() else "-" for c in os.path.realpath(ds.project_dir))
    folder = os.path.join(claude_dir, "projects", enc)
    os.makedirs(folder)
    shutil.copy(os.path.join(TRANSCRIPTS, "marot__spotter__short.jsonl"),
                os.path.join(folder, "55604662.jsonl"))
    out = ds.cli_json("import-transcripts", env={"CLAUDE_CONFIG_DIR": claude_dir})
    assert out["sessions"] == 1
    empty = ds.cli("import-transcripts", env={"CLAUDE_CONFIG_DIR": os.path.join(ds.tmp, "none")})
    assert empty.returncode == 1 and "no Claude Code transcripts" in empty.stderr


def populate_everything(ds):
    work(ds, "s1")
    ds.hook({"hook_event_name": "SessionEnd", "session_id": "s1", "reason": "other"})
    a = ds.cli("task", "add", "first", "--label", "x", check=True).stdout.strip()
    b = ds.cli("task", "add", "second", "--after", a, "--estimate", "10", check=True).stdout.strip()
    ds.cli("task", "start", a, check=True)
    ds.cli("memory", "add", "--type", "decision", "--tag", "t1", "keep cents", check=True)
    ds.cli("task", "done", a, check=True)
    return a, b


def test_export_import_round_trip_is_byte_identical(ds, tmp_path, hook_argv):
    from conftest import DevStream
    populate_everything(ds)
    first = tmp_path / "one.jsonl"
    ds.cli("export", "-o", str(first), check=True)
    other = DevStream(tmp_path / "second-home", hook_argv)
    other.cli("import", str(first), check=True)
    second = tmp_path / "two.jsonl"
    other.cli("export", "-o", str(second), check=True)
    assert first.read_bytes() == second.read_bytes()
    kinds = {json.loads(l)["kind"] for l in first.read_text().splitlines()}
    assert kinds == {"devstream-export", "project", "session", "memory", "task", "dependency",
                     "task_event"}
    twice = other.cli_json("import", str(first))
    assert twice["action"] == "import" and twice["problems"] == []
    assert all(v == 0 for k, v in twice.items() if k not in ("action", "dry_run", "problems"))
    third = tmp_path / "three.jsonl"
    other.cli("export", "-o", str(third), check=True)
    assert third.read_bytes() == first.read_bytes()
    stdout = other.cli("export", check=True).stdout
    assert stdout.encode() == first.read_bytes()


def test_malformed_import_names_the_line_and_imports_nothing(ds, tmp_path):
    populate_everything(ds)
    good = tmp_path / "good.jsonl"
    ds.cli("export", "-o", str(good), check=True)
    lines = good.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines[:5] + ['{"kind": "memory", "id": "m-x"'] + lines[5:]) + "\n")
    from conftest import DevStream
    other = DevStream(tmp_path / "fresh", ds.hook_argv)
    proc = other.cli("import", str(bad))
    assert proc.returncode == 1 and "line 6" in proc.stderr and "nothing was imported" in proc.stderr
    if os.path.exists(other.db):
        assert other.sql("SELECT count(*) FROM memories") == [(0,)]
        assert other.sql("SELECT count(*) FROM projects") == [(0,)]


def test_gc_by_age_and_count_spares_unfinished_tasks(ds):
    for i in range(4):
        ds.cli("memory", "add", f"old note {i}", check=True)
    t = ds.cli("task", "add", "long running", check=True).stdout.strip()
    ds.cli("task", "start", t, check=True)
    ds.cli("memory", "add", "noted while the task runs", check=True)
    ds.sql("UPDATE memories SET created_at = created_at - 400 * 86400")
    out = ds.cli_json("gc", "--older-than", "30")
    assert out["memories"] == 4 and out["by_type"] == {"note": 4}
    assert [r[0] for r in ds.sql("SELECT content FROM memories")] == ["noted while the task runs"]
    ds.cli("task", "block", t, "--reason", "waiting", check=True)     # still unfinished
    ds.cli("memory", "add", "fresh one", check=True)
    ds.cli("memory", "add", "fresh two", check=True)
    out = ds.cli_json("gc", "--keep", "1", "--vacuum")
    assert out == {"action": "gc", "dry_run": False, "memories": 1, "by_type": {"note": 1},
                   "vacuumed": True, "problems": []}
    left = sorted(r[0] for r in ds.sql("SELECT content FROM memories"))
    assert left == ["fresh two", "noted while the task runs"]
    assert ds.sql("SELECT id, status FROM tasks") == [(t, "blocked")]
    assert ds.sql("PRAGMA integrity_check") == [("ok",)]


def test_richer_summary_from_the_chat_model_replaces_the_deterministic_one(ds):
    import time
    from ollama_stub import OllamaStub
    with OllamaStub(models={"embeddinggemma": 768, "llama3.2": None}) as stub:
        stub.chat_reply = "Moved invoice totals to Decimal in billing.py; test_total still fails."
        ds.env.update(DEVSTREAM_OLLAMA_URL=stub.url, DEVSTREAM_CHAT_MODEL="llama3.2",
                      DEVSTREAM_EMBED_MODE="background")
        work(ds, "s1")
        proc = ds.hook({"hook_event_name": "SessionEnd", "session_id": "s1", "reason": "other"})
        assert_silent_success(proc)
        for _ in range(100):
            rows = ds.sql("SELECT m.content FROM sessions s JOIN memories m ON m.id = s.summary_id")
            if rows and "still fails" in rows[0][0]:
                break
            time.sleep(0.1)
        assert "test_total still fails" in rows[0][0]
        assert ds.sql("SELECT count(*) FROM memories WHERE type='summary'") == [(1,)]
        req = stub.requests_to("/api/chat")[0]["json"]
        assert req["stream"] is False and "billing.py" in req["messages"][-1]["content"]
