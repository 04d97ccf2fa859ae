#!/usr/bin/env python3
"""Two versions of the hook path, timed in one loop: before and after a change.

    git worktree add /tmp/old v1
    python3 /tmp/old/bench/hooks.py --memories 10000 --runs 5 --embedded --home store-10k
    python3 bench/compare.py --before /tmp/old/devstream.py --home store-10k --embedded
                             [--runs 60] [--events UserPromptSubmit,Stop]

`--home` is a store filled by the older tree's `bench/hooks.py --home DIR` (with `--embedded` if
the comparison is to have the embedded model on), so both versions can open it: the newer one
upgrades its own copy at its first event.  Each version is installed from its own source file
into its own copy of the store, so neither sees the other's writes, and every round times the
floor (`python3 -I -S -c pass`) and each event once with each version, alternating which goes
first.  Prints each event's median per version, its ratio to the floor and the difference.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import hooks  # noqa: E402  (this folder's hook benchmark: its payloads and timer)


def copy_store(src, dst):
    """A consistent copy of the store (the backup API, so an open WAL is included)."""
    sys.path.insert(0, ROOT)
    import devstream
    apsw = devstream.import_apsw()
    target = apsw.Connection(dst)
    with target.backup("main", apsw.Connection(src), "main") as step:
        step.step()
    target.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="the older devstream.py")
    ap.add_argument("--after", default=os.path.join(ROOT, "devstream.py"))
    ap.add_argument("--home", required=True, help="a store filled by bench/hooks.py --home")
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--events", default="")
    ap.add_argument("--embedded", action="store_true",
                    help="the embedded model serves (the store must have been filled so)")
    args = ap.parse_args()
    filled = os.path.abspath(args.home)
    project = os.path.join(filled, "project")          # the memories belong to this folder
    scratch = tempfile.mkdtemp(prefix="devstream-compare-")
    argvs, envs, locks = {}, {}, []
    for name, source in (("before", args.before), ("after", args.after)):
        tree = os.path.join(scratch, name + "-src")
        os.makedirs(tree)
        shutil.copy(source, os.path.join(tree, "devstream.py"))
        model = os.path.join(ROOT, "devstream_model")
        if os.path.isdir(model):
            os.symlink(model, os.path.join(tree, "devstream_model"))
        home = os.path.join(scratch, name)
        os.makedirs(home)
        copy_store(os.path.join(filled, "devstream.db"), os.path.join(home, "devstream.db"))
        argvs[name] = hooks.install(home, None, source=os.path.join(tree, "devstream.py"))
        env = dict(os.environ, DEVSTREAM_HOME=home, DEVSTREAM_EMBED_MODE="off")
        if args.embedded:
            hooks.embedded_env(env)
        env.pop("DEVSTREAM_DISABLE", None)
        envs[name] = env
        lock = hooks.hold_embedder_lock(home)
        locks.append(lock)
    names = list(hooks.payloads(project, 0))
    if args.events:
        names = [n for n in names if n in args.events.split(",")]
    floor_argv = [argvs["after"][0], "-I", "-S", "-c", "pass"]
    times = {"floor": []}
    for i in range(-3, args.runs):                   # three rounds of warm-up
        batch = hooks.payloads(project, 10 ** 5 + i)
        t = hooks.timed(floor_argv, batch["Stop"], envs["after"])
        if i >= 0:
            times["floor"].append(t)
        for event in names:
            for name in ("before", "after") if i % 2 else ("after", "before"):
                t = hooks.timed(argvs[name], batch[event], envs[name])
                if i >= 0:
                    times.setdefault((event, name), []).append(t)
    floor = statistics.median(times["floor"])
    print(f"{args.runs} rounds, floor = `python3 -I -S -c pass` {floor:.1f} ms\n")
    print("| event | before ms | before / floor | after ms | after / floor | after - before ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for event in names:
        b = statistics.median(times[(event, "before")])
        a = statistics.median(times[(event, "after")])
        print(f"| {event} | {b:.1f} | {b / floor:.2f} | {a:.1f} | {a / floor:.2f} | {a - b:+.1f} |")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
