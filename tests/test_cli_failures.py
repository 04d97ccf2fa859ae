"""Every command-line failure is one line on stderr and exit 1, never a traceback: a lock held
past the timeout, a full disk, a damaged page, a read-only database, an unusable ~/.claude,
inputs that never end.  Bad settings are named; one bad field never drops a hook event."""
import json
import os
import shutil
import signal
import subprocess

import pytest

from ollama_stub import OllamaStub
from test_hook_faults import held_lock

ROOT = os.geteuid() == 0


def one_line_failure(proc, *words):
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("devstream: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in proc.stderr, (w, proc.stderr)
    return lines[0]


def plain_user(ds, *args):
    """Run the CLI without root's power to ignore file permissions (a real user's view)."""
    argv = list(ds.hook_argv[:-3]) + [str(a) for a in args]
    if ROOT:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: permissions cannot be tested")
        argv = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"] + argv
    return subprocess.run(argv, capture_output=True, text=True, env=ds.env, cwd=ds.project_dir,
                          timeout=60)


def write_config(ds, text):
    os.makedirs(ds.home, exist_ok=True)
    with open(os.path.join(ds.home, "config.toml"), "w") as fh:
        fh.write(text)


def test_lock_held_past_the_timeout(ds):
    ds.cli("memory", "add", "first", check=True)
    write_config(ds, "cli_busy_timeout_ms = 300\n")
    with held_lock(ds.db):
        one_line_failure(ds.cli("memory", "add", "second"), "locked")
    assert ds.cli("memory", "add", "second").returncode == 0


def _full_disk_at(limit):
    def pre():
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


def full_disk(ds, *args):
    argv = list(ds.hook_argv[:-3]) + [str(a) for a in args]
    limit = 4096            # no file may grow past 4 KiB: the first WAL frame already fails
    return subprocess.run(argv, capture_output=True, text=True, env=ds.env, cwd=ds.project_dir,
                          timeout=60, preexec_fn=_full_disk_at(limit))


def test_disk_full_mid_write(ds, tmp_path):
    for i in range(30):
        ds.cli("memory", "add", f"memory {i} " + "filler text " * 200, check=True)
    if os.path.exists(ds.log_path):
        os.unlink(ds.log_path)
    one_line_failure(full_disk(ds, "memory", "add", "x " * 1900), "disk full")
    one_line_failure(full_disk(ds, "gc", "--keep", "5", "--vacuum"))
    out = tmp_path / "export.jsonl"
    one_line_failure(full_disk(ds, "export", "-o", out))
    assert not os.path.exists(out)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".export.jsonl")], \
        "a failed export leaves no temporary file"
    plan = tmp_path / "plan.md"
    plan.write_text("# Big plan\n" + "".join(f"- [ ] step {i} " + "words " * 100 + "\n"
                                             for i in range(80)))
    one_line_failure(full_disk(ds, "plan", "--from", plan))
    assert ds.sql("PRAGMA integrity_check")[0][0] == "ok"
    assert ds.sql("SELECT count(*) FROM memories")[0][0] == 30
    assert ds.sql("SELECT count(*) FROM tasks")[0][0] == 0


def test_damaged_page(ds):
    ds.cli("memory", "add", "a memory", check=True)
    with open(ds.db, "r+b") as fh:
        fh.seek(100)
        fh.write(os.urandom(3000))      # the schema page
    one_line_failure(ds.cli("memory", "list"), "damaged", "devstream recover")
    one_line_failure(ds.cli("memory", "add", "more"), "damaged")


def test_read_only_database(ds):
    ds.cli("memory", "add", "a memory", check=True)
    os.chmod(ds.db, 0o400)
    one_line_failure(plain_user(ds, "memory", "add", "another"), "read-only")


def test_install_with_an_unusable_claude_directory(ds):
    home = ds.env["HOME"]
    claude = os.path.join(home, ".claude")
    with open(claude, "w") as fh:
        fh.write("not a directory")
    one_line_failure(ds.cli("install"), ".claude")
    os.unlink(claude)
    os.makedirs(claude)
    os.chmod(claude, 0o500)
    try:
        one_line_failure(plain_user(ds, "install"), ".claude")
    finally:
        os.chmod(claude, 0o700)


