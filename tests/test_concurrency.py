"""Many hook processes writing at once: every event recorded, no error, integrity ok.
(bench/concurrency.py runs the full 8 x 1,000.)"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_eight_writers_at_once(ds):
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "concurrency.py"), "--processes", "8",
         "--events", "40", "--home", ds.home, "--hook", " ".join(ds.hook_argv)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all 320 events recorded" in proc.stdout
    assert "integrity ok" in proc.stdout and "0 errors logged" in proc.stdout


# Holds the write lock 0.6 s, lets go of it for 15 ms, then holds it again for 3 s: longer than
# the hook may wait.  A hook that tries the lock only every 100 ms once it has waited a while
# (SQLite's own busy timeout) mostly misses the gap and loses its prompt.
GAP_HOLDER = r"""
import sys, time, apsw
conn = apsw.Connection(sys.argv[1])
conn.setbusytimeout(10000)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(0.6)
conn.execute("COMMIT")
time.sleep(0.015)
conn.execute("BEGIN IMMEDIATE")
time.sleep(3)
conn.execute("COMMIT")
"""


def test_a_waiting_hook_gets_in_through_a_brief_gap_between_writes(ds):
    import apsw
    ds.hook({"hook_event_name": "SessionStart", "source": "startup"})
    holder = subprocess.Popen(
        [sys.executable, "-c", GAP_HOLDER, ds.db], stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(apsw.__file__))))
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = ds.hook({"hook_event_name": "UserPromptSubmit",
                        "prompt": "rename the invoice exporter"})
    finally:
        holder.wait(timeout=60)
    assert proc.returncode == 0 and not proc.stderr
    assert [r for r in ds.log_records() if r["level"] in ("error", "warning")] == []
    stored = ds.sql("SELECT content FROM memories WHERE type='prompt'")
    assert stored == [("rename the invoice exporter",)]
