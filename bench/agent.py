#!/usr/bin/env python3
"""What DevStream adds to a real Claude Code session: the same scripted session, three ways.

    python3 bench/agent.py [--runs 10] [--claude tests/e2e/node_modules/.bin/claude]

Runs the real `claude -p` binary (installed by `npm ci --prefix tests/e2e`) against the scripted
Anthropic stand-in (tests/anthropic_stub.py, scenario "bench10": ten tool calls - a failing test
run, Write, Read, Edit, passing runs, more reads, edits and writes - then a final answer; the
"model" answers instantly, so everything measured is Claude Code and its hooks) in three homes:

  none   no hooks at all
  bare   DevStream's own hook registration, but every hook is `python3 -I -S -c pass`
  devstream  DevStream installed from this tree (`devstream install`), embedding off unless
             --embed-mode says otherwise

The three are interleaved run by run (order shuffled each round), each run in a fresh copy of
the project, so machine noise hits all alike.  Reports the median session wall time of each,
the ratios, the added time per hook run (median session time minus the no-hooks median, divided
by the hook runs in the session) and the per-hook durations Claude Code itself logs in its
--debug-file.  Target: DevStream's added time per hook run <= 1.5x that of the bare hooks.
"""
import argparse
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from anthropic_stub import LEDGER_PROJECT, AnthropicStub            # noqa: E402
from e2e.claude_cli import claude_argv, claude_env, hook_lines   # noqa: E402


def fill(hooks, old, new):
    return json.loads(json.dumps(hooks).replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1]))


def make_homes(base):
    homes = {}
    for name in ("none", "bare", "devstream"):
        home = os.path.join(base, name)
        os.makedirs(os.path.join(home, "home", ".claude"))
        homes[name] = {"home": os.path.join(home, "home"), "ds": os.path.join(home, "ds"),
                       "runs": os.path.join(home, "runs")}
        os.makedirs(homes[name]["runs"])
    env = dict(os.environ, HOME=homes["devstream"]["home"], DEVSTREAM_HOME=homes["devstream"]["ds"],
               DEVSTREAM_NO_PATH_LINK="1")
    env.pop("CLAUDE_CONFIG_DIR", None)
    subprocess.run([sys.executable, os.path.join(ROOT, "devstream.py"), "install"], env=env,
                   check=True, capture_output=True)
    with open(os.path.join(homes["devstream"]["home"], ".claude", "settings.json")) as fh:
        installed = json.load(fh)
    ds_command = installed["hooks"]["SessionStart"][0]["hooks"][0]["command"]
    # the same registration (events, matchers), every command replaced by the bare interpreter
    bare = {"hooks": fill(installed["hooks"], ds_command,
                          f"{shlex.quote(os.path.abspath(sys.executable))} -I -S -c pass")}
    with open(os.path.join(homes["bare"]["home"], ".claude", "settings.json"), "w") as fh:
        json.dump(bare, fh)
    homes["devstream"]["command"] = ds_command
    homes["bare"]["command"] = bare["hooks"]["SessionStart"][0]["hooks"][0]["command"]
    return homes


def fresh_project(path):
    for rel, text in LEDGER_PROJECT.items():
        os.makedirs(os.path.dirname(os.path.join(path, rel)), exist_ok=True)
        with open(os.path.join(path, rel), "w") as fh:
            fh.write(text)
    subprocess.run(["git", "init", "-q", path], check=True)


