"""The fault suite: the real hook command and CLI under the faults a user's machine produces.
Every case counts attempted / acknowledged / survived / lost and tracebacks, and requires 0 lost
and 0 tracebacks.  An event is acknowledged when its hook ran to the end without logging a
failure (a hook always exits 0, so a failure shows only in the log); lost means acknowledged but
not in the database afterwards.  `pytest tests/test_fault_suite.py -s` prints the table.

    SIGKILL of hooks and of embed / gc at random moments; a full disk (RLIMIT_FSIZE); a writer
    holding the lock past the deadline; hanging, slow, failing and wrong-dimension Ollama while
    hooks write; 8 hook writers + CLI readers + embed + gc at once.
"""
import json
import os
import random
import signal
import subprocess
import time

import pytest

from ollama_stub import OllamaStub
from test_hook_faults import held_lock

RESULTS = []


def report(case, attempted, acknowledged, survived, tracebacks, ds):
    lost = acknowledged - survived
    integrity = ds.sql("PRAGMA integrity_check")[0][0]
    row = (f"| {case} | {attempted} | {acknowledged} | {survived} | {lost} | {tracebacks} | "
           f"{integrity} |")
    RESULTS.append(row)
    print("\n| case | attempted | acknowledged | survived | lost | tracebacks | integrity |\n"
          "|---|---:|---:|---:|---:|---:|---:|\n" + row)
    assert lost == 0, row
    assert tracebacks == 0, row
    assert integrity == "ok", row


def prompt_payload(ds, tag, i):
    return json.dumps({"hook_event_name": "UserPromptSubmit", "session_id": f"fault-{tag}",
                       "cwd": ds.project_dir,
                       "prompt": f"fault {tag} event {i}: check the importer"}).encode()


def stored(ds, tag):
    rows = ds.sql("SELECT content FROM memories WHERE content LIKE ?", (f"fault {tag} event %",))
    return {int(r[0].split("event ")[1].split(":")[0]) for r in rows}


def failures_logged(ds, since):
    return [r for r in ds.log_records()[since:]
            if r["event"] in ("hook.store_unavailable", "hook.failed", "hook.deadline")]


class Runner:
    """Sends hook events one by one and keeps count."""

    def __init__(self, ds, tag, env=None):
        self.ds, self.tag, self.env = ds, tag, dict(ds.env, **(env or {}))
        self.attempted, self.acked, self.tracebacks = 0, set(), 0

    def send(self, i, preexec_fn=None, kill_after=None):
        self.attempted += 1
        before = len(self.ds.log_records())
        proc = subprocess.Popen(self.ds.hook_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env, preexec_fn=preexec_fn)
        killed = False
        if kill_after is not None:
            proc.stdin.write(prompt_payload(self.ds, self.tag, i))
            proc.stdin.close()
            try:
                proc.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                killed = True
            out, err = proc.stdout.read(), proc.stderr.read()
            proc.wait()
        else:
            out, err = proc.communicate(prompt_payload(self.ds, self.tag, i), timeout=60)
        self.tracebacks += b"Traceback" in err
        if not killed and proc.returncode == 0 and not failures_logged(self.ds, before):
            self.acked.add(i)

    def finish(self, case):
        survived = len(self.acked & stored(self.ds, self.tag))
        report(case, self.attempted, len(self.acked), survived, self.tracebacks, self.ds)


def test_sigkill_of_hooks_at_random_moments(ds):
    rng = random.Random(8)
    r = Runner(ds, "kill")
    for i in range(30):
        r.send(i, kill_after=rng.uniform(0.0, 0.25))
    assert r.attempted > len(r.acked) > 0, "some hooks must be killed and some must finish"
    r.finish("SIGKILL of hooks at random moments")


