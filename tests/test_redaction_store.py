"""Redaction is enforced by the store: every text column, filled through every entry path a user
or an agent has, ends up without the secrets that went in.

The columns come from SQLite itself, so a column added later is either reached by these entry
paths (and must then be redacted) or must be named in INTERNAL with the reason it never holds
outside text."""
import glob
import json
import os
import random
import string

import apsw
import pytest

import devstream

# text columns that never hold text from outside DevStream (generated, validated or hashed)
INTERNAL = {
    "memories.type": "validated against MEMORY_TYPES",
    "memories.content_hash": "a hash of the redacted content",
    "tasks.status": "validated against TASK_STATUSES",
    "injections.event": "the hook event's name, from a fixed set",
    "breaker.name": "a constant", "breaker.state": "the breaker's own state",
    "state.key": "DevStream's own keys", "state.value": "DevStream's own values",
    "embed_spaces.model": "the configured model name",
    "query_cache.key": "a hash of the query",
    "term_counts.term": "words of the keyword index (memories_fts, built from redacted "
                        "content), and only those in 64 memories or more",
    "session_snapshots.trigger": "covered by content; the trigger is 'manual' or 'auto'",
    "injections.item": "ids of memories and tasks, as stored",
}


class Fakes:
    """Fresh fake secrets of many kinds (random at each run, the right shape for each kind)."""

    def __init__(self, seed=11):
        self.rng = random.Random(seed)
        self.made = []

    def _r(self, n, alphabet=string.ascii_letters + string.digits):
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def next(self):
        r, hexd = self._r, "0123456789abcdef"
        i = len(self.made)
        kinds = [
            lambda: "ghp_" + r(36),
            lambda: "AKIA" + r(16, string.ascii_uppercase + string.digits),
            lambda: "xoxb-" + r(11, string.digits) + "-" + r(12, string.digits) + "-" + r(24),
            lambda: "sk_live_" + r(32),
            lambda: "sk-proj-" + r(48),
            lambda: "glpat-" + r(20),
            lambda: str(self.rng.randint(10**8, 10**9)) + ":AA" + r(33),
            lambda: "AIza" + r(35),
            lambda: "npm_" + r(36),
            lambda: "hvs." + r(90),
            lambda: "dapi" + r(32, hexd),
            lambda: "SG." + r(22) + "." + r(43),
        ]
        secret = kinds[i % len(kinds)]()
        self.made.append(secret)
        return secret

    def prose(self):
        """A password that only its context gives away."""
        word = self._r(6, string.ascii_lowercase) + self._r(3, string.digits) + "!"
        self.made.append(word)
        return f"the password for the staging admin account is {word}"


def text_columns(db):
    conn = apsw.Connection(db)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND sql NOT LIKE 'CREATE VIRTUAL%'"
            " AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'memories_fts%' "
            "AND name NOT LIKE 'vec%'")]
        cols = []
        for t in tables:
            for row in conn.execute(f"PRAGMA table_xinfo({t})"):
                ctype = (row[2] or "").upper()
                if "TEXT" in ctype or "CHAR" in ctype or "CLOB" in ctype or ctype == "":
                    cols.append(f"{t}.{row[1]}")
        return cols
    finally:
        conn.close()


def column_values(ds, col):
    table, name = col.split(".")
    return [r[0] for r in ds.sql(f"SELECT {name} FROM {table} WHERE {name} IS NOT NULL")]


