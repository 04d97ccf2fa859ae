"""Bad input and faults: every case exits 0, prints nothing, logs one line, never a traceback."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import assert_silent_success, load_payload

START = {"hook_event_name": "SessionStart", "source": "startup"}


def one_new_log_line(before, after):
    assert len(after) == len(before) + 1, after[len(before):]
    rec = after[-1]
    assert {"event", "level", "timestamp"} <= set(rec)
    return rec


BAD_INPUTS = {
    "empty stdin": b"",
    "whitespace only": b"  \n\t",
    "not JSON": b"this is not json {",
    "a JSON array": b'[{"hook_event_name": "SessionStart"}]',
    "a JSON string": b'"SessionStart"',
    "missing hook_event_name": json.dumps({"session_id": "x", "cwd": "/tmp"}).encode(),
    "hook_event_name not a string": json.dumps({"hook_event_name": 7}).encode(),
    "invalid UTF-8": b'{"hook_event_name": "UserPromptSubmit", "prompt": "\xff\xfe bad"}',
    "truncated JSON": b'{"hook_event_name": "SessionStart", "session_id": "ab',
    "deeply nested": b"[" * 100000 + b"]" * 100000,
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_dropped_with_one_log_line(ds, name):
    before = ds.log_records()
    proc = ds.hook(BAD_INPUTS[name])
    assert_silent_success(proc)
    rec = one_new_log_line(before, ds.log_records())
    assert rec["level"] in ("warning", "error")
    assert not os.path.exists(ds.db), "bad input must not even open the database"


def test_unknown_event_is_a_logged_no_op(ds):
    ds.env["DEVSTREAM_LOG_LEVEL"] = "info"
    proc = ds.hook({"hook_event_name": "SomeFutureEvent", "whatever": [1, 2]})
    assert_silent_success(proc)
    recs = ds.log_records()
    assert len(recs) == 1 and recs[0]["event"] == "hook.ignored_event"
    assert recs[0]["hook_event"] == "SomeFutureEvent"


def test_ten_megabyte_payload(ds):
    payload = load_payload("PostToolUse__CoorpAcademy-serverless-plugins__Write.json")
    payload["cwd"] = ds.project_dir
    payload["tool_input"]["content"] = "x = 1\n" * (10 * 1024 * 1024 // 6)
    raw = json.dumps(payload).encode()
    assert len(raw) > 10 * 1024 * 1024
    proc = ds.hook(raw)
    assert_silent_success(proc)
    ds.hook(dict(START, session_id="after-big"))
    assert ds.sql("SELECT count(*) FROM sessions WHERE id='after-big'")[0][0] == 1


def test_disabled_hooks_do_nothing(ds):
    proc = ds.hook(START, env={"DEVSTREAM_DISABLE": "1"})
    assert_silent_success(proc)
    assert not os.path.exists(ds.db)


def test_unwritable_data_directory(ds, tmp_path):
    # a data directory that cannot be created (its parent is a file) fails the same way as one
    # without write permission, and also works when the tests run as root
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory should be")
    env = {"DEVSTREAM_HOME": str(blocker / "ds")}
    proc = ds.hook(START, env=env)
    assert proc.returncode == 0 and proc.stdout == b""
    err = proc.stderr.decode()
    assert "Traceback" not in err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err        # the log itself is unwritable, so the line goes to stderr
    rec = json.loads(lines[0])
    assert rec["event"] == "hook.store_unavailable"


def test_corrupt_database_is_left_alone_and_doctor_reports_it(ds):
    os.makedirs(ds.home, exist_ok=True)
    garbage = b"this is not an SQLite database" * 1000
    with open(ds.db, "wb") as fh:
        fh.write(garbage)
    before = ds.log_records()
    proc = ds.hook(START)
    assert_silent_success(proc)
    rec = one_new_log_line(before, ds.log_records())
    assert "damaged" in rec["error"]
    with open(ds.db, "rb") as fh:
        assert fh.read() == garbage, "a corrupt database must not be overwritten"
    doc = ds.cli("doctor", "--json")
    assert doc.returncode == 1
    checks = {c["name"]: c for c in json.loads(doc.stdout)["checks"]}
    assert checks["database"]["status"] == "FAIL"
    assert "damaged" in checks["database"]["detail"]
    assert "devstream recover" in checks["database"]["fix"]


LOCK_HOLDER = r"""
import sys, apsw
conn = apsw.Connection(sys.argv[1])
conn.setbusytimeout(5000)
conn.execute("BEGIN EXCLUSIVE")
conn.execute("INSERT INTO projects(key, root, name, created_at) VALUES('held','held','held',0)")
print("locked", flush=True)
sys.stdin.readline()          # hold the lock until the test says so
conn.execute("COMMIT")
"""


class held_lock:
    """Another process holds the database's write lock until the block ends."""

    def __init__(self, db):
        import apsw
        self.proc = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, db],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=dict(os.environ, PYTHONPATH=os.path.dirname(
                                         os.path.dirname(apsw.__file__))))

    def __enter__(self):
        assert self.proc.stdout.readline().strip() == "locked"
        return self

    def __exit__(self, *exc):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=30)


