#!/usr/bin/env python3
"""Concurrent writers: P processes each send N hook events at once, through the real hook
command, into one database.  Checks that every event was recorded, that no error was logged and
that PRAGMA integrity_check is ok.

    python3 bench/concurrency.py [--processes 8] [--events 1000] [--hook "CMD"] [--home DIR]

Without --hook it installs DevStream from this source tree into a scratch home and uses the hook
command that install registers.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hooks import install  # noqa: E402


def worker(argv, env, wid, n, project):
    """Runs in a child process: n hook events, one after another."""
    failures = 0
    for i in range(n):
        payload = {"hook_event_name": "UserPromptSubmit", "session_id": f"w{wid}",
                   "cwd": project, "prompt": f"worker {wid} event {i}: refactor the parser"}
        proc = subprocess.run(argv, input=json.dumps(payload).encode(), capture_output=True,
                              env=env)
        if proc.returncode != 0 or b"Traceback" in proc.stderr:
            failures += 1
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=8)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--hook", help="hook command (default: install from this tree)")
    ap.add_argument("--home", help="DEVSTREAM_HOME to use (default: a scratch directory)")
    ap.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    home = args.home or tempfile.mkdtemp(prefix="devstream-conc-")
    project = os.path.join(home, "project")
    os.makedirs(project, exist_ok=True)
    env = dict(os.environ, DEVSTREAM_HOME=home, DEVSTREAM_EMBED_MODE="off")
    hook = args.hook or " ".join(shlex.quote(a) for a in install(home, None))
    argv = shlex.split(hook)
    if args.child:
        sys.exit(min(worker(argv, env, args.child[0], args.child[1], project), 100))

    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--child", str(w), str(args.events),
                               "--hook", hook, "--home", home])
             for w in range(args.processes)]
    failed = sum(p.wait() for p in procs)
    elapsed = time.perf_counter() - t0
    total = args.processes * args.events

    import apsw
    conn = apsw.Connection(os.path.join(home, "devstream.db"))
    stored = conn.execute("SELECT count(*) FROM memories WHERE type='prompt' AND content LIKE "
                          "'worker % event %'").fetchall()[0][0]
    integrity = conn.execute("PRAGMA integrity_check").fetchall()[0][0]
    conn.close()
    problems = []
    log = os.path.join(home, "logs", "devstream.log")
    if os.path.exists(log):
        with open(log) as fh:
            problems = [line.strip() for line in fh
                        if '"level":"error"' in line or '"level":"warning"' in line]
    errors = len(problems)
    for line in problems[:5]:
        print(f"logged: {line[:300]}")
    print(f"{args.processes} processes x {args.events} events in {elapsed:.1f} s "
          f"({total / elapsed:.0f} events/s)")
    print(f"stored {stored} of {total}: " +
          (f"all {total} events recorded" if stored == total else "MISSING EVENTS"))
    print(f"{failed} failed hook runs, {errors} errors logged, integrity {integrity}")
    ok = stored == total and failed == 0 and errors == 0 and integrity == "ok"
    if integrity == "ok":
        print("integrity ok")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
