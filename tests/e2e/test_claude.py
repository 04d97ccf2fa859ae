"""Claude Code 2.1.328, the real binary, with DevStream installed by ./install.sh.

Each test runs `claude -p` against the scripted Anthropic stand-in (tests/anthropic_stub.py) and
checks what a user would notice: what was stored, and what the model was sent.
"""
import json
import os

from .claude_helpers import context_messages, home, run_claude, stub  # noqa: F401 (fixtures)


def test_settings_accepted_and_a_broken_entry_is_reported(home, stub, tmp_path):
    run = run_claude(home, stub, "[[scenario:hello]] Say hello").check()
    assert "Invalid setting" not in run.debug
    assert "Hooks: SessionStart:startup [" + home.installed.hook_command + "]" in run.debug
    # control: the same check sees a deliberately broken hook entry
    settings_path = os.path.join(home.home, ".claude", "settings.json")
    settings = json.load(open(settings_path))
    settings["hooks"]["PreToolUse"].append({"matcher": "Edit", "hooks": [{"type": "commandx"}]})
    with open(settings_path, "w") as fh:
        json.dump(settings, fh)
    broken = run_claude(home, stub, "[[scenario:hello]] Say hello").check()
    assert "Invalid setting" in broken.debug