def test_embed_with_a_300_dimension_model(ds):
    with OllamaStub(models={"embeddinggemma": 300}) as stub:
        ds.env["DEVSTREAM_OLLAMA_URL"] = stub.url
        ds.env["DEVSTREAM_EMBED_MODE"] = "background"
        ds.cli("memory", "add", "the ledger keeps integer cents", check=True)
        assert ds.cli_json("embed")["memories"] == 1
        hits = ds.cli_json("memory", "search", "ledger cents", "--mode", "vector")
        assert hits and hits[0]["vector"] > 0.5


def test_a_model_that_changes_dimension_is_embedded_again(ds):
    with OllamaStub(models={"embeddinggemma": 768}) as stub:
        ds.env["DEVSTREAM_OLLAMA_URL"] = stub.url
        ds.env["DEVSTREAM_EMBED_MODE"] = "background"
        ds.cli("memory", "add", "the ledger keeps integer cents", check=True)
        ds.cli("embed", check=True)
        stub.remove_model("embeddinggemma")
        stub.add_model("embeddinggemma", 512)
        ds.cli("memory", "add", "webhooks are retried", check=True)
        out = ds.cli_json("embed")
        assert out["problems"] == [] and out["pending"] == 0
        assert ds.sql("SELECT dim FROM embed_spaces ORDER BY id") == [(768,), (512,)]
        assert ds.sql("SELECT DISTINCT embed_space FROM memories") == [(2,)]
        assert ds.cli_json("memory", "search", "ledger cents", "--mode", "vector")


def test_inputs_that_never_end_are_refused(ds, tmp_path):
    fifo = str(tmp_path / "pipe.jsonl")
    os.mkfifo(fifo)
    for path in ("/dev/zero", fifo):
        for args in (("import-transcripts", path), ("import", path), ("plan", "--from", path)):
            one_line_failure(ds.cli(*args), path)


def test_bad_settings_are_named(ds):
    write_config(ds, 'budget_promt = 2000\nembed_mode = "inlin"\n')
    line = one_line_failure(ds.cli("memory", "list"), "budget_promt", "budget_prompt")
    assert "more" in line
    doc = json.loads(ds.cli("doctor", "--json").stdout)
    check = [c for c in doc["checks"] if c["name"] == "config"][0]
    assert check["status"] == "WARN" and "budget_promt" in check["detail"]
    assert "embed_mode" in check["detail"] and "inlin" in check["detail"]
    # hooks keep running on the defaults
    proc = ds.hook({"hook_event_name": "UserPromptSubmit", "prompt": "still recorded"})
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    assert ds.sql("SELECT count(*) FROM memories WHERE content='still recorded'")[0][0] == 1
    write_config(ds, "this is not toml [\n")
    one_line_failure(ds.cli("memory", "list"), "config")
    proc = ds.hook({"hook_event_name": "UserPromptSubmit", "prompt": "recorded anyway"})
    assert ds.sql("SELECT count(*) FROM memories WHERE content='recorded anyway'")[0][0] == 1
    ds.env["DEVSTREAM_EMBED_MODE"] = "sometimes"
    write_config(ds, "")
    one_line_failure(ds.cli("memory", "list"), "DEVSTREAM_EMBED_MODE")


def test_one_bad_field_does_not_drop_the_event(ds):
    raw = ('{"hook_event_name": "UserPromptSubmit", "session_id": "s1", "cwd": %s, '
           '"prompt": "half a pair \\ud83d here", "transcript_path": 42}'
           % json.dumps(ds.project_dir))
    proc = ds.hook(raw.encode())
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    assert ds.sql("SELECT content FROM memories") == [("half a pair \ufffd here",)]
    proc = ds.hook({"hook_event_name": "SessionStart", "source": "startup", "session_id": "s2",
                    "transcript_path": {"not": "a path"}})
    assert ds.sql("SELECT transcript_path FROM sessions WHERE id='s2'") == [(None,)]
    assert not [r for r in ds.log_records() if r["level"] == "error"]
