#!/usr/bin/env python3
"""Hook events sent while a background embed waits on Ollama: how many are stored, how long each
hook takes.  Ollama is tests/ollama_stub.py (a real HTTP server on 127.0.0.1) set to hang, to
answer slowly, or to answer each text after a delay like a CPU model.

    python3 bench/embed_wait.py [--events 20] [--memories 64]

For each case it starts `devstream embed` (which waits on the stand-in), sends --events prompts
and tool failures through the real hook command meanwhile, and prints attempted / stored / lost
and the hooks' median and maximum wall time.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from hooks import install  # noqa: E402
from ollama_stub import OllamaStub  # noqa: E402


def run_case(fault, n_events, n_memories):
    with tempfile.TemporaryDirectory() as tmp, OllamaStub(models={"embeddinggemma": 768}) as stub:
        home = os.path.join(tmp, "ds")
        argv = install(home, None)
        env = dict(os.environ, DEVSTREAM_HOME=home, HOME=os.path.join(home, "h"),
                   DEVSTREAM_OLLAMA_URL=stub.url, DEVSTREAM_EMBED_MODE="background")
        project = os.path.join(tmp, "project")
        os.makedirs(project)
        cli = argv[:-3]
        for i in range(n_memories):
            subprocess.run(cli + ["memory", "add", f"note {i} about the importer"], env=env,
                           cwd=project, check=True, capture_output=True)
        stub.fault = fault
        embed = subprocess.Popen(cli + ["embed"], env=env, cwd=project,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not stub.requests_to("/api/embed"):
            time.sleep(0.02)
        times, ok = [], 0
        for i in range(n_events):
            payload = {"hook_event_name": "UserPromptSubmit", "session_id": "b", "cwd": project,
                       "prompt": f"bench prompt number {i} while the embedder waits"}
            t0 = time.perf_counter()
            proc = subprocess.run(argv, input=json.dumps(payload).encode(), env=env,
                                  capture_output=True)
            times.append((time.perf_counter() - t0) * 1000)
            ok += proc.returncode == 0
        stub.fault = None
        embed.kill() if fault == "hang" else embed.wait(timeout=120)
        embed.wait()
        out = subprocess.run(cli + ["memory", "search", "bench prompt number", "--limit", "1000",
                                    "--json"], env=env, cwd=project, capture_output=True)
        stored = sum(1 for m in json.loads(out.stdout) if m["content"].startswith("bench prompt"))
        times.sort()
        return n_events, stored, times[len(times) // 2], times[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--memories", type=int, default=64)
    args = ap.parse_args()
    print("| Ollama | attempted | stored | lost | hook median ms | hook max ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, fault in (("hanging", "hang"), ("5 s per batch", "slow:5")):
        n, stored, med, worst = run_case(fault, args.events, args.memories)
        print(f"| {label} | {n} | {stored} | {n - stored} | {med:.1f} | {worst:.1f} |")


if __name__ == "__main__":
    main()
