"""Shared fixtures: a private DevStream home per test, and the real hook command.

The hook command is the one `devstream install` registers (launcher + absolute interpreter); it
is installed once per test session into a scratch home and then run as a real subprocess with
each test's own DEVSTREAM_HOME, exactly as Claude Code would run it.
"""
import json
import os
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")     # data only; sources in SOURCES.md there
PAYLOADS = os.path.join(FIXTURES, "hook-payloads")
sys.path.insert(0, ROOT)

HANG_GUARD_S = 60       # a hook still running after this is a hang, not a slow run


def base_env(tmp):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DEVSTREAM_", "CLAUDE", "XDG_"))}
    env.update({
        "HOME": os.path.join(tmp, "home"),
        "DEVSTREAM_HOME": os.path.join(tmp, "ds"),
        "DEVSTREAM_EMBED_MODE": "off",
        "DEVSTREAM_OLLAMA_URL": "http://127.0.0.1:9",   # discard port: nothing listens
        "DEVSTREAM_NO_PATH_LINK": "1",
    })
    os.makedirs(env["HOME"], exist_ok=True)
    return env


@pytest.fixture(scope="session")
def hook_argv(tmp_path_factory):
    """argv of the installed hook command (interpreter -IS launcher hook --cli claude)."""
    tmp = str(tmp_path_factory.mktemp("install"))
    env = base_env(tmp)
    subprocess.run([sys.executable, os.path.join(ROOT, "devstream.py"), "install"], env=env,
                   check=True, capture_output=True)
    with open(os.path.join(env["HOME"], ".claude", "settings.json")) as fh:
        settings = json.load(fh)
    cmd = settings["hooks"]["SessionStart"][0]["hooks"][0]["command"]
    return shlex.split(cmd)


class DevStream:
    """One private DevStream installation for a test."""

    def __init__(self, tmp, hook_argv):
        self.tmp = str(tmp)
        self.env = base_env(self.tmp)
        self.hook_argv = hook_argv
        self.home = self.env["DEVSTREAM_HOME"]
        self.db = os.path.join(self.home, "devstream.db")
        self.log_path = os.path.join(self.home, "logs", "devstream.log")
        self.project_dir = os.path.join(self.tmp, "project")
        os.makedirs(self.project_dir, exist_ok=True)

    def hook(self, payload, env=None, cli=None, **kw):
        """Run the real hook command with a payload (dict, str or bytes)."""
        if isinstance(payload, dict):
            payload = dict(payload)
            payload.setdefault("cwd", self.project_dir)
            payload.setdefault("session_id", "s-test")
            payload = json.dumps(payload)
        if isinstance(payload, str):
            payload = payload.encode()
        argv = list(self.hook_argv)
        if cli:
            argv[-1] = cli
        return subprocess.run(argv, input=payload, capture_output=True,
                              env=dict(self.env, **(env or {})), timeout=HANG_GUARD_S, **kw)

    def cli(self, *args, env=None, input=None, check=False, cwd=None):
        argv = list(self.hook_argv[:-3]) + [str(a) for a in args]
        proc = subprocess.run(argv, input=input, capture_output=True, text=True,
                              env=dict(self.env, **(env or {})), timeout=HANG_GUARD_S,
                              cwd=cwd or self.project_dir)
        if check and proc.returncode != 0:
            raise AssertionError(f"devstream {' '.join(map(str, args))} exited "
                                 f"{proc.returncode}: {proc.stderr}")
        # no command, however it fails, prints a traceback: checked on every call in the suite
        assert "Traceback (most recent call last)" not in (proc.stderr or ""), \
            f"devstream {' '.join(map(str, args))} printed a traceback:\n{proc.stderr}"
        return proc

    def cli_json(self, *args, **kw):
        proc = self.cli(*args, "--json", check=True, **kw)
        return json.loads(proc.stdout)

    def log_records(self):
        try:
            with open(self.log_path) as fh:
                return [json.loads(line) for line in fh if line.strip()]
        except FileNotFoundError:
            return []

    def sql(self, query, params=()):
        import apsw
        conn = apsw.Connection(self.db)
        conn.setbusytimeout(10000)
        try:
            return list(conn.execute(query, params))
        finally:
            conn.close()


@pytest.fixture
def ds(tmp_path, hook_argv):
    return DevStream(tmp_path, hook_argv)


def load_payload(name):
    with open(os.path.join(PAYLOADS, name)) as fh:
        return json.load(fh)


def assert_silent_success(proc):
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"" or proc.stdout == "", proc.stdout
    err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err