def transcript_lines(fk, sid, cwd):
    """A Claude Code transcript: prompts and tool calls (Bash, Edit, Write, a failure)."""
    ts = "2026-11-30T10:0{}:00.000Z"
    lines = [{"type": "user", "sessionId": sid, "cwd": cwd, "timestamp": ts.format(0),
              "message": {"role": "user", "content": "deploy with token " + fk.next()}}]
    tools = [
        ("Bash", {"command": "curl -H 'Authorization: Bearer " + fk.next() + "' https://api"},
         {"stdout": "export GITHUB_TOKEN=" + fk.next(), "stderr": "", "exit_code": 0}, False),
        ("Edit", {"file_path": cwd + "/src/app.py", "old_string": "KEY = None",
                  "new_string": "KEY = '" + fk.next() + "'"}, {}, False),
        ("Write", {"file_path": cwd + "/deploy.sh", "content": "sshpass -p '" + fk.prose()[-10:]
                   + "' ssh root@host\n" + "export STRIPE=" + fk.next()}, {"type": "create"},
         False),
        ("Bash", {"command": "make release"}, None, True),
    ]
    for n, (name, tin, res, is_error) in enumerate(tools, 1):
        tid = f"toolu_{n}"
        lines.append({"type": "assistant", "sessionId": sid, "cwd": cwd,
                      "timestamp": ts.format(n), "message": {"role": "assistant", "content": [
                          {"type": "tool_use", "id": tid, "name": name, "input": tin}]}})
        content = "Exit code 2\nerror: upload failed, key " + fk.next() if is_error else "ok"
        rec = {"type": "user", "sessionId": sid, "cwd": cwd, "timestamp": ts.format(n),
               "message": {"role": "user", "content": [
                   {"type": "tool_result", "tool_use_id": tid, "content": content,
                    "is_error": is_error}]}}
        if res:
            rec["toolUseResult"] = res
        lines.append(rec)
    return lines


def export_lines(fk, project_key):
    """An export file with a secret in every text field a record kind has."""
    s = fk.next
    t1, t2 = "t-" + "a1b2c3", "t-" + "d4e5f6"
    recs = [
        {"kind": "devstream-export", "version": 1},
        {"kind": "project", "key": project_key, "root": "/srv/" + s(), "name": "p " + s(),
         "created_at": 1.0},
        {"kind": "project", "key": "/keys/" + s(), "root": "/r/" + s(), "name": "other " + s(),
         "created_at": 2.0},
        {"kind": "session", "id": "sess-" + s(), "project": project_key, "cli": "cli " + s(),
         "source": "src " + s(), "status": "st " + s(), "started_at": 1.0, "last_seen_at": 2.0,
         "end_reason": "reason " + s(), "summary_id": "m-" + s()},
        {"kind": "memory", "id": "m-" + s(), "project": project_key, "type": "note",
         "content": "imported note " + fk.prose(), "tags": ["t" + s(), fk.next()],
         "path": "cfg/" + s() + ".yml", "session_id": "sess-" + s(), "task_id": "t-" + s(),
         "created_at": 3.0},
        {"kind": "task", "id": t1, "project": project_key, "title": "rotate " + s(),
         "description": "old key was " + s() + "\n" + fk.prose(), "status": "blocked",
         "priority": 1, "parent": "t-" + s(), "labels": ["l-" + s(), s()],
         "block_reason": "waiting: " + fk.prose(), "created_at": 4.0, "updated_at": 5.0},
        {"kind": "task", "id": t2, "project": project_key, "title": "second", "status": "open",
         "priority": 2, "created_at": 4.0, "updated_at": 5.0},
        {"kind": "task", "id": "t-" + s(), "project": project_key, "title": "third",
         "status": "open", "priority": 2, "created_at": 4.0, "updated_at": 5.0},
        {"kind": "dependency", "task": "t-" + s(), "depends_on": "t-" + s()},
        {"kind": "task_event", "task": "t-" + s(), "at": 7.0, "to": "open"},
        {"kind": "task_event", "task": t1, "at": 6.0, "from": "from " + s(), "to": "to " + s(),
         "session_id": "sess-" + s(), "note": "note " + fk.prose()},
    ]
    return "\n".join(json.dumps(r) for r in recs) + "\n"


