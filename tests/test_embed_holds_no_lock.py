"""While a background embed waits on Ollama (hanging, or slow), no transaction is open: every hook
event sent meanwhile is stored.  And the breaker opens when Ollama is not there at all."""
import json
import os
import subprocess
import time

import pytest

from ollama_stub import OllamaStub, free_port


def wait_for(cond, timeout=30.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def events(ds, n, tag):
    """n prompts and n tool failures, each a distinct memory; returns how many hooks exited 0."""
    ok = 0
    for i in range(n):
        for payload in ({"hook_event_name": "UserPromptSubmit", "session_id": tag,
                         "prompt": f"{tag} prompt number {i}: why does the importer stall"},
                        {"hook_event_name": "PostToolUseFailure", "session_id": tag,
                         "tool_name": "Bash", "tool_input": {"command": f"make step{i}"},
                         "error": f"{tag} failure number {i}: exit status 2"}):
            proc = ds.hook(payload)
            ok += proc.returncode == 0 and b"Traceback" not in proc.stderr
    return ok


def stored(ds, tag):
    return ds.sql("SELECT count(*) FROM memories WHERE content LIKE ?", (f"%{tag} % number %",))[0][0]


@pytest.mark.parametrize("fault", ["hang", "slow:4"])
def test_no_event_is_lost_while_the_embedder_waits(ds, fault):
    with OllamaStub(models={"embeddinggemma": 768}) as stub:
        ds.env["DEVSTREAM_OLLAMA_URL"] = stub.url
        ds.env["DEVSTREAM_EMBED_MODE"] = "background"
        for i in range(5):
            ds.cli("memory", "add", f"an earlier note {i} about the importer", check=True)
        stub.fault = fault
        embed = subprocess.Popen(ds.hook_argv[:-3] + ["embed"], env=ds.env, cwd=ds.project_dir,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert wait_for(lambda: stub.requests_to("/api/embed")), "embedder never called Ollama"
            assert embed.poll() is None
            ok = events(ds, 10, "during")
        finally:
            stub.fault = None
            if fault == "hang":
                embed.kill()
            out, err = embed.communicate(timeout=60)
        assert b"Traceback" not in err
        assert ok == 20
        assert stored(ds, "during") == 20, "events sent while the embedder waited were lost"
        assert not [r for r in ds.log_records() if r["event"] == "hook.store_unavailable"]
        if fault != "hang":
            # the slow batch is written afterwards, and the run goes on with what the hooks wrote
            assert embed.returncode == 0, err
            assert ds.sql("SELECT count(*) FROM memories WHERE embed_space IS NOT NULL")[0][0] == 25
            assert ds.sql("SELECT count(*) FROM embed_pending")[0][0] == 0


def breaker(ds):
    rows = ds.sql("SELECT state, fail_counter FROM breaker WHERE name='ollama'")
    return rows[0] if rows else ("closed", 0)


def background_runs(ds):
    return [r for r in ds.log_records() if r["event"].startswith("embed.background")]


def test_breaker_opens_when_ollama_refuses_and_stops_spawning_embedders(ds):
    ds.env["DEVSTREAM_OLLAMA_URL"] = f"http://127.0.0.1:{free_port()}"     # nothing listens
    ds.env["DEVSTREAM_EMBED_MODE"] = "background"
    ds.cli("memory", "add", "a note that waits for its embedding", check=True)
    # Ollama served a moment ago (so it keeps serving rather than handing over to the embedded
    # model) and is now gone
    ds.sql("INSERT INTO state(key, value) VALUES('embed_model', 'embeddinggemma'), "
           "('ollama_ok_at', ?)", (str(time.time()),))
    for n in range(1, 4):
        proc = ds.hook({"hook_event_name": "Stop", "session_id": "b"})
        assert proc.returncode == 0 and proc.stdout == b""
        assert wait_for(lambda: len(background_runs(ds)) >= n), f"embedder {n} never ran"
    assert breaker(ds) == ("open", 3)
    # open: further Stops start no embedder (each would log one background line)
    for _ in range(3):
        ds.hook({"hook_event_name": "Stop", "session_id": "b"})
    time.sleep(1.0)
    assert len(background_runs(ds)) == 3
    assert breaker(ds) == ("open", 3)
    # `devstream embed` is the user's own trial: it calls, fails clearly, and the count goes on
    proc = ds.cli("embed")
    assert proc.returncode == 1 and "nothing answers at" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert breaker(ds) == ("open", 4)
    assert ds.sql("SELECT count(*) FROM embed_pending")[0][0] == 1
    # doctor reads the same state
    check = doctor_breaker(ds)
    assert check["status"] == "WARN" and check["detail"].startswith("open since"), check
    assert "after 4 failures" in check["detail"]
    # once the reset time has passed it is half-open: doctor says so, and the next Stop starts
    # the one trial embedder, whose failure opens it again
    with open(os.path.join(ds.home, "config.toml"), "w") as fh:
        fh.write("breaker_reset_s = 1\n")
    time.sleep(1.1)
    assert doctor_breaker(ds)["detail"].startswith("half-open"), doctor_breaker(ds)
    ds.hook({"hook_event_name": "Stop", "session_id": "b"})
    assert wait_for(lambda: len(background_runs(ds)) == 4), "the trial embedder never ran"
    assert breaker(ds) == ("open", 5)


def doctor_breaker(ds):
    proc = ds.cli("doctor", "--json")
    return {c["name"]: c for c in json.loads(proc.stdout)["checks"]}["breaker"]
