"""install / uninstall merge into the agent's settings and keep everything else intact."""
import glob
import json
import os

import pytest

from conftest import assert_silent_success

UNRELATED = {
    "model": "claude-sonnet-5",
    "permissions": {"allow": ["Bash(git status)"], "deny": ["Read(./.env)"]},
    "env": {"FOO": "bar"},
    "statusLine": {"type": "command", "command": "~/.claude/statusline.sh"},
    "hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/guard-rm.sh"}]},
            {"matcher": "Edit|Write", "hooks": [
                {"type": "command", "command": "npx prettier --write", "timeout": 30}]},
        ],
        "PostToolUse": [{"matcher": "*", "hooks": [
            {"type": "http", "url": "http://127.0.0.1:8080/hook"}]}],
        "Notification": [{"hooks": [{"type": "command", "command": "notify-send claude"}]}],
        "Stop": [{"hooks": [{"type": "prompt", "prompt": "Check the tests ran."}]}],
        "SessionStart": [{"matcher": "startup", "hooks": [
            {"type": "command", "command": "cat ~/notes.md"}]}],
    },
    "disableAllHooks": False,
}


def settings_file(ds):
    return os.path.join(ds.env["HOME"], ".claude", "settings.json")


def write_settings(ds, data):
    path = settings_file(ds)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(data, fh, indent=4)
    return path


def ours(settings):
    found = {}
    for event, groups in settings.get("hooks", {}).items():
        for g in groups:
            for h in g.get("hooks", []):
                if " hook --cli " in h.get("command", ""):
                    found.setdefault(event, []).append(h["command"])
    return found


def test_install_reinstall_uninstall_keep_unrelated_settings(ds):
    path = write_settings(ds, UNRELATED)
    original_bytes = open(path, "rb").read()

    ds.cli("install", check=True)
    after = json.load(open(path))
    # every unrelated key and hook is still there, unchanged
    for key in ("model", "permissions", "env", "statusLine", "disableAllHooks"):
        assert after[key] == UNRELATED[key]
    for event, groups in UNRELATED["hooks"].items():
        for group in groups:
            assert group in after["hooks"][event]
    registered = ours(after)
    assert set(registered) >= {"SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse",
                               "Stop", "SessionEnd", "PreCompact"}
    cmd = registered["SessionStart"][0]
    assert cmd.split()[0].startswith("/"), "the interpreter path is absolute"
    backups = glob.glob(path + ".devstream-backup-*")
    assert len(backups) == 1 and open(backups[0], "rb").read() == original_bytes

    # a second run changes nothing, not even the file's bytes
    first = open(path, "rb").read()
    mtime = os.stat(path).st_mtime_ns
    proc = ds.cli("install", check=True)
    assert "already up to date" in proc.stdout
    assert open(path, "rb").read() == first and os.stat(path).st_mtime_ns == mtime
    assert sum(len(v) for v in ours(json.load(open(path))).values()) == \
        sum(len(v) for v in registered.values())

    ds.cli("uninstall", check=True)
    assert json.load(open(path)) == UNRELATED


def test_installed_hook_command_runs(ds):
    write_settings(ds, {})
    ds.cli("install", check=True)
    import shlex
    import subprocess
    cmd = ours(json.load(open(settings_file(ds))))["SessionStart"][0]
    payload = json.dumps({"hook_event_name": "SessionStart", "session_id": "via-settings",
                          "source": "startup", "cwd": ds.project_dir})
    proc = subprocess.run(cmd, shell=True, input=payload.encode(), capture_output=True,
                          env=ds.env, timeout=60)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    assert ds.sql("SELECT id FROM sessions") == [("via-settings",)]


def test_dry_run_writes_nothing(ds):
    path = write_settings(ds, UNRELATED)
    before = open(path, "rb").read()
    proc = ds.cli("install", "--dry-run", check=True)
    assert "would write" in proc.stdout
    assert open(path, "rb").read() == before
    assert not glob.glob(path + ".devstream-backup*")


def test_malformed_settings_are_not_touched(ds):
    path = settings_file(ds)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write('{"hooks": {,}')
    proc = ds.cli("install")
    assert proc.returncode == 1
    assert "not valid JSON" in proc.stderr and "Traceback" not in proc.stderr
    assert open(path).read() == '{"hooks": {,}'


def test_project_scope(ds):
    proj = ds.project_dir
    ds.cli("install", "--scope", "project", "--project-dir", proj, check=True)
    local = os.path.join(proj, ".claude", "settings.local.json")
    assert ours(json.load(open(local)))
    assert not os.path.exists(settings_file(ds))
    ds.cli("uninstall", "--scope", "project", "--project-dir", proj, check=True)
    assert json.load(open(local)) == {}


@pytest.mark.parametrize("cli", ["gemini", "codex", "qwen"])
def test_other_clis_have_templates(ds, cli):
    ds.cli("install", "--cli", cli, check=True)
    home = ds.env["HOME"]
    path = {"gemini": ".gemini/settings.json", "codex": ".codex/hooks.json",
            "qwen": ".qwen/settings.json"}[cli]
    data = json.load(open(os.path.join(home, path)))
    assert any(f"--cli {cli}" in c for cmds in ours(data).values() for c in cmds)


def test_doctor_on_a_fresh_install(ds):
    write_settings(ds, {})
    ds.cli("install", check=True)
    proc = ds.cli("doctor", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, report
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert status["database"] == "PASS" and status["round trip"] == "PASS"
    assert status["ollama"] == "WARN"       # no Ollama here: a warning, not a failure
    assert all(c["fix"] for c in report["checks"] if c["status"] != "PASS")