def test_every_text_column_is_redacted_on_every_entry_path(ds, tmp_path):
    fk = Fakes()
    ds.env["DEVSTREAM_LOG_LEVEL"] = "debug"
    # the command line
    ds.cli("memory", "add", "remember " + fk.next(), "--tag", fk.next(), "--tag",
           "password=" + fk.prose()[-10:], check=True)
    ds.cli("memory", "add", "--type", "decision", fk.prose(), check=True)
    tid = ds.cli("task", "add", "rotate " + fk.next(), "--description", fk.prose(), "--label",
                 fk.next(), check=True).stdout.strip()
    ds.cli("task", "block", tid, "--reason", "waiting on " + fk.next(), check=True)
    plan = tmp_path / "plan.md"
    plan.write_text(f"- [ ] revoke {fk.next()}\n  - [ ] tell ops {fk.prose()}\n")
    ds.cli("plan", "--from", str(plan), check=True)
    # the hooks, with a session id and a transcript path that carry secrets too
    sid = "s-" + fk.next()
    base = {"session_id": sid, "transcript_path": "/tmp/t/" + fk.next() + ".jsonl"}
    events = [
        {"hook_event_name": "SessionStart", "source": "startup"},
        {"hook_event_name": "UserPromptSubmit", "prompt": "use " + fk.next() + " and " +
         fk.prose()},
        {"hook_event_name": "PostToolUse", "tool_name": "Bash",
         "tool_input": {"command": "docker login -u ci -p " + fk.next() + " registry"},
         "tool_response": {"stdout": "token: " + fk.next(), "stderr": "", "exit_code": 1}},
        {"hook_event_name": "PostToolUse", "tool_name": "Edit",
         "tool_input": {"file_path": os.path.join(ds.project_dir, "app.py"),
                        "old_string": "x", "new_string": "API_KEY = '" + fk.next() + "'"},
         "tool_response": {}},
        {"hook_event_name": "PostToolUseFailure", "tool_name": "Bash",
         "tool_input": {"command": "make"}, "error": "Exit code 1\n" + fk.next()},
        {"hook_event_name": "SubagentStop", "agent_type": "Explore",
         "last_assistant_message": "found " + fk.next()},
        {"hook_event_name": "PreCompact", "trigger": "manual"},
        {"hook_event_name": "Stop"},
        {"hook_event_name": "SessionEnd", "reason": "other " + fk.next()},
    ]
    for ev in events:
        proc = ds.hook(dict(base, **ev))
        assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    ds.hook(("{broken " + fk.next()).encode())             # the log's error path
    # imports
    trans = tmp_path / "t.jsonl"
    trans.write_text("\n".join(json.dumps(l) for l in transcript_lines(
        fk, "imp-" + "9f" * 8, ds.project_dir)) + "\n")
    ds.cli("import-transcripts", str(trans), check=True)
    key = ds.sql("SELECT key FROM projects ORDER BY id LIMIT 1")[0][0]
    exp = tmp_path / "export.jsonl"
    exp.write_text(export_lines(fk, key))
    proc = ds.cli("import", str(exp))
    assert proc.returncode == 0, proc.stderr

    cols = text_columns(ds.db)
    assert "memories.content" in cols and "tasks.labels" in cols and \
        "task_events.note" in cols and "session_snapshots.content" in cols
    leaks, unreached = [], []
    for col in cols:
        values = [str(v) for v in column_values(ds, col)]
        for secret in fk.made:
            if any(secret in v for v in values):
                leaks.append((col, secret))
        if col not in INTERNAL and not any("[REDACTED:" in v for v in values):
            unreached.append(col)
    assert not leaks
    # every column that takes outside text was reached by an entry path and redacted there
    assert not unreached, f"no entry path put a secret into {unreached}"
    assert set(INTERNAL) <= set(cols), "INTERNAL names a column that no longer exists"
    files = [ds.db] + glob.glob(ds.db + "-wal") + [ds.log_path]
    for f in files:
        blob = open(f, "rb").read().decode("utf-8", "replace")
        assert not [s for s in fk.made if s in blob], os.path.basename(f)
    # what a user reads back is redacted too
    out = ds.cli("export", check=True).stdout + ds.cli("memory", "list", "--limit", "100").stdout
    assert not [s for s in fk.made if s in out]


def test_a_write_that_skips_the_redactor_is_refused(tmp_path):
    store = devstream.Store(str(tmp_path / "d.db"))
    pid = store.project_id(devstream.Project("k", "/r", "r", "/r"))
    secret = "ghp_" + "Zq8" * 12
    sql = "INSERT INTO tasks(id, project_id, title, created_at, updated_at) VALUES(?,?,?,1,1)"
    # below the store's connection (a raw cursor): refused by the exec tracer
    with pytest.raises(apsw.ExecTraceAbort):
        store.conn.raw.cursor().execute(sql, ("t-000001", pid, "rotate " + secret))
    assert store.scalar("SELECT count(*) FROM tasks") == 0
    # through the store's connection, from any section: redacted on the way in
    store.conn.execute(sql, ("t-000001", pid, "rotate " + secret))
    store.execute(sql, ("t-000002", pid, "pw " + secret))
    assert [r[0] for r in store.all("SELECT title FROM tasks ORDER BY id")] == [
        "rotate [REDACTED:github_token]", "pw [REDACTED:github_token]"]
    store.close()