def one_run(claude, stub, home, i, embed_mode="off"):
    project = os.path.join(home["runs"], f"p{i}")
    fresh_project(project)
    stub.cwd = project
    debug = os.path.join(home["runs"], f"debug-{i}.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE", "ANTHROPIC",
                                                                      "DEVSTREAM_"))}
    env.update(HOME=home["home"], DEVSTREAM_HOME=home["ds"], DEVSTREAM_EMBED_MODE=embed_mode,
               DEVSTREAM_OLLAMA_URL="http://127.0.0.1:9")
    argv = claude_argv(claude, "[[scenario:bench10]] Fix the ledger rounding", debug)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=project, env=claude_env(env, stub.url), capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"claude exited {proc.returncode}: {proc.stderr[-2000:]}")
    with open(debug, encoding="utf-8", errors="replace") as fh:
        hooks = [h for h in hook_lines(fh.read()) if h[1] == home.get("command")]
    bad = [h for h in hooks if h[2] != 0]
    if bad:
        raise SystemExit(f"a hook failed: {bad[:3]}")
    return wall, hooks


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--claude", default=os.path.join(ROOT, "tests", "e2e", "node_modules", ".bin",
                                                     "claude"))
    ap.add_argument("--embed-mode", default="off", choices=("off", "background", "inline"),
                    help="DevStream's DEVSTREAM_EMBED_MODE (default off: no embedding work)")
    ap.add_argument("--json", help="also write raw results to this file")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()
    if not os.path.exists(args.claude):
        raise SystemExit(f"{args.claude} not found: run `npm ci --prefix tests/e2e`")
    base = tempfile.mkdtemp(prefix="devstream-agent-bench-")
    homes = make_homes(base)
    walls = {n: [] for n in homes}
    counts = {n: [] for n in homes}
    per_event = {n: {} for n in homes}
    rng = random.Random(7)
    try:
        with AnthropicStub() as stub:
            for warm in homes:      # first runs pay cold caches: not counted
                one_run(args.claude, stub, homes[warm], f"warm-{warm}", args.embed_mode)
            for i in range(args.runs):
                order = list(homes)
                rng.shuffle(order)
                for name in order:
                    wall, hooks = one_run(args.claude, stub, homes[name], i, args.embed_mode)
                    walls[name].append(wall)
                    counts[name].append(len(hooks))
                    for event, _, _, ms in hooks:
                        if ms is not None:
                            per_event[name].setdefault(event, []).append(ms)
                print(f"round {i + 1}/{args.runs}: " + ", ".join(
                    f"{n} {walls[n][-1]:.2f}s" for n in homes), file=sys.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    med = {n: statistics.median(v) for n, v in walls.items()}
    runs_per = {n: statistics.median(c) for n, c in counts.items()}
    added = {n: (med[n] - med["none"]) * 1000 / runs_per[n] for n in ("bare", "devstream")
             if runs_per[n]}
    print(f"\n{args.runs} interleaved runs per configuration; {int(runs_per['devstream'])} hook "
          f"runs per session (10 tool calls)\n")
    print("| configuration | median session s | / no hooks | hook runs | added ms per hook run |")
    print("|---|---:|---:|---:|---:|")
    for n in homes:
        extra = f"{added[n]:.1f}" if n in added else ""
        print(f"| {n} | {med[n]:.2f} | {med[n] / med['none']:.2f} | {int(runs_per[n])} | {extra} |")
    ratio = added["devstream"] / added["bare"] if added.get("bare") else float("inf")
    # the same difference taken within each round (the three ran back to back), which cancels
    # drift in the machine's load over the run
    paired = {n: statistics.median(a - b for a, b in zip(walls[n], walls["none"])) * 1000 /
              runs_per[n] for n in ("bare", "devstream") if runs_per[n]}
    pratio = paired["devstream"] / paired["bare"] if paired.get("bare") else float("inf")
    verdict = "ok" if max(ratio, pratio) <= 1.5 else "OVER"
    print(f"\nDevStream's added time per hook run / bare interpreter's: {ratio:.2f} from the "
          f"medians, {pratio:.2f} paired per round ({paired['bare']:.1f} vs "
          f"{paired['devstream']:.1f} ms; target <= 1.5: {verdict})\n")
    print("Per-hook durations from Claude Code's debug log (median ms):\n")
    events = sorted(set(per_event["bare"]) | set(per_event["devstream"]))
    print("| hook | bare | devstream | devstream / bare |")
    print("|---|---:|---:|---:|")
    for e in events:
        b = statistics.median(per_event["bare"].get(e) or [0])
        d = statistics.median(per_event["devstream"].get(e) or [0])
        print(f"| {e} | {b:.0f} | {d:.0f} | {d / b if b else 0:.2f} |")
    allb = [x for v in per_event["bare"].values() for x in v]
    alld = [x for v in per_event["devstream"].values() for x in v]
    print(f"| all | {statistics.median(allb):.0f} | {statistics.median(alld):.0f} | "
          f"{statistics.median(alld) / statistics.median(allb):.2f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"walls": walls, "counts": counts, "per_event": per_event}, fh)
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
