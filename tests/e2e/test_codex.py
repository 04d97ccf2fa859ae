"""Codex CLI 0.171.0, the real binary, `codex exec` against the scripted Responses API stand-in
(SSE on /v1/responses), with DevStream registered by `devstream install --cli codex`."""
import os

import pytest

from .cli_helpers import FIX, CliHome, check_two_sessions, play_two_sessions
from .conftest import agent_binary
from .stand_ins import ResponsesStandIn


def codex_config(home, url, model):
    path = os.path.join(home.home, ".codex", "config.toml")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(f'model = "{model}"\nmodel_provider = "standin"\napproval_policy = "never"\n'
                 f'sandbox_mode = "danger-full-access"\n\n[model_providers.standin]\n'
                 f'name = "stand-in"\nbase_url = "{url}/v1"\nwire_api = "responses"\n'
                 f'env_key = "STANDIN_API_KEY"\n')


def run_codex(home, stand_in, prompt):
    return home.run([agent_binary("codex"), "exec", "--skip-git-repo-check", prompt],
                    env={"STANDIN_API_KEY": "stand-in-key"})


@pytest.fixture
def stand_in(tmp_path):
    with ResponsesStandIn(cwd=os.path.join(str(tmp_path), "project")) as s:
        yield s


def test_codex_untrusted_hooks_are_inert_and_doctor_says_so(tmp_path, installed, stand_in):
    home = CliHome(tmp_path, installed, "codex")
    codex_config(home, stand_in.url, stand_in.model)
    # installed without --trust: install says what to do, and Codex skips the hooks silently
    assert "/hooks" in home.register()
    run = run_codex(home, stand_in, FIX)
    assert "hook:" not in run.stderr and "ZQX7731" in run.stdout
    assert home.handled_events() == set()
    check, = [c for c in home.devstream_json("doctor", check=False)["checks"]
              if c["name"] == "codex trust/user"]
    assert check["status"] == "WARN" and "6 not trusted" in check["detail"], check
    assert "--trust" in check["fix"] and "/hooks" in check["fix"]


def test_codex_sessions_are_remembered(tmp_path, installed, stand_in):
    home = CliHome(tmp_path, installed, "codex")
    codex_config(home, stand_in.url, stand_in.model)
    assert "trusted 6 DevStream hooks" in home.register("--trust")
    settings = os.path.join(home.home, ".codex", "hooks.json")
    first, second, second_requests = play_two_sessions(home, stand_in, run_codex)
    for run in (first, second):
        assert "hook: SessionStart Completed" in run.stderr       # the trust we wrote holds
    assert home.handled_events() == home.registered_events(settings)
    assert home.problems_logged() == []
    check_two_sessions(home, second_requests)
    (_, status2, _), = home.sessions()[1:]
    assert status2 == "ended"                         # SessionEnd closed it, within its 3 s
    # where the context landed: developer messages; the file's right after the patch call,
    # before its output (the patch itself was decided without it)
    inputs = second_requests[-1]["input"]
    kinds = [(i.get("type"), i.get("role"), "DevStream memory about" in str(i.get("content")))
             for i in inputs]
    patch_at = next(k for k, i in enumerate(inputs) if i.get("name") == "apply_patch")
    assert kinds[patch_at + 1] == ("message", "developer", True)
    check, = [c for c in home.devstream_json("doctor", check=False)["checks"]
              if c["name"] == "codex trust/user"]
    assert check["status"] == "PASS", check
