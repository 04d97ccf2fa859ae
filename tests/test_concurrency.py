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