def test_database_held_by_another_writer_past_the_deadline(ds):
    ds.hook(dict(START, session_id="first"))
    with open(os.path.join(ds.home, "config.toml"), "w") as fh:
        fh.write("hook_deadline_ms = 800\n")
    with held_lock(ds.db):
        before = ds.log_records()
        # the lock is held until after the hook returns, so a hook that waited for the lock
        # instead of giving up at its deadline would never return (and trip the hang guard)
        proc = ds.hook(dict(START, session_id="second"))
        assert_silent_success(proc)
        warned = [r for r in ds.log_records()[len(before):] if r["level"] != "info"]
        assert [r["event"] for r in warned] == ["hook.locked_out"]
        assert "kept" in warned[0]["error"]
        assert len(os.listdir(os.path.join(ds.home, "deferred"))) == 1
        assert ds.sql("SELECT id FROM sessions") == [("first",)]
    # once the lock is free, the kept event is stored, and its file is gone
    deadline = time.time() + 30
    while ("second",) not in ds.sql("SELECT id FROM sessions"):
        assert time.time() < deadline, "the event locked out was never stored"
        time.sleep(0.1)
    while os.listdir(os.path.join(ds.home, "deferred")):
        assert time.time() < deadline, "the stored event's file is still kept"
        time.sleep(0.1)
    ids = {r[0] for r in ds.sql("SELECT id FROM sessions")}
    assert "first" in ids, "nothing already stored may be lost"


def test_an_event_locked_out_of_a_schema_upgrade_is_kept_and_stored_after(ds):
    """The first hook of a new release upgrades a small store itself; when another process holds
    the lock past the deadline, its event is kept like any locked-out one, not lost."""
    import devstream
    old = devstream.Store(ds.db, migrate=False)
    old.migrate(target=devstream.SCHEMA_VERSION - 1)
    old.close()
    with open(os.path.join(ds.home, "config.toml"), "w") as fh:
        fh.write("hook_deadline_ms = 800\n")
    with held_lock(ds.db):
        before = ds.log_records()
        proc = ds.hook({"hook_event_name": "UserPromptSubmit", "session_id": "during",
                        "prompt": "a prompt sent while the upgrade was locked out"})
        assert_silent_success(proc)
        warned = [r for r in ds.log_records()[len(before):] if r["level"] != "info"]
        assert [r["event"] for r in warned] == ["hook.locked_out"]
    deadline = time.time() + 30
    while ds.sql("SELECT count(*) FROM memories WHERE content = "
                 "'a prompt sent while the upgrade was locked out'") != [(1,)]:
        assert time.time() < deadline, "the event locked out of the upgrade was never stored"
        time.sleep(0.1)
    assert ds.sql("PRAGMA user_version") == [(devstream.SCHEMA_VERSION,)]


