#!/usr/bin/env python3
"""Hook wall time per event, whole process, against the interpreter floor.

    python3 bench/hooks.py [--memories 10000] [--runs 200] [--events E,E] [--pyz dist/devstream.pyz]
                           [--secrets] [--embedded] [--vectors D] [--cpu] [--home DIR]

Installs DevStream into a scratch home (from this source tree, or from a built .pyz), fills one
project with N realistic memories, then runs each hook event through the installed hook command
(exactly what Claude Code runs) with embedding off, so no event makes a network call.  The floor,
`python3 -I -S -c pass` on the same interpreter, is run interleaved with the events in the same
loop, so machine noise hits both alike.  Prints a Markdown table: median and p99 per event and
their ratio to the floor's median.  Targets: median <= 2.5x floor, p99 <= 5x floor.
"""
import argparse
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FILES = ["src/billing/invoice.py", "src/billing/ledger.py", "src/auth/session.py",
         "src/auth/tokens.py", "src/queue/worker.py", "src/queue/retry.py", "src/api/routes.py",
         "src/api/schemas.py", "src/cli/main.py", "migrations/0042_add_ledger.sql",
         "tests/test_invoice.py", "tests/test_worker.py", "web/src/components/Cart.tsx",
         "web/src/api/client.ts", "docs/architecture.md", "Makefile", "pyproject.toml"]
VERBS = ["refactor", "fix", "rename", "extract", "inline", "cache", "validate", "retry", "log",
         "paginate", "serialize", "parse", "migrate", "index", "batch", "debounce", "memoize"]
NOUNS = ["invoice total", "ledger entry", "session token", "retry policy", "webhook handler",
         "queue consumer", "rate limiter", "user profile", "cart item", "tax rule", "currency",
         "refund flow", "audit log", "feature flag", "db connection pool", "error boundary"]
ERRORS = ["AssertionError: 10.01 != 10.0", "KeyError: 'currency'", "TimeoutError: job exceeded 30s",
          "ModuleNotFoundError: No module named 'redis'", "TypeError: unsupported operand",
          "IntegrityError: duplicate key value violates unique constraint", "ECONNREFUSED 6379"]


def fake_memory(rng, i):
    kind = rng.choice(["edit", "edit", "command", "error", "prompt", "decision", "learning", "note"])
    f, v, n = rng.choice(FILES), rng.choice(VERBS), rng.choice(NOUNS)
    text = {
        "edit": f"Edited {f}: {v} the {n} handling (#{i})\n- old_{v}_{i}(x)\n+ new_{v}_{i}(x, y)",
        "command": f"$ pytest tests/ -k {v}_{i} -x\n{rng.randint(1, 300)} passed in 1.{i % 10}s",
        "error": f"$ pytest -x\ntests failed\nFAILED tests/test_{v}.py::test_{i} - {rng.choice(ERRORS)}",
        "prompt": f"please {v} the {n} in {f}, it breaks when {rng.choice(NOUNS)} is empty ({i})",
        "decision": f"Decided to {v} the {n} in {f} instead of patching callers ({i})",
        "learning": f"The {n} needs a {v} step before {rng.choice(NOUNS)}; learned in run {i}",
        "note": f"Note {i}: {n} owned by team {rng.choice('abcdef')}; see {f}",
    }[kind]
    return kind, text, (f if kind == "edit" else None)


def populate(home, project_dir, n, seed=7):
    os.environ["DEVSTREAM_HOME"] = home
    import devstream
    cfg = devstream.Config()
    store = devstream.open_store(cfg)
    project = devstream.find_project(project_dir)
    rng = random.Random(seed)
    now = time.time()
    with store.write():
        pid = store.project_id(project)
    # in transactions of 20,000, so the WAL is checkpointed as it goes instead of growing to the
    # size of the whole store (2 GB at a million memories)
    for start in range(0, n, 20000):
        with store.write():
            for i in range(start, min(n, start + 20000)):
                kind, text, path = fake_memory(rng, i)
                devstream.add_memory(store, pid, kind, text, path=path,
                                     session_id=f"old-{i // 50}", created_at=now - (n - i) * 60)
        if n >= 100000:
            print(f"  {min(n, start + 20000):,} memories", file=sys.stderr, flush=True)
    store.close()


