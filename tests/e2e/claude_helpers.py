"""Driving the real Claude Code binary in -p mode against the scripted Anthropic stand-in."""
import json
import os
import subprocess
import time

import pytest

from anthropic_stub import LEDGER_PROJECT, AnthropicStub
from .claude_cli import claude_argv, claude_env, hook_lines
from .conftest import RUN_TIMEOUT_S, AgentHome, agent_binary, git_init, write_files

def make_project(path):
    write_files(path, LEDGER_PROJECT)
    git_init(path)
    return path


class ClaudeRun:
    """One finished `claude -p` run: its stream-json events and debug log."""

    def __init__(self, proc, debug_path, wall_s):
        self.proc = proc
        self.returncode = proc.returncode
        self.wall_s = wall_s
        self.events = []
        for line in proc.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    pass
        try:
            with open(debug_path, encoding="utf-8", errors="replace") as fh:
                self.debug = fh.read()
        except FileNotFoundError:
            self.debug = ""
        self.debug_path = debug_path

    @property
    def session_id(self):
        for e in self.events:
            if e.get("session_id"):
                return e["session_id"]
        return None

    @property
    def result(self):
        return next((e for e in self.events if e.get("type") == "result"), None)

    def hook_responses(self):
        return [e for e in self.events
                if e.get("type") == "system" and e.get("subtype") == "hook_response"]

    def hook_lines(self):
        """(event[:query], command, status, ms or None) of every command hook that ran."""
        return hook_lines(self.debug)

    def check(self):
        assert self.returncode == 0, (f"claude exited {self.returncode}\nstderr: "
                                      f"{self.proc.stderr[-3000:]}\nstdout: "
                                      f"{self.proc.stdout[-3000:]}")
        return self


def run_claude(home, stub, prompt, *args, cwd=None, env=None, timeout=RUN_TIMEOUT_S,
               debug_name=None):
    """Run `claude -p PROMPT` in home's project against stub; returns a ClaudeRun."""
    claude = agent_binary("claude")
    n = len([f for f in os.listdir(home.tmp) if f.startswith("debug-")])
    debug_path = os.path.join(home.tmp, debug_name or f"debug-{n}.log")
    run_env = claude_env(home.env, stub.url)
    run_env.update(env or {})
    argv = claude_argv(claude, prompt, debug_path, *args)
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd or home.project, env=run_env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return ClaudeRun(proc, debug_path, time.monotonic() - started)


def claude_home(tmp, installed):
    """A HOME with DevStream registered for Claude Code (the settings ./install.sh wrote), its
    own database, and a project with a failing test."""
    home = AgentHome(tmp, installed)
    home.copy_settings(installed.claude_settings, ".claude/settings.json")
    make_project(home.project)
    return home


@pytest.fixture
def home(tmp_path, installed):
    return claude_home(tmp_path, installed)


@pytest.fixture
def stub(home):
    with AnthropicStub(cwd=home.project) as s:
        yield s


def context_messages(body, event=None):
    """Texts of the hook-context messages Claude Code put into one request's messages[]."""
    out = []
    for m in body.get("messages") or ():
        content = m.get("content")
        parts = [content] if isinstance(content, str) else \
            [b.get("text") or "" for b in content or () if isinstance(b, dict)]
        for text in parts:
            if "hook additional context" in text and (event is None or f"{event} hook" in text):
                out.append(text)
    return out
