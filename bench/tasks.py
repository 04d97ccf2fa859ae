#!/usr/bin/env python3
"""`task ready` and `task add` with 10,000 tasks in the project, whole process, against the
interpreter floor (`python3 -I -S -c pass`, interleaved in the same loop).

    python3 bench/tasks.py [--tasks 10000] [--runs 100] [--pyz dist/devstream.pyz]

Target: median <= 2.5x the floor's median for both commands.
"""
import argparse
import os
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hooks import ROOT, install, pct, timed  # noqa: E402

sys.path.insert(0, ROOT)


def populate(home, project_dir, n, seed=11):
    os.environ["DEVSTREAM_HOME"] = home
    import devstream
    cfg = devstream.Config()
    store = devstream.open_store(cfg)
    rng = random.Random(seed)
    now = time.time() - n
    ids = []
    with store.write():
        pid = store.project_id(devstream.find_project(project_dir))
        for i in range(n):
            if i % 50 == 0:
                parent = None
            after = rng.sample(ids[-200:], k=min(len(ids[-200:]), rng.choice((0, 0, 1, 2))))
            status = rng.choice(("open",) * 6 + ("done",) * 3 + ("in_progress",))
            tid = devstream.add_task(store, pid, f"Task {i}: {rng.choice(['fix', 'add', 'port'])} "
                                     f"module {i % 97}", priority=rng.randint(0, 4),
                                     parent=parent, after=after, status=status,
                                     estimate=rng.choice((None, 15, 30, 60)), now=now + i)
            if i % 50 == 0:
                parent = tid
            ids.append(tid)
    store.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--pyz")
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="devstream-tasks-")
    project = os.path.join(home, "project")
    os.makedirs(project)
    hook_argv = install(home, args.pyz)
    base = hook_argv[:-3]
    populate(home, project, args.tasks)
    env = dict(os.environ, DEVSTREAM_HOME=home)
    os.chdir(project)
    floor_argv = [base[0], "-I", "-S", "-c", "pass"]
    cmds = {"task ready": base + ["task", "ready"],
            "task add": base + ["task", "add", "Benchmark task", "--priority", "1"]}
    results = {"floor": [], **{k: [] for k in cmds}}
    for _ in range(3):
        timed(floor_argv, b"", env)
        for argv in cmds.values():
            timed(argv, b"", env)
    for _ in range(args.runs):
        results["floor"].append(timed(floor_argv, b"", env))
        for name, argv in cmds.items():
            results[name].append(timed(argv, b"", env))
    floor = statistics.median(results["floor"])
    print(f"\n{args.tasks:,} tasks in the project, {args.runs} runs, Python {sys.version.split()[0]}\n")
    print("| command | median ms | p99 ms | median / floor | verdict |")
    print("|---|---:|---:|---:|---|")
    ok = True
    for name, vals in results.items():
        med = statistics.median(vals)
        verdict = "" if name == "floor" else ("ok" if med <= 2.5 * floor else "OVER")
        ok &= verdict != "OVER"
        print(f"| {name} | {med:.1f} | {pct(vals, 99):.1f} | {med / floor:.2f} | {verdict} |")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
