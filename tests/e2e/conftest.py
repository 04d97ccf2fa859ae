"""Shared helpers for the end-to-end suite: the real agent binaries, a scratch HOME, one install.

The agent CLIs are the npm packages pinned in tests/e2e/package.json (`npm ci --prefix tests/e2e`
puts their binaries in tests/e2e/node_modules/.bin/).  A missing binary skips the test with the
reason, except under CI (env CI set), where it fails: CI must run this suite.

DevStream is installed once per test session by the real `./install.sh` into a scratch HOME
(`installed` fixture).  Each test then gets its own HOME (`agent_home`) holding a copy of the
agent settings that the install wrote, its own DEVSTREAM_HOME (its own database) and its own
project directory, so tests never see each other's memory.

This package has an __init__.py so that its conftest does not shadow tests/conftest.py; import
helpers with `from .conftest import ...`.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

E2E = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(E2E)
ROOT = os.path.dirname(TESTS)
BIN_DIR = os.environ.get("DEVSTREAM_E2E_BIN_DIR") or os.path.join(E2E, "node_modules", ".bin")
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

RUN_TIMEOUT_S = 180     # an agent run still going after this is a hang, not a slow run
IN_CI = bool(os.environ.get("CI"))


def agent_binary(name):
    """Path of an agent CLI installed by npm, or skip (fail under CI) with the reason."""
    path = os.path.join(BIN_DIR, name)
    if os.path.exists(path):
        return path
    reason = (f"{name} is not installed in {os.path.relpath(BIN_DIR, ROOT)}: run "
              "`npm ci --prefix tests/e2e --no-audit --no-fund`")
    if shutil.which("npm") is None:
        reason += " (npm is not available on this machine)"
    if IN_CI:
        pytest.fail(reason + "; CI must run the end-to-end suite", pytrace=False)
    pytest.skip(reason)


def clean_env(home, **extra):
    """An environment with nothing of the developer's own: no agent, DevStream or XDG variables,
    HOME is scratch, no network for embeddings (the discard port), the scratch ~/.local/bin first
    on PATH (where install links `devstream`)."""
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "TERM", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update({
        "HOME": str(home),
        "PATH": os.path.join(str(home), ".local", "bin") + os.pathsep +
                os.environ.get("PATH", "/usr/bin:/bin"),
        "DEVSTREAM_EMBED_MODE": "off",
        "DEVSTREAM_OLLAMA_URL": "http://127.0.0.1:9",
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Installed:
    """The result of one `./install.sh` run into a scratch HOME."""

    def __init__(self, home, output):
        self.home = home
        self.output = output
        self.claude_settings = os.path.join(home, ".claude", "settings.json")
        with open(self.claude_settings) as fh:
            settings = json.load(fh)
        self.hook_command = settings["hooks"]["SessionStart"][0]["hooks"][0]["command"]
        self.devstream = os.path.join(home, ".local", "bin", "devstream")
        self.data = os.path.join(home, ".local", "share", "devstream")


def run_install_sh(home, *args, cwd=None, env=None, check=True):
    """Run the repository's ./install.sh (from cwd, default the repository) with a scratch HOME."""
    env = env or clean_env(home)
    proc = subprocess.run(["sh", os.path.join(ROOT, "install.sh"), *args], cwd=cwd or ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"install.sh {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    """DevStream installed by ./install.sh into a scratch HOME, once per test session."""
    home = tmp_path_factory.mktemp("install-home")
    proc = run_install_sh(home)
    return Installed(str(home), proc.stdout + proc.stderr)


class AgentHome:
    """A test's own HOME with DevStream's registration copied in, its own database and project."""

    def __init__(self, tmp, installed):
        self.tmp = str(tmp)
        self.installed = installed
        self.home = os.path.join(self.tmp, "home")
        self.ds_home = os.path.join(self.tmp, "devstream")
        self.project = os.path.join(self.tmp, "project")
        for d in (self.home, self.ds_home, self.project):
            os.makedirs(d, exist_ok=True)
        os.makedirs(os.path.join(self.home, ".local", "bin"), exist_ok=True)
        os.symlink(os.path.realpath(installed.devstream),
                   os.path.join(self.home, ".local", "bin", "devstream"))
        self.env = clean_env(self.home, DEVSTREAM_HOME=self.ds_home)
        self.db = os.path.join(self.ds_home, "devstream.db")
        self.log_path = os.path.join(self.ds_home, "logs", "devstream.log")

    def copy_settings(self, src, rel):
        dst = os.path.join(self.home, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy(src, dst)
        return dst

    def devstream(self, *args, check=True, cwd=None, input=None):
        """Run the installed `devstream` command in this HOME (cwd: the project)."""
        proc = subprocess.run([self.installed.devstream, *map(str, args)], cwd=cwd or self.project,
                              env=self.env, capture_output=True, text=True, input=input,
                              timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"devstream {' '.join(map(str, args))} exited "
                                 f"{proc.returncode}: {proc.stderr}")
        return proc

    def devstream_json(self, *args, **kw):
        return json.loads(self.devstream(*args, "--json", **kw).stdout)

    def sql(self, query, params=()):
        import apsw
        conn = apsw.Connection(self.db, flags=apsw.SQLITE_OPEN_READONLY)
        conn.setbusytimeout(10000)
        try:
            return list(conn.execute(query, params))
        finally:
            conn.close()

    def log_records(self):
        try:
            with open(self.log_path) as fh:
                return [json.loads(line) for line in fh if line.strip()]
        except FileNotFoundError:
            return []


@pytest.fixture
def agent_home(tmp_path, installed):
    return AgentHome(tmp_path, installed)


def git_init(path):
    subprocess.run(["git", "init", "-q", str(path)], check=True, capture_output=True)
    subprocess.run(["git", "-C", str(path), "-c", "user.email=t@example.com", "-c",
                    "user.name=t", "commit", "-q", "--allow-empty", "-m", "init"], check=True,
                   capture_output=True)


def write_files(root, files):
    for rel, text in files.items():
        path = os.path.join(str(root), rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)


def wait_for(predicate, timeout_s=30, interval_s=0.1):
    """Poll until predicate() is truthy (for work an agent finishes after it exits)."""
    end = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > end:
            return value
        time.sleep(interval_s)
