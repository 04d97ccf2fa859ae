"""Today's schema, printed for the reader (`pytest tests/test_schema.py -s`) and kept in
tests/data/schema.sql, which a change of the schema must update (regenerate it with
`DEVSTREAM_WRITE_SCHEMA=1 python -m pytest tests/test_schema.py`); every table declared once in
the store section with the columns the database really has; export/import proven to carry
every column of every record table: a column added without its place in the export fails here."""
import json
import os

import devstream

SNAPSHOT = os.path.join(os.path.dirname(__file__), "data", "schema.sql")
# tables that SQLite or an extension makes for the index and the vectors
SHADOW_PREFIXES = ("memories_fts", "memories_vocab", "vec_", "vecf_", "sqlite_")


def schema(store):
    return [(name, sql) for name, sql in store.all(
        "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
        "AND name NOT LIKE 'memories_fts_%' ORDER BY type DESC, name")]


def schema_text(store):
    lines = [f"-- DevStream schema version {devstream.SCHEMA_VERSION}, after the migrations",
             "-- " + ", ".join(m.__name__ for m in devstream.MIGRATIONS),
             "-- regenerate: DEVSTREAM_WRITE_SCHEMA=1 python -m pytest tests/test_schema.py", ""]
    for name, sql in schema(store):
        lines.append(sql + ";")
    return "\n".join(lines) + "\n"


def test_print_the_schema(tmp_path):
    store = devstream.Store(str(tmp_path / "d.db"))
    text = schema_text(store)
    store.close()
    print("\n" + text)
    if os.environ.get("DEVSTREAM_WRITE_SCHEMA"):
        with open(SNAPSHOT, "w", encoding="utf-8") as fh:
            fh.write(text)
    with open(SNAPSHOT, encoding="utf-8") as fh:
        assert fh.read() == text, "the schema changed: regenerate tests/data/schema.sql " \
            "(DEVSTREAM_WRITE_SCHEMA=1 python -m pytest tests/test_schema.py) and commit it"


def test_migrations_are_small_named_functions_in_order():
    assert len(devstream.MIGRATIONS) == devstream.SCHEMA_VERSION
    for n, migration in enumerate(devstream.MIGRATIONS, 1):
        assert migration.__name__.startswith(f"migration_{n}_"), migration.__name__
        assert migration.__doc__, f"{migration.__name__} says what it does"


def test_migrating_an_old_database_gives_the_same_schema(tmp_path):
    """A database made by the first migrations and filled, then opened by today's code, ends
    with exactly the schema of a new one."""
    old = devstream.Store(str(tmp_path / "old.db"), migrate=False)
    old.migrate(target=2)
    old.close()
    upgraded = devstream.Store(str(tmp_path / "old.db"))
    fresh = devstream.Store(str(tmp_path / "new.db"))
    assert schema(upgraded) == schema(fresh)
    assert upgraded.scalar("PRAGMA user_version") == devstream.SCHEMA_VERSION


def test_every_table_is_declared_once_with_its_real_columns(tmp_path):
    store = devstream.Store(str(tmp_path / "d.db"))
    tables = {r[0] for r in store.all("SELECT name FROM sqlite_master WHERE type='table'")
              if not r[0].startswith(SHADOW_PREFIXES)}
    declared = {t.name: t for t in devstream.TABLES}
    assert len(declared) == len(devstream.TABLES)
    assert tables == set(declared), "a table must be declared in the store section (TABLES)"
    for name, table in declared.items():
        real = [r[1] for r in store.all(f"PRAGMA table_info({name})")]
        assert list(table.columns) == real, f"{name}: the declared columns are not the table's"
        assert table.local <= set(real) and table.lists <= set(real) and \
            table.required <= set(real) and set(table.keys) <= set(real)
        record = table.record(range(len(real)))
        assert [getattr(record, c) for c in real] == list(range(len(real)))
    store.close()


def test_export_writes_every_column_that_is_not_local(ds):
    populate(ds)
    out = ds.cli("export", check=True).stdout.splitlines()
    recs = [json.loads(l) for l in out]
    assert recs[0]["kind"] == "devstream-export"
    by_kind = {}
    for r in recs[1:]:
        by_kind.setdefault(r["kind"], set()).update(set(r) - {"kind"})
    for table in devstream.EXPORTED_TABLES:
        real = [r[1] for r in ds.sql(f"PRAGMA table_info({table.name})")]
        want = {"project" if c == "project_id" else table.keys.get(c, c) for c in real
                if c not in table.local}
        assert by_kind.get(table.kind) == want, f"{table.name}: export misses or adds a field"


def populate(ds):
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


def rows(ds, table, cols):
    order = ", ".join(cols)
    return ds.sql(f"SELECT {order} FROM {table} ORDER BY {order}")


def test_export_import_carries_every_column(ds, tmp_path):
    populate(ds)
    out = tmp_path / "export.jsonl"
    ds.cli("export", "-o", out, check=True)

    other = dict(ds.env, DEVSTREAM_HOME=str(tmp_path / "restored"))
    ds.cli("import", out, env=other, check=True)
    import apsw
    for declared in devstream.EXPORTED_TABLES:
        table = declared.name
        # project_id is compared as the project's key below; rowids and hashes are this file's
        cols = [r[1] for r in ds.sql(f"PRAGMA table_info({table})")
                if r[1] not in declared.local | {"project_id"}]
        before = rows(ds, table, cols)
        conn = apsw.Connection(os.path.join(other["DEVSTREAM_HOME"], "devstream.db"))
        after = list(conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY "
                                  f"{', '.join(cols)}"))
        conn.close()
        assert before, f"the test wrote nothing into {table}"
        assert after == before, f"{table}: a column does not survive export/import"
        if "project_id" in declared.columns:
            keyed = f"SELECT p.key, x.id FROM {table} x JOIN projects p ON p.id = x.project_id " \
                "ORDER BY x.id"
            conn = apsw.Connection(os.path.join(other["DEVSTREAM_HOME"], "devstream.db"))
            assert list(conn.execute(keyed)) == ds.sql(keyed), f"{table}: project lost"
            conn.close()
    # and back out: the restored database exports exactly what was imported
    again = tmp_path / "again.jsonl"
    ds.cli("export", "-o", again, env=other, check=True)
    assert again.read_bytes() == out.read_bytes()
    recs = [json.loads(l) for l in out.read_text().splitlines()]
    assert {r["kind"] for r in recs} >= {"project", "session", "memory", "task", "dependency",
                                         "task_event", "snapshot"}