def embed_all(home):
    """Every memory embedded by the embedded model, through DevStream's own embedder: real
    vectors, so that what a prompt finds, and what its hook injects, is what a user would get."""
    import devstream
    cfg = devstream.Config()
    cfg.values["embed_model"] = devstream.BUILTIN_MODEL
    store = devstream.open_store(cfg)
    done, error = devstream.embed_pending(store, cfg)
    store.close()
    if error:
        raise SystemExit(f"embedding failed: {error}")


def add_vectors(home, dim, prompts, seed=3):
    """Synthetic unit vectors for every memory and cached query vectors for the given prompts,
    as if Ollama had embedded everything (latency does not depend on the vectors' content)."""
    import array
    import devstream
    cfg = devstream.Config()
    store = devstream.open_store(cfg)
    store.load_vec()
    rng = random.Random(seed)

    def fresh():
        v = [rng.gauss(0, 1) for _ in range(dim)]
        n = sum(x * x for x in v) ** 0.5
        return array.array("f", (x / n for x in v)).tobytes()
    pool = [fresh() for _ in range(997)]      # drawing from a pool keeps 1M memories quick

    def unit():
        return rng.choice(pool)
    with store.write():
        space = devstream.ensure_space(store, cfg.embed_model, dim)
    rows = store.all("SELECT rowid, project_id FROM memories")
    for start in range(0, len(rows), 20000):        # transactions of 20,000, as in populate
        with store.write():
            for r, p in rows[start:start + 20000]:
                devstream.put_vector(store, space, r, p, unit())
    with store.write():
        store.execute("UPDATE memories SET embed_space=?", (space,))
        store.execute("DELETE FROM embed_pending")
        store.set_state("embed_model", cfg.embed_model)
        for text in prompts:
            key = f"{space}:{devstream.hash_text(devstream.redact(text))}"
            store.execute("INSERT OR REPLACE INTO query_cache(key, vector, at) VALUES(?,?,?)",
                          (key, unit(), time.time()))
    store.close()


def payloads(project_dir, i, secrets=False):
    f = os.path.join(project_dir, FILES[i % len(FILES)])
    base = {"session_id": "bench-session", "cwd": project_dir,
            "transcript_path": "/dev/null", "permission_mode": "default"}
    ev = {
        "SessionStart": {"hook_event_name": "SessionStart", "source": "startup"},
        # a prompt on a topic of its own: it finds memories not yet shown in the session to
        # inject (with the embedded model's real vectors), as a user's prompt does
        "UserPromptSubmit": {"hook_event_name": "UserPromptSubmit",
                             "prompt": f"why does the {NOUNS[i % len(NOUNS)]} fail in "
                                       f"{os.path.basename(FILES[i * 7 % len(FILES)])}? ({i})"},
        "PreToolUse": {"hook_event_name": "PreToolUse", "tool_name": "Edit",
                       "tool_input": {"file_path": f, "old_string": "a", "new_string": "b"}},
        "PreToolUse:Read": {"hook_event_name": "PreToolUse", "tool_name": "Read",
                            "tool_input": {"file_path": f}},
        "PostToolUse:Edit": {"hook_event_name": "PostToolUse", "tool_name": "Edit",
                             "tool_input": {"file_path": f, "old_string": f"x = {i}",
                                            "new_string": f"x = {i + 1}"},
                             "tool_response": {"filePath": f, "success": True}},
        "PostToolUse:Bash": {"hook_event_name": "PostToolUse", "tool_name": "Bash",
                             "tool_input": {"command": f"make build TARGET={i}"},
                             "tool_response": {"stdout": "ok\n", "stderr": "",
                                               "interrupted": False}},
        "PostToolUseFailure": {"hook_event_name": "PostToolUseFailure", "tool_name": "Bash",
                               "tool_input": {"command": f"pytest -x -k case_{i}"},
                               "error": f"Exit code 1\nFAILED tests/test_invoice.py::test_{i} - "
                                        "AssertionError"},
        "Stop": {"hook_event_name": "Stop", "stop_hook_active": False,
                 "last_assistant_message": "Done."},
        "SubagentStop": {"hook_event_name": "SubagentStop", "agent_type": "Explore",
                         "last_assistant_message": f"Found the retry loop in worker.py ({i})."},
        "PreCompact": {"hook_event_name": "PreCompact", "trigger": "auto",
                       "custom_instructions": ""},
        "SessionEnd": {"hook_event_name": "SessionEnd", "reason": "other"},
    }
    if secrets:
        # the same events carrying secrets: the redactor's rules run (from their compiled cache)
        key = f"ghp_{i:06d}Kq8ZtV3mWx7YpL2nR5sB9cD4fG6hJ1aQe"
        ev.update({
            "UserPromptSubmit+secret": {
                "hook_event_name": "UserPromptSubmit",
                "prompt": f"deploy with token {key}; the staging password is Tr0ub4dor&{i} ok?"},
            "PostToolUse:Bash+secret": {
                "hook_event_name": "PostToolUse", "tool_name": "Bash",
                "tool_input": {"command": f"curl -H 'Authorization: Bearer {key}' https://api/{i}"},
                "tool_response": {"stdout": f"export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/"
                                            f"bPxRfiCY{i:08d}KEY\n", "stderr": "",
                                  "interrupted": False}},
            "PostToolUse:Edit+secret": {
                "hook_event_name": "PostToolUse", "tool_name": "Edit",
                "tool_input": {"file_path": f, "old_string": "API_KEY = None",
                               "new_string": f"API_KEY = 'sk-proj-{i:08d}AbXyQ7rT2mK9pL4wZ8vN3cF'"},
                "tool_response": {"filePath": f, "success": True}},
            "PostToolUseFailure+secret": {
                "hook_event_name": "PostToolUseFailure", "tool_name": "Bash",
                "tool_input": {"command": f"docker login -u ci -p Zx9{i:05d}qWe registry"},
                "error": "Exit code 1\nError response from daemon: unauthorized"},
        })
    return {k: json.dumps(dict(base, **v)).encode() for k, v in ev.items()}


