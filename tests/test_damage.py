"""A damaged database is never written again, hooks fall silent with one log line each, doctor
says what happened, and `devstream recover` salvages it into a new file where its memories are
found again.  A -wal of another database is set aside, not replayed.  A forgotten memory is gone
from the file."""
import contextlib
import glob
import hashlib
import json
import os
import shutil

import apsw

from conftest import assert_silent_success

WORDS = ["ledger", "invoice", "parser", "webhook", "retry", "cache", "schema", "tenant",
         "billing", "queue"]


def add_memories(ds, n):
    ids = []
    for i in range(n):
        text = f"note{i:03d} " + " ".join(WORDS[(i + k) % len(WORDS)] for k in range(5)) + \
            " " + "detail " * 40
        ids.append(ds.cli("memory", "add", text, check=True).stdout.strip())
    return ids


def digest(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def damage_a_leaf_page(db):
    conn = apsw.Connection(db)
    pages = list(conn.execute(
        "SELECT pageno, ncell FROM dbstat WHERE name='memories' AND pagetype='leaf' "
        "ORDER BY pageno"))
    size = conn.execute("PRAGMA page_size").fetchall()[0][0]
    conn.close()
    assert len(pages) >= 4, pages
    victim, cells = pages[len(pages) // 2]
    with open(db, "r+b") as fh:
        fh.seek((victim - 1) * size + 8)
        fh.write(os.urandom(size - 8))
    return cells


def test_damaged_store_is_left_alone_then_recovered(ds):
    ids = add_memories(ds, 60)
    assert not os.path.exists(ds.db + "-wal")
    on_the_page = damage_a_leaf_page(ds.db)
    doc = ds.cli("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(doc.stdout)["checks"]}
    assert doc.returncode == 1 and checks["database"]["status"] == "FAIL"
    assert "devstream recover" in checks["database"]["fix"]
    before = digest(ds.db)
    # from now on: hooks silent with one log line each, commands refuse in one line
    for payload in ({"hook_event_name": "UserPromptSubmit", "prompt": "ledger invoice parser"},
                    {"hook_event_name": "SessionStart", "source": "startup"},
                    {"hook_event_name": "PostToolUseFailure", "tool_name": "Bash",
                     "tool_input": {"command": "make"}, "error": "boom"}):
        n = len(ds.log_records())
        assert_silent_success(ds.hook(payload))
        recs = ds.log_records()[n:]
        assert len(recs) == 1 and "damaged" in recs[0]["error"], recs
    proc = ds.cli("memory", "add", "written to a damaged file?")
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1
    assert "devstream recover" in proc.stderr and "Traceback" not in proc.stderr
    assert digest(ds.db) == before, "a damaged database must never be written"
    doc = ds.cli("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(doc.stdout)["checks"]}
    assert "damaged" in checks["database"]["detail"], checks["database"]

    rec = ds.cli_json("recover")
    # everything but the memories whose page was overwritten
    assert rec["recovered"]["memories"] >= len(ids) - on_the_page
    assert rec["recovered"]["projects"] == 1
    assert len(rec["recovered"]) >= 2
    aside = rec["kept_aside"][0]
    assert os.path.exists(aside) and digest(aside) == before
    assert ds.sql("PRAGMA integrity_check")[0][0] == "ok"
    found = {m["id"] for m in ds.cli_json("memory", "list", "--limit", "500")}
    assert len(found) == rec["recovered"]["memories"] and found <= set(ids)
    hits = ds.cli_json("memory", "search", "ledger invoice parser webhook retry", "--limit", "50")
    assert hits and {h["id"] for h in hits} <= found
    doc = ds.cli("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(doc.stdout)["checks"]}
    assert checks["database"]["status"] == "PASS", checks["database"]
    # and it is written to again
    assert_silent_success(ds.hook({"hook_event_name": "UserPromptSubmit",
                                   "prompt": "after the recovery"}))
    assert ds.sql("SELECT count(*) FROM memories WHERE content='after the recovery'")[0][0] == 1


def test_a_wal_of_another_database_is_set_aside(ds, tmp_path):
    ds.cli("memory", "add", "the restored database's own memory", check=True)
    # another database with uncheckpointed changes in its -wal (page 1 among them)
    other = str(tmp_path / "other" / "devstream.db")
    env = dict(ds.env, DEVSTREAM_HOME=os.path.dirname(other))
    ds.cli("memory", "add", "from the other database", env=env, check=True)
    conn = apsw.Connection(other)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    for i in range(50):
        conn.execute("INSERT INTO projects(key, root, name, created_at) VALUES(?, 'r', 'n', 0)",
                     (f"k{i}" * 200,))
    shutil.copy(other + "-wal", ds.db + "-wal")
    conn.close()
    proc = ds.hook({"hook_event_name": "UserPromptSubmit", "prompt": "restored memory please"})
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    assert b"the restored database's own memory" in proc.stdout
    assert glob.glob(ds.db + "-wal.foreign-*")
    assert ds.sql("PRAGMA integrity_check")[0][0] == "ok"
    contents = {r[0] for r in ds.sql("SELECT content FROM memories")}
    assert "the restored database's own memory" in contents
    assert "restored memory please" in contents
    assert not [r for r in ds.log_records() if r["level"] == "error"]


@contextlib.contextmanager
def another_process_holding_a_wal(ds):
    """Another connection has the database open; its WAL holds an older image of page 1 with
    another identity (as a WAL that began before the identity migration does), then the current
    one, then a row of its own.  Yields that connection."""
    ds.cli("memory", "add", "written before the other process opened it", check=True)
    ident = ds.sql("PRAGMA application_id")[0][0]
    conn = apsw.Connection(ds.db)
    try:
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(f"PRAGMA application_id={ident ^ 0x5A5A}")
        conn.execute(f"PRAGMA application_id={ident}")
        conn.execute("INSERT INTO projects(key, root, name, created_at) "
                     "VALUES('held-open', 'r', 'n', 0)")
        yield conn
    finally:
        conn.close()
    assert ds.sql("PRAGMA integrity_check")[0][0] == "ok"


def assert_a_hook_reads_through_the_live_wal(ds):
    """A hook run now answers from the database and leaves the other connection's WAL alone."""
    proc = ds.hook({"hook_event_name": "UserPromptSubmit",
                    "prompt": "what was written before the other process opened it?"})
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    assert not glob.glob(ds.db + "-wal.foreign-*")
    assert b"written before the other process opened it" in proc.stdout
    assert ds.sql("SELECT count(*) FROM projects WHERE key='held-open'")[0][0] == 1


def test_a_live_wal_with_a_page_one_frame_being_written_is_not_set_aside(ds):
    """Another process is writing a transaction that changes page 1: the frame's header is in
    the WAL, its page not yet (still zeros, no identity).  Only committed images count: the hook
    must not take the live WAL for another database's and lose what it holds."""
    with another_process_holding_a_wal(ds):
        with open(ds.db + "-wal", "r+b") as fh:
            header = fh.read(32)
            page = int.from_bytes(header[8:12], "big")
            fh.seek(0, 2)
            # page 1, no commit yet, this WAL's salts; the page itself not written yet
            fh.write((1).to_bytes(4, "big") + bytes(4) + header[16:24] + bytes(8) + bytes(page))
        assert_a_hook_reads_through_the_live_wal(ds)


def test_a_live_wal_whose_older_header_image_differs_is_not_set_aside(ds):
    """The other process's WAL holds an older image of page 1 with another identity and then the
    current one.  The hook must read through it, not set it aside and lose what it holds."""
    with another_process_holding_a_wal(ds):
        assert_a_hook_reads_through_the_live_wal(ds)


def test_a_forgotten_memory_is_gone_from_the_file(ds):
    ds.cli("memory", "add", "a note that stays", check=True)
    mid = ds.cli("memory", "add", "zanzibarquokka password hint for the staging box",
                 check=True).stdout.strip()
    ds.cli("memory", "add", "another note that stays", check=True)
    ds.cli("memory", "forget", mid, check=True)
    for path in glob.glob(ds.db + "*"):
        with open(path, "rb") as fh:
            assert b"zanzibarquokka" not in fh.read(), path


def test_a_big_store_is_upgraded_in_the_background_not_in_a_hook(ds):
    """A hook that finds the schema behind on a store too big to upgrade within its deadline
    returns at once and leaves the upgrade to a detached process, which then stores what that
    hook captured; hooks after it work."""
    import time

    import devstream
    old = devstream.Store(ds.db, migrate=False)
    old.migrate(target=devstream.SCHEMA_VERSION - 1)
    with old.write():
        pid = old.project_id(devstream.find_project(ds.project_dir))
        old.execute("INSERT INTO memories(rowid, id, project_id, type, content, created_at, "
                    "content_hash) VALUES(?, 'm-bigbig', ?, 'note', 'a memory far down the "
                    "store', 0, 'x')", (devstream.MIGRATE_IN_HOOK_MAX + 1, pid))
    old.close()
    token = "ghp_" + "Zq7Lm2Xv9Rt4Kp8Wd3Hs6Jb1Nc5Fg0Ty2Ua4"
    proc = ds.hook({"hook_event_name": "UserPromptSubmit",
                    "prompt": f"first prompt during the upgrade, with token {token}"})
    assert_silent_success(proc)
    proc = ds.hook({"hook_event_name": "PostToolUse", "tool_name": "Bash",
                    "tool_input": {"command": "make deploy-during-upgrade"},
                    "tool_response": {"stdout": "deployed", "stderr": "", "exit_code": 0}})
    assert_silent_success(proc)
    assert any(r["event"] == "hook.store_unavailable" and "background" in r.get("error", "")
               for r in ds.log_records())
    deadline = time.time() + 30
    while ds.sql("PRAGMA user_version")[0][0] < devstream.SCHEMA_VERSION:
        assert time.time() < deadline, "the background upgrade did not run"
        time.sleep(0.1)
    # what the hooks captured during the upgrade was kept and is stored once it is done,
    # redacted (the kept events never held the token either)
    while ds.sql("SELECT count(*) FROM memories WHERE content LIKE '%during the upgrade%' OR "
                 "content LIKE '%deploy-during-upgrade%'")[0][0] < 2:
        assert time.time() < deadline, "the deferred events were not replayed"
        time.sleep(0.1)
    for path in glob.glob(os.path.join(ds.home, "**"), recursive=True):
        if os.path.isfile(path):
            with open(path, "rb") as fh:
                assert token.encode() not in fh.read(), path
    proc = ds.hook({"hook_event_name": "UserPromptSubmit", "prompt": "a prompt once upgraded"})
    assert proc.returncode == 0
    assert ds.sql("SELECT count(*) FROM memories WHERE content LIKE 'a prompt once upgraded%'"
                  )[0][0] == 1
    assert not os.listdir(os.path.join(ds.home, "deferred"))


def test_a_stop_replays_events_an_upgrade_left_behind(ds):
    """A kept event that no upgrade replayed (its process died, or the hook raced it) is stored
    once a later Stop finds it."""
    import time
    ds.hook({"hook_event_name": "SessionStart", "source": "startup"})
    folder = os.path.join(ds.home, "deferred")
    os.makedirs(folder, mode=0o700)
    with open(os.path.join(folder, "00000000000000000001-1.json"), "w") as fh:
        json.dump({"cli": "claude", "payload": {
            "hook_event_name": "UserPromptSubmit", "session_id": "s-left",
            "cwd": str(ds.project_dir), "prompt": "a prompt left behind by an upgrade"}}, fh)
    assert_silent_success(ds.hook({"hook_event_name": "Stop"}))
    deadline = time.time() + 30
    while ds.sql("SELECT count(*) FROM memories WHERE content = "
                 "'a prompt left behind by an upgrade'")[0][0] != 1:
        assert time.time() < deadline, "the left-over event was not replayed"
        time.sleep(0.1)
    while os.listdir(folder):
        assert time.time() < deadline, "the replayed event's file is still there"
        time.sleep(0.1)
