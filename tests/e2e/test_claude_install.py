"""Installing for one project, the two ways the README gives, then running Claude Code there."""
import json
import os
import subprocess

from anthropic_stub import AnthropicStub
from .claude_helpers import make_project, run_claude
from .conftest import ROOT, AgentHome, run_install_sh


def test_user_install_says_what_it_did(installed):
    settings = installed.claude_settings
    assert f"{settings} (created)" in installed.output
    assert "previous file kept" not in installed.output, "there was no previous file"
    assert not os.path.exists(settings + ".devstream-backup")


def assert_project_hooks_run(home, project):
    """Claude Code in `project` (no user-level settings) runs DevStream's project hooks."""
    assert not os.path.exists(os.path.join(home.home, ".claude", "settings.json"))
    local = os.path.join(project, ".claude", "settings.local.json")
    command = json.load(open(local))["hooks"]["SessionStart"][0]["hooks"][0]["command"]
    with AnthropicStub(cwd=project) as stub:
        run = run_claude(home, stub, "[[scenario:fix]] Fix the failing ledger test",
                         cwd=project).check()
    assert "Invalid setting" not in run.debug
    ran = [(e, s) for e, c, s, _ in run.hook_lines() if c == command]
    assert ("SessionStart:startup", 0) in ran and ("PostToolUseFailure:Bash", 0) in ran
    errors = home.sql("SELECT content FROM memories WHERE type='error'")
    assert any("ZEBRA-7731" in c for (c,) in errors)


def test_install_sh_scope_project_writes_into_the_project_it_is_run_from(tmp_path, installed):
    home = AgentHome(tmp_path, installed)
    project = make_project(home.project)
    before = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--ignored", ".claude"],
                            capture_output=True, text=True).stdout
    proc = run_install_sh(home.home, "--scope", "project", cwd=project, env=home.env)
    local = os.path.join(project, ".claude", "settings.local.json")
    assert os.path.exists(local), proc.stdout
    assert f"{local} (created)" in proc.stdout
    after = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--ignored", ".claude"],
                           capture_output=True, text=True).stdout
    assert after == before, "nothing written into DevStream's own checkout"
    assert_project_hooks_run(home, project)


def test_devstream_install_scope_project_from_a_project(tmp_path, installed):
    home = AgentHome(tmp_path, installed)
    project = make_project(home.project)
    out = home.devstream("install", "--scope", "project", cwd=project).stdout
    local = os.path.join(project, ".claude", "settings.local.json")
    assert f"{local} (created)" in out
    again = home.devstream("install", "--scope", "project", cwd=project).stdout
    assert "already up to date" in again
    assert_project_hooks_run(home, project)