def _background_cli(ds, args):
    return subprocess.Popen(ds.hook_argv[:-3] + args, env=ds.env, cwd=ds.project_dir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_of_embed_and_gc_while_hooks_write(ds):
    rng = random.Random(9)
    with OllamaStub(models={"embeddinggemma": 768}) as stub:
        ds.env.update(DEVSTREAM_OLLAMA_URL=stub.url, DEVSTREAM_EMBED_MODE="background")
        stub.fault = "slow:0.05"
        r = Runner(ds, "killbg")
        tracebacks = 0
        for i in range(24):
            job = _background_cli(ds, ["embed"] if i % 2 else ["gc", "--older-than", "365",
                                                                "--vacuum"])
            r.send(i)
            time.sleep(rng.uniform(0.0, 0.1))
            job.send_signal(signal.SIGKILL)
            tracebacks += b"Traceback" in job.stderr.read()
            job.wait()
        r.tracebacks += tracebacks
        stub.fault = None
        assert ds.cli("embed").returncode == 0
        r.finish("SIGKILL of embed / gc while hooks write")


def _full_disk():
    import resource
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_disk_full(ds):
    r = Runner(ds, "full")
    for i in range(5):
        r.send(i)
    for i in range(5, 15):
        r.send(i, preexec_fn=_full_disk)      # every file write past 4 KiB fails, as when full
    for i in range(15, 20):
        r.send(i)
    assert len(r.acked) >= 10, r.acked
    r.finish("disk full (RLIMIT_FSIZE) between writes")


def test_a_writer_holds_the_lock_past_the_deadline(ds):
    ds.hook({"hook_event_name": "SessionStart", "source": "startup"})
    with open(os.path.join(ds.home, "config.toml"), "w") as fh:
        fh.write("hook_deadline_ms = 600\n")
    r = Runner(ds, "lock")
    for i in range(5):
        r.send(i)
    with held_lock(ds.db):
        for i in range(5, 10):
            r.send(i)       # each is kept (deferred/), for upgrade-store to store once free
    for i in range(10, 15):
        r.send(i)
    assert len(r.acked) == 15, r.acked
    deadline = time.time() + 30
    while os.listdir(os.path.join(ds.home, "deferred")):
        assert time.time() < deadline, "the events kept while locked were not replayed"
        time.sleep(0.1)
    r.finish("writer holds the lock past the deadline")


@pytest.mark.parametrize("fault", ["hang", "slow:2", "error500", "wrong_dim"])
def test_ollama_faults_while_hooks_write(ds, fault):
    with OllamaStub(models={"embeddinggemma": 768}) as stub:
        ds.env.update(DEVSTREAM_OLLAMA_URL=stub.url, DEVSTREAM_EMBED_MODE="background")
        for i in range(4):
            ds.cli("memory", "add", f"an earlier note {i}", check=True)
        ds.cli("embed", check=True)                    # a space exists: prompts call Ollama too
        ds.cli("memory", "add", "waits for the embedder", check=True)
        stub.fault = fault
        embed = _background_cli(ds, ["embed"])
        r = Runner(ds, "ollama")
        for i in range(10):
            r.send(i)
            if i == 4:
                ds.hook({"hook_event_name": "Stop", "session_id": "fault-ollama"})
        stub.fault = None
        if fault == "hang":
            embed.kill()
        r.tracebacks += b"Traceback" in embed.communicate(timeout=60)[1]
        assert len(r.acked) == 10
        r.finish(f"Ollama {fault} while hooks write")


WRITER = r"""
import json, subprocess, sys
argv, project, wid, n = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
bad = 0
for i in range(n):
    p = {"hook_event_name": "UserPromptSubmit", "session_id": f"w{wid}", "cwd": project,
         "prompt": f"fault mixed event {wid * 1000 + i}: check the importer"}
    proc = subprocess.run(argv, input=json.dumps(p).encode(), capture_output=True)
    bad += proc.returncode != 0 or b"Traceback" in proc.stderr
print(bad)
"""


def test_eight_writers_readers_embed_and_gc_at_once(ds):
    with OllamaStub(models={"embeddinggemma": 768}) as stub:
        ds.env.update(DEVSTREAM_OLLAMA_URL=stub.url, DEVSTREAM_EMBED_MODE="background")
        ds.cli("memory", "add", "the importer reads the ledger", check=True)
        n = 12
        writers = [subprocess.Popen([os.sys.executable, "-c", WRITER, json.dumps(ds.hook_argv),
                                     ds.project_dir, str(w), str(n)], env=ds.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                   for w in range(8)]
        side, tracebacks = [], 0
        while any(w.poll() is None for w in writers):
            for args in (["memory", "search", "importer ledger"], ["memory", "list"],
                         ["embed"], ["gc", "--older-than", "365"]):
                side.append(ds.cli(*args))
        bad = sum(int(w.communicate()[0] or 0) for w in writers)
        tracebacks += sum("Traceback" in p.stderr for p in side)
        attempted = 8 * n
        got = stored(ds, "mixed")
        failed = failures_logged(ds, 0)
        acked = attempted - len(failed) - bad
        report(f"8 hook writers + {len(side)} CLI reads, embeds, gcs at once", attempted,
               acked, min(acked, len(got)), tracebacks, ds)
        assert len(got) == acked