def install(home, pyz, source=None):
    """Install DevStream into `home` from a built .pyz, or from a devstream.py (this tree's by
    default); the argv of its hook command."""
    env = dict(os.environ, DEVSTREAM_HOME=home, HOME=os.path.join(home, "h"),
               DEVSTREAM_NO_PATH_LINK="1")
    env.pop("CLAUDE_CONFIG_DIR", None)
    os.makedirs(env["HOME"], exist_ok=True)
    if pyz:
        python = shlex.split(open(pyz, "rb").readline()[2:].decode())[0]
        cmd = [python, "-IS", pyz, "install"]
    else:
        cmd = [sys.executable, source or os.path.join(ROOT, "devstream.py"), "install"]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    with open(os.path.join(env["HOME"], ".claude", "settings.json")) as fh:
        return shlex.split(json.load(fh)["hooks"]["SessionStart"][0]["hooks"][0]["command"])


def embedded_env(env):
    """The hooks' environment with the embedded model serving (no Ollama answers)."""
    env.update(DEVSTREAM_EMBED_MODE="background", DEVSTREAM_EMBED_MODEL="builtin",
               DEVSTREAM_OLLAMA_URL="http://127.0.0.1:9")
    return env


def hold_embedder_lock(home):
    """The detached background embedder is not part of any hook's time: holding its lock, a
    Stop finds "one already running" (as it would in a long session) instead of starting one.
    Returns the lock's descriptor, to keep open."""
    import fcntl
    lock = os.open(os.path.join(home, "embed.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return lock


CPU = []     # with --cpu: CPU time (user + system) of each process instead of wall time


def timed(argv, data, env):
    import resource
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    dt = (time.perf_counter() - t0) * 1000
    if proc.returncode != 0 or b"Traceback" in proc.stderr:
        raise SystemExit(f"{argv} failed: {proc.stderr.decode()[:500]}")
    if CPU:
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000
    return dt


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memories", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--events", default="")
    ap.add_argument("--pyz", help="benchmark an installed .pyz instead of the source tree")
    ap.add_argument("--json", help="also write raw results to this file")
    ap.add_argument("--target-ms", type=float, default=0,
                    help="judge medians against this absolute target instead of the floor bar")
    ap.add_argument("--secrets", action="store_true",
                    help="also time the capturing events with text that holds secrets")
    ap.add_argument("--vectors", type=int, default=0,
                    help="also give every memory a vector of this dimension and cache the "
                         "prompts' query vectors (UserPromptSubmit then runs hybrid search)")
    ap.add_argument("--embedded", action="store_true",
                    help="the embedded static model serves: every memory gets a vector in its "
                         "space and UserPromptSubmit embeds each prompt itself")
    ap.add_argument("--cpu", action="store_true",
                    help="measure each process's CPU time (user + system) instead of wall time: "
                         "steadier than wall time on a machine loaded by other work")
    ap.add_argument("--home", help="keep the filled store in this folder, and time a store "
                                   "filled there by an earlier run with the same options instead "
                                   "of filling a new one (a million memories take ~10 minutes)")
    args = ap.parse_args()
    if args.cpu:
        CPU.append(True)

    home = os.path.abspath(args.home) if args.home else tempfile.mkdtemp(prefix="devstream-bench-")
    project = os.path.join(home, "project")
    filled = os.path.exists(os.path.join(home, "filled"))
    os.makedirs(project, exist_ok=True)
    argv = install(home, args.pyz)
    env = dict(os.environ, DEVSTREAM_HOME=home, DEVSTREAM_EMBED_MODE="off")
    if filled:
        print(f"timing the store filled earlier in {home}", file=sys.stderr)
    else:
        t0 = time.perf_counter()
        populate(home, project, args.memories)
        print(f"populated {args.memories} memories in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
    if args.vectors and not filled:
        prompts = [json.loads(payloads(project, i)["UserPromptSubmit"])["prompt"]
                   for i in list(range(args.runs)) + [10 ** 6 + w for w in range(5)]]
        t0 = time.perf_counter()
        add_vectors(home, args.vectors, prompts)
        print(f"added {args.vectors}-d vectors in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if args.vectors:
        # vectors on, Ollama unreachable: every query vector must come from the cache
        env.update(DEVSTREAM_EMBED_MODE="background", DEVSTREAM_OLLAMA_URL="http://127.0.0.1:9")
    if args.embedded and not filled:
        t0 = time.perf_counter()
        embed_all(home)
        print(f"embedded every memory in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if args.home:
        open(os.path.join(home, "filled"), "w").close()
    if args.embedded:
        embedded_env(env)
    env.pop("DEVSTREAM_DISABLE", None)
    lock = hold_embedder_lock(home)     # noqa: F841 (held until the benchmark exits)
    floor_argv = [argv[0], "-I", "-S", "-c", "pass"]
    names = list(payloads(project, 0, args.secrets))
    if args.events:
        names = [n for n in names if n in args.events.split(",")]
    results = {n: [] for n in ["floor"] + names}
    for warm in range(5):
        timed(floor_argv, b"", env)
        for name, data in payloads(project, 10 ** 6 + warm, args.secrets).items():
            if name in names:
                timed(argv, data, env)
    for i in range(args.runs):
        batch = payloads(project, i, args.secrets)
        results["floor"].append(timed(floor_argv, batch["Stop"], env))
        for name in names:
            results[name].append(timed(argv, batch[name], env))
    floor = statistics.median(results["floor"])
    vec = f", {args.vectors}-d vectors with cached query vectors" if args.vectors else \
        ", embedded model on (prompts embedded in the hook)" if args.embedded else \
        ", embedding off"
    what = "CPU time (user + system)" if args.cpu else "wall time"
    print(f"\n{args.memories:,} memories{vec}, {args.runs} runs per event, {what}, "
          f"Python {sys.version.split()[0]}, floor = `python3 -I -S -c pass`\n")
    print("| event | median ms | p99 ms | median / floor | p99 / floor | verdict |")
    print("|---|---:|---:|---:|---:|---|")
    ok = True
    for name, vals in results.items():
        med, p99 = statistics.median(vals), pct(vals, 99)
        if name == "floor":
            print(f"| floor | {med:.1f} | {p99:.1f} | 1.00 | {p99 / floor:.2f} | |")
            continue
        good = med <= args.target_ms if args.target_ms else \
            (med <= 2.5 * floor and p99 <= 5 * floor)
        ok &= good
        print(f"| {name} | {med:.1f} | {p99:.1f} | {med / floor:.2f} | {p99 / floor:.2f} | "
              f"{'ok' if good else 'OVER'} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"memories": args.memories, "runs": args.runs, "results": results}, fh)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
