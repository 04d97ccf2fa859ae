"""Today's schema, printed for the reader (`pytest tests/test_schema.py -s`), and export/import
proven to carry every column of every record table: a column added without its place in the
export fails here."""
import json
import os

import devstream

# not exported, on purpose: derived from the exported records, or bookkeeping of one machine
NOT_EXPORTED = {
    "projects": {"id"},                         # rows are matched by their key
    "sessions": {"project_id"},                 # exported as the project's key
    "memories": {"rowid", "project_id", "content_hash", "embed_space"},   # derived / re-embedded
    "tasks": {"rowid", "project_id"},
    "task_events": set(),
    "task_deps": set(),
    "session_snapshots": set(),
}
DERIVED_TABLES = {"injections", "breaker", "embed_spaces", "embed_pending", "query_cache",
                  "state"}


def schema(store):
    return [(name, sql) for name, sql in store.all(
        "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
        "AND name NOT LIKE 'memories_fts_%' ORDER BY type DESC, name")]


def test_print_the_schema(tmp_path):
    store = devstream.Store(str(tmp_path / "d.db"))
    print(f"\n-- schema version {devstream.SCHEMA_VERSION}, migrations: " +
          ", ".join(m.__name__ for m in devstream.MIGRATIONS))
    for name, sql in schema(store):
        print(sql + ";")
    tables = {r[0] for r in store.all("SELECT name FROM sqlite_master WHERE type='table'")}
    assert set(NOT_EXPORTED) | DERIVED_TABLES <= tables
    record_tables = {t for t in tables if not t.startswith(("memories_fts", "memories_vocab",
                                                            "vec"))}
    assert record_tables == set(NOT_EXPORTED) | DERIVED_TABLES, \
        "a new table must be declared exported (NOT_EXPORTED) or derived here"
    store.close()


def rows(ds, table, cols):
    order = ", ".join(cols)
    return ds.sql(f"SELECT {order} FROM {table} ORDER BY {order}")


def test_export_import_carries_every_column(ds, tmp_path):
    d = ds.project_dir
    ds.hook({"hook_event_name": "SessionStart", "source": "startup", "session_id": "s1",
             "transcript_path": os.path.join(d, "t.jsonl")})
    ds.hook({"hook_event_name": "UserPromptSubmit", "session_id": "s1",
             "prompt": "make the importer idempotent"})
    ds.hook({"hook_event_name": "PostToolUse", "session_id": "s1", "tool_name": "Edit",
             "tool_input": {"file_path": os.path.join(d, "imp.py"), "old_string": "a",
                            "new_string": "b"}, "tool_response": {}})
    ds.hook({"hook_event_name": "PreCompact", "session_id": "s1", "trigger": "manual"})
    t1 = ds.cli("task", "add", "first", "--priority", "1", "--estimate", "30", "--label", "x",
                check=True).stdout.split()[0]
    t2 = ds.cli("task", "add", "second", "--after", t1, "--description", "d",
                check=True).stdout.split()[0]
    ds.cli("task", "start", t1, check=True)
    ds.cli("task", "block", t2, "--reason", "waiting", check=True)
    ds.cli("memory", "add", "--type", "decision", "--tag", "db", "integer cents", check=True)
    ds.hook({"hook_event_name": "SessionEnd", "session_id": "s1", "reason": "other"})
    out = tmp_path / "export.jsonl"
    ds.cli("export", "-o", out, check=True)

    other = dict(ds.env, DEVSTREAM_HOME=str(tmp_path / "restored"))
    ds.cli("import", out, env=other, check=True)
    import apsw
    for table, skipped in NOT_EXPORTED.items():
        cols = [r[1] for r in ds.sql(f"PRAGMA table_info({table})") if r[1] not in skipped]
        before = rows(ds, table, cols)
        conn = apsw.Connection(os.path.join(other["DEVSTREAM_HOME"], "devstream.db"))
        after = list(conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY "
                                  f"{', '.join(cols)}"))
        conn.close()
        assert before, f"the test wrote nothing into {table}"
        assert after == before, f"{table}: a column does not survive export/import"
    recs = [json.loads(l) for l in out.read_text().splitlines()]
    assert {r["kind"] for r in recs} >= {"project", "session", "memory", "task", "dependency",
                                         "task_event", "snapshot"}
