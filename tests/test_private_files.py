"""Everything DevStream writes is readable by its user alone: directories 0700, database, WAL,
SHM, logs, caches 0600, also when written by the detached embedder; doctor fails on anything
others can read and install makes it private."""
import os
import stat
import subprocess
import time

from ollama_stub import free_port


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_are_created_private_whatever_the_umask(ds):
    os.umask(0o022)             # the usual default: what the hook inherits from the agent
    ds.env["DEVSTREAM_EMBED_MODE"] = "background"
    ds.env["DEVSTREAM_OLLAMA_URL"] = f"http://127.0.0.1:{free_port()}"
    ds.env["DEVSTREAM_LOG_LEVEL"] = "info"
    ds.hook({"hook_event_name": "SessionStart", "source": "startup"})
    ds.hook({"hook_event_name": "UserPromptSubmit", "prompt": "keep this private please"})
    ds.hook({"hook_event_name": "Stop"})          # starts the detached embedder
    for _ in range(200):
        if any(r["event"].startswith("embed.background") for r in ds.log_records()):
            break
        time.sleep(0.05)
    # keep a connection open so the -wal and -shm files exist while we look
    import apsw
    conn = apsw.Connection(ds.db)
    conn.setbusytimeout(10000)
    conn.execute("SELECT count(*) FROM memories").fetchall()
    try:
        paths = [ds.db, ds.db + "-wal", ds.db + "-shm", ds.log_path,
                 os.path.join(ds.home, "embed.lock")]
        for p in paths:
            assert os.path.exists(p), p
            assert mode(p) == 0o600, (p, oct(mode(p)))
        for d in (ds.home, os.path.dirname(ds.log_path)):
            assert mode(d) == 0o700, (d, oct(mode(d)))
    finally:
        conn.close()
    proc = ds.cli("doctor", "--json")
    checks = {c["name"]: c for c in __import__("json").loads(proc.stdout)["checks"]}
    assert checks["permissions"]["status"] == "PASS"


def test_doctor_fails_on_readable_files_and_install_fixes_them(ds):
    ds.hook({"hook_event_name": "SessionStart", "source": "startup"})
    os.chmod(ds.db, 0o644)
    os.chmod(ds.home, 0o755)
    with open(os.path.join(ds.home, "config.toml"), "w") as fh:
        fh.write("budget_prompt = 2000\n")
    os.chmod(os.path.join(ds.home, "config.toml"), 0o644)
    proc = ds.cli("doctor")
    assert proc.returncode == 1
    line = [l for l in proc.stdout.splitlines() if "permissions" in l][0]
    assert line.startswith("FAIL") and ds.db in line and "config.toml" in line
    subprocess.run(ds.hook_argv[:-3] + ["install"], env=ds.env, check=True, capture_output=True)
    assert mode(ds.db) == 0o600 and mode(ds.home) == 0o700
    assert mode(os.path.join(ds.home, "config.toml")) == 0o600
    proc = ds.cli("doctor")
    assert [l for l in proc.stdout.splitlines() if "permissions" in l][0].startswith("PASS")