def test_forget_match_removes_every_memory_holding_the_text_from_the_file(ds):
    leaked = "Tr0ub4dor-and-3"                  # nothing tells a redactor this is a password
    for i in range(3):
        ds.cli("memory", "add", f"note {i}: the vpn uses {leaked} since monday", check=True)
    ds.cli("memory", "add", "an unrelated note about invoices", check=True)
    ds.hook({"hook_event_name": "UserPromptSubmit", "prompt": f"log in with {leaked} please"})
    ds.hook({"hook_event_name": "PreCompact", "trigger": "manual"})
    task = ds.cli("task", "add", f"rotate the vpn password {leaked}", "--description",
                  f"{leaked} was pasted in chat", check=True).stdout.strip()
    ds.cli("task", "block", task, "--reason", f"waiting for IT to retire {leaked}", check=True)
    assert leaked in open(ds.db, "rb").read().decode("latin-1") + \
        "".join(open(f, "rb").read().decode("latin-1") for f in glob.glob(ds.db + "-wal"))
    out = ds.cli_json("memory", "forget", "--match", leaked)
    assert out["memories"] == 4 and out["snapshots"] == 1
    assert out["tasks"] == 1 and out["task_ids"] == [task]
    assert len(ds.cli_json("memory", "list")) == 1
    shown = ds.cli_json("task", "show", task)
    assert shown["title"] == "rotate the vpn password [forgotten]"      # the task itself stays
    assert leaked not in json.dumps(shown)
    assert ds.cli_json("memory", "search", "vpn") == []
    blob = open(ds.db, "rb").read()
    for f in glob.glob(ds.db + "-wal"):
        blob += open(f, "rb").read()
    assert leaked.encode() not in blob
    again = ds.cli("memory", "forget", "--match", leaked, check=True)
    assert "forgot 0 memories" in again.stdout
    assert ds.cli("memory", "forget").returncode == 2


def test_forget_by_id_removes_the_text_from_the_file(ds):
    word = "quokka-7731-lantern"
    mid = ds.cli("memory", "add", f"the bucket is {word}", check=True).stdout.strip()
    ds.cli("memory", "add", "something else entirely", check=True)
    ds.cli("memory", "forget", mid, check=True)
    blob = open(ds.db, "rb").read()
    for f in glob.glob(ds.db + "-wal"):
        blob += open(f, "rb").read()
    assert word.encode() not in blob


def test_a_hook_with_secrets_loads_no_regex_module(ds):
    """The rules' compiled programs come from their cache: a hook that redacts secrets imports
    neither `re` nor anything it pulls in (the first run in a home writes the cache)."""
    prompt = ("deploy with ghp_" + "Zq8vK3" * 6 + " and the staging password is Tr0ub4dor&3; "
              "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY1")
    ds.hook({"hook_event_name": "UserPromptSubmit", "prompt": prompt, "session_id": "a"})
    argv = [ds.hook_argv[0], "-X", "importtime"] + list(ds.hook_argv[1:])
    import subprocess
    proc = subprocess.run(argv, input=json.dumps({
        "hook_event_name": "UserPromptSubmit", "prompt": prompt + " again", "session_id": "b",
        "cwd": ds.project_dir}).encode(), capture_output=True, env=ds.env, timeout=60)
    assert proc.returncode == 0
    modules = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.decode().splitlines()
               if line.startswith("import time:")}
    assert "posixpath" in modules, "importtime really ran"
    assert not modules & {"re", "enum", "sre_compile", "re._compiler", "re._parser"}, modules
    stored = [r[0] for r in ds.sql("SELECT content FROM memories WHERE type='prompt'")]
    assert len(stored) == 2 and all("ghp_" not in c and "Tr0ub4dor" not in c for c in stored)
