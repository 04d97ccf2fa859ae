"""The store: migrations from every earlier schema, atomic migrations, newer schemas refused."""
import os

import apsw
import pytest

import devstream


def db_at_version(path, version):
    store = devstream.Store(path, migrate=False)
    store.migrate(target=version)
    return store.conn


SEED = {
    1: ["INSERT INTO projects(id, key, root, name, created_at) VALUES(1, 'k', '/r', 'r', 1)",
        "INSERT INTO sessions(id, project_id, started_at, last_seen_at) VALUES('s1', 1, 1, 2)",
        "INSERT INTO memories(id, project_id, type, content, created_at, content_hash)"
        " VALUES('m-000001', 1, 'note', 'kept across migrations', 1, 'h1')"],
    2: ["INSERT INTO tasks(id, project_id, title, created_at, updated_at)"
        " VALUES('t-000001', 1, 'a task', 1, 1)"],
}


@pytest.mark.parametrize("start", range(0, devstream.SCHEMA_VERSION))
def test_migrates_forward_from_every_earlier_version(tmp_path, start):
    path = str(tmp_path / "devstream.db")
    conn = db_at_version(path, start)
    for v in range(1, start + 1):
        for stmt in SEED.get(v, []):
            conn.execute(stmt)
    conn.close()
    store = devstream.Store(path)
    assert store.version == devstream.SCHEMA_VERSION
    assert store.scalar("PRAGMA user_version") == devstream.SCHEMA_VERSION
    if start >= 1:
        assert store.scalar("SELECT content FROM memories WHERE id='m-000001'") == \
            "kept across migrations"
        assert store.scalar("SELECT status FROM sessions WHERE id='s1'") == "active"
    if start >= 2:
        assert store.scalar("SELECT title FROM tasks WHERE id='t-000001'") == "a task"
    if 1 <= start < 3:
        # memories that existed before embeddings arrived are queued for embedding
        assert store.scalar("SELECT count(*) FROM embed_pending") == 1
    assert store.scalar("PRAGMA integrity_check") == "ok"
    store.close()


def test_a_failing_migration_leaves_the_previous_version_intact(tmp_path):
    path = str(tmp_path / "devstream.db")
    conn = db_at_version(path, 1)
    conn.execute("CREATE TABLE task_events(x)")    # collides with migration 2
    conn.close()
    with pytest.raises(apsw.SQLError):
        devstream.Store(path)
    conn = apsw.Connection(path)
    assert conn.execute("PRAGMA user_version").fetchall()[0][0] == 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "tasks" not in tables, "a half-applied migration must roll back entirely"


def test_newer_schema_is_refused(tmp_path):
    path = str(tmp_path / "devstream.db")
    conn = apsw.Connection(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(devstream.StoreError, match="newer"):
        devstream.Store(path)


def test_newer_schema_cli_message(ds):
    os.makedirs(ds.home, exist_ok=True)
    conn = apsw.Connection(ds.db)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    proc = ds.cli("install")
    assert proc.returncode == 1
    assert "newer than this devstream" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_wal_and_extensions(tmp_path):
    store = devstream.Store(str(tmp_path / "d.db"))
    assert store.scalar("PRAGMA journal_mode") == "wal"
    assert store.load_vec()
    assert store.scalar("SELECT vec_version()").startswith("v")
    store.close()


def test_writes_compose_as_savepoints(tmp_path):
    store = devstream.Store(str(tmp_path / "s.db"))
    with store.write():
        store.set_state("outer", "1")
        with pytest.raises(ZeroDivisionError):
            with store.write():
                store.set_state("inner", "1")
                1 / 0
        with store.write():
            store.set_state("second", "1")
        assert store.conn.in_transaction
    assert not store.conn.in_transaction
    other = devstream.Store(str(tmp_path / "s.db"))
    assert [other.get_state(k) for k in ("outer", "inner", "second")] == ["1", None, "1"]
    # a failing outer write undoes its savepoints too
    with pytest.raises(ValueError):
        with store.write():
            with store.write():
                store.set_state("lost", "1")
            raise ValueError
    assert other.get_state("lost") is None
    with pytest.raises(devstream.StoreError):
        with store.write():
            store.assert_no_write("a network call")
    store.close(), other.close()


def test_a_memory_fingerprint_tells_texts_apart_and_stays_the_same():
    fp = devstream.content_fingerprint
    block = "0123456789abcdef"                      # 16 bytes: one block of the polynomial
    texts = ["", "a", "a\0", "\0a", "abc", block + "x" * 16, "x" * 16 + block,
             "naïve café", "naive cafe", "x" * 5000, "x" * 4999 + "y"]
    prints = [fp(t) for t in texts]
    assert len(set(prints)) == len(texts)
    assert all(len(p) == 32 and int(p, 16) < devstream.FINGERPRINT_PRIME for p in prints)
    assert fp("Edited src/app.py") == fp("Edited src/app.py")
    # the same value in every process (a stored memory's content_hash is compared later)
    assert fp("abc") == "00000000000000000000000001616263"