def test_context_goes_out_when_its_record_cannot_be_written(ds):
    """PreToolUse writes once, to record what it shows; with the lock held past the deadline
    the agent still gets what is known about the file, and the log says what was not kept."""
    ledger = os.path.join(ds.project_dir, "ledger.py")
    ds.hook({"hook_event_name": "PostToolUse", "tool_name": "Edit", "session_id": "earlier",
             "tool_input": {"file_path": ledger, "old_string": "total = round(x)",
                            "new_string": "total = int(x * 100)  # integer cents"},
             "tool_response": {}})
    with open(os.path.join(ds.home, "config.toml"), "w") as fh:
        fh.write("hook_deadline_ms = 800\n")
    with held_lock(ds.db):
        before = ds.log_records()
        proc = ds.hook({"hook_event_name": "PreToolUse", "tool_name": "Edit", "session_id": "now",
                        "tool_input": {"file_path": ledger, "old_string": "a", "new_string": "b"}})
        rec = one_new_log_line(before, ds.log_records())
    assert proc.returncode == 0 and not proc.stderr
    ctx = json.loads(proc.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "ledger.py" in ctx and "integer cents" in ctx
    assert rec["event"] == "hook.shown_unrecorded" and "locked" in rec["error"]
    assert ds.sql("SELECT count(*) FROM injections WHERE session_id='now'") == [(0,)]


def _limit_file_size():
    import resource
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_full_disk(ds):
    ds.hook(dict(START, session_id="before-full"))
    os.unlink(ds.log_path) if os.path.exists(ds.log_path) else None
    # every file write past 4 KiB fails with EFBIG, as on a full disk
    proc = ds.hook(dict(START, session_id="during-full"), preexec_fn=_limit_file_size)
    assert proc.returncode == 0 and proc.stdout == b""
    assert b"Traceback" not in proc.stderr
    logged = ds.log_records() + [json.loads(l) for l in proc.stderr.decode().splitlines() if l]
    assert len(logged) == 1, logged
    assert ds.sql("PRAGMA integrity_check")[0][0] == "ok"
    ids = {r[0] for r in ds.sql("SELECT id FROM sessions")}
    assert "before-full" in ids


def test_gemini_events_are_mapped_and_answered_under_their_own_name(ds):
    ds.cli("memory", "add", "--type", "decision", "the ledger keeps integer cents", check=True)
    proc = ds.hook({"hook_event_name": "BeforeAgent", "prompt": "ledger integer cents?",
                    "session_id": "g1"}, cli="gemini")
    out = json.loads(proc.stdout)["hookSpecificOutput"]
    assert out["hookEventName"] == "BeforeAgent" and "integer cents" in out["additionalContext"]
    ds.hook({"hook_event_name": "AfterTool", "tool_name": "run_shell_command", "session_id": "g1",
             "tool_input": {"command": "make migrate"},
             "tool_response": {"stdout": "ok", "stderr": ""}}, cli="gemini")
    assert ds.sql("SELECT content FROM memories WHERE type='command'") == [("$ make migrate\n(exit 0)",)]


def test_session_end_deadline_is_shorter(ds):
    """A SessionEnd that cannot get the database gives up inside Claude Code's 1.5 s budget:
    the lock is held past the hook's return, so waiting for it would trip the hang guard."""
    ds.hook(dict(START, session_id="first"))
    with held_lock(ds.db):
        proc = ds.hook({"hook_event_name": "SessionEnd", "session_id": "first", "reason": "other"})
        assert_silent_success(proc)
        rec = ds.log_records()[-1]
        assert rec["event"] in ("hook.store_unavailable", "hook.deadline", "hook.locked_out")
        # gave up on its own 1.2 s deadline: the busy wait was bounded by it
        assert "locked" in rec.get("error", "") or rec["event"] == "hook.deadline"
