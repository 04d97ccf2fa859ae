"""Gemini CLI, Codex CLI and Qwen Code as their real binaries speak: the payloads they sent
(tests/fixtures/live/) run through the real hook command with each CLI's adapter, and the
registration, trust and folder checks of install and doctor in each CLI's own home."""
import json
import os

import pytest

from conftest import FIXTURES

LIVE = os.path.join(FIXTURES, "live")
GEMINI, CODEX, QWEN = "gemini-cli-0.61.0", "codex-0.171.0", "qwen-code-0.24.4"


def live(ds, folder, name, **changes):
    """A live payload moved into this test's project (its paths rewritten to the project)."""
    with open(os.path.join(LIVE, folder, name)) as fh:
        text = fh.read()
    payload = json.loads(text)
    old_cwd = payload["cwd"]
    payload = json.loads(text.replace(old_cwd, ds.project_dir))
    payload.update(changes)
    return payload


def memories(ds, mtype=None):
    q = "SELECT type, content, path FROM memories"
    rows = ds.sql(q + (" WHERE type=?" if mtype else "") + " ORDER BY rowid",
                  (mtype,) if mtype else ())
    return rows


def context_of(proc):
    assert proc.returncode == 0, proc.stderr
    if not proc.stdout.strip():
        return None
    out = json.loads(proc.stdout)["hookSpecificOutput"]
    return out["hookEventName"], out["additionalContext"]


def earlier_error_about(ds, cli, rel="calibrate.py"):
    """An error about `rel` stored in an earlier session, for file context to find."""
    ds.hook({"hook_event_name": "PostToolUseFailure", "session_id": "earlier",
             "tool_name": "Edit", "tool_input": {"file_path": os.path.join(ds.project_dir, rel)},
             "error": "ZQX7731 the flux limit in calibrate.py must stay under 1.21"})


# ---------------------------------------------------------------- Gemini CLI

def test_gemini_failing_shell_command_is_an_error_with_its_output(ds):
    proc = ds.hook(live(ds, GEMINI, "AfterTool.run_shell_command.json"), cli="gemini")
    assert proc.returncode == 0 and proc.stdout == b""
    (mtype, content, _), = memories(ds)
    assert mtype == "error"
    assert "exit 3" in content and "ZQX7731 flux capacitor overheated at 88 mph" in content
    assert "exit 0" not in content and "PGID" not in content
    assert ds.sql("SELECT errors FROM sessions") == [(1,)]


def test_gemini_succeeding_shell_command_is_a_command(ds):
    p = live(ds, GEMINI, "AfterTool.run_shell_command.json")
    p["tool_input"]["command"] = "make migrate"
    p["tool_response"]["llmContent"] = "Output: migrated 3 tables\nProcess Group PGID: 7"
    ds.hook(p, cli="gemini")
    assert memories(ds) == [("command", "$ make migrate\n(exit 0)", None)]


def test_gemini_killed_command_is_an_error(ds):
    p = live(ds, GEMINI, "AfterTool.run_shell_command.json", tool_input={"command": "make serve"})
    p["tool_response"]["llmContent"] = "Output: listening on :8080\nSignal: 15\nProcess Group PGID: 7"
    ds.hook(p, cli="gemini")
    (mtype, content, _), = memories(ds)
    assert mtype == "error" and "interrupted" in content and "signal 15" in content
    assert "exit 0" not in content


def test_gemini_prompt_without_devstreams_own_injected_context(ds):
    ds.cli("memory", "add", "--type", "decision", "flux limits are stored in gigawatts",
           check=True)
    start = ds.hook(live(ds, GEMINI, "SessionStart.json"), cli="gemini")
    event, injected = context_of(start)
    assert event == "SessionStart" and "gigawatts" in injected
    p = live(ds, GEMINI, "BeforeAgent.json")
    words = p["prompt"]
    # in -p mode Gemini CLI prepends SessionStart's context to the prompt it hands BeforeAgent
    p["prompt"] = f"<hook_context>{injected}</hook_context>\n\n{words}"
    ds.hook(p, cli="gemini")
    assert memories(ds, "prompt") == [("prompt", words, None)]
    found = ds.cli_json("memory", "search", "DevStream project gigawatts")
    assert all(m["type"] != "prompt" for m in found), found


def test_gemini_precompress_before_every_request_is_not_a_compaction(ds):
    ds.hook(live(ds, GEMINI, "SessionStart.json"), cli="gemini")
    for _ in range(3):
        proc = ds.hook(live(ds, GEMINI, "PreCompress.json"), cli="gemini")
        assert proc.returncode == 0 and proc.stdout == b""
    assert ds.sql("SELECT count(*) FROM session_snapshots") == [(0,)]
    assert ds.sql("SELECT compactions FROM sessions") == [(0,)]


def test_gemini_file_context_arrives_after_read_file(ds):
    earlier_error_about(ds, "gemini")
    p = live(ds, GEMINI, "AfterTool.write_file.json", tool_name="read_file",
             tool_input={"file_path": os.path.join(ds.project_dir, "calibrate.py")},
             tool_response={"llmContent": "FLUX_LIMIT = 1.21\n", "returnDisplay": ""})
    event, text = context_of(ds.hook(p, cli="gemini"))
    assert event == "AfterTool" and "must stay under 1.21" in text
    # BeforeTool context is dropped by Gemini CLI: DevStream does not answer it
    before = live(ds, GEMINI, "BeforeTool.replace.json", session_id="other")
    assert context_of(ds.hook(before, cli="gemini")) is None


def test_gemini_new_file_and_replace_all(ds):
    ds.hook(live(ds, GEMINI, "AfterTool.write_file.json"), cli="gemini")
    p = live(ds, GEMINI, "AfterTool.replace.json")
    p["tool_input"]["allow_multiple"] = True
    ds.hook(p, cli="gemini")
    (_, created, path1), (_, edited, path2) = memories(ds, "edit")
    assert created.startswith("Created calibrate.py (2 lines)") and path1 == "calibrate.py"
    assert "(all occurrences)" in edited and "FLUX_LIMIT = 1.10" in edited
    assert path2 == "calibrate.py"


def test_gemini_registration(ds):
    ds.cli("install", "--cli", "gemini", check=True)
    data = json.load(open(os.path.join(ds.env["HOME"], ".gemini", "settings.json")))
    assert set(data["hooks"]) == {"SessionStart", "BeforeAgent", "AfterTool", "AfterAgent",
                                  "SessionEnd"}
    assert "read_file" in data["hooks"]["AfterTool"][0]["matcher"]
    handlers = [h for groups in data["hooks"].values() for g in groups for h in g["hooks"]]
    assert all(h["timeout"] >= 1000 for h in handlers)          # milliseconds


def test_gemini_untrusted_folder_is_a_warning_with_the_fix(ds):
    proc = ds.cli("install", "--cli", "gemini", check=True)
    assert "trusted folders" in proc.stdout
    report = ds.cli_json("doctor")
    check, = [c for c in report["checks"] if c["name"] == "gemini folder"]
    assert check["status"] == "WARN" and "TRUST_FOLDER" in check["fix"]
    trusted = os.path.join(ds.env["HOME"], ".gemini", "trustedFolders.json")
    with open(trusted, "w") as fh:
        json.dump({os.path.dirname(ds.project_dir): "TRUST_FOLDER"}, fh)
    report = ds.cli_json("doctor")
    check, = [c for c in report["checks"] if c["name"] == "gemini folder"]
    assert check["status"] == "PASS", check


# ---------------------------------------------------------------- Codex CLI

def test_codex_shell_output_is_kept_without_claiming_exit_0(ds):
    ds.hook(live(ds, CODEX, "PostToolUse.Bash.json"), cli="codex")
    p = live(ds, CODEX, "PostToolUse.Bash.json", tool_input={"command": "make build"},
             tool_response="gcc -o app main.c\nmain.c:3: error: expected ';'\n")
    ds.hook(p, cli="codex")
    (t1, first, _), (t2, second, _) = memories(ds)
    assert "exit 0" not in first + second
    assert t1 == "command" and "exit status not reported" in first and "ZQX7731" in first
    assert t2 == "error" and "expected ';'" in second


def test_codex_exit_code_comes_from_its_transcript(ds, tmp_path):
    """Codex writes the command's exit code to its rollout transcript before PostToolUse runs
    (seen in the end-to-end test); the hook reads it from there."""
    rollout = tmp_path / "rollout.jsonl"
    p = live(ds, CODEX, "PostToolUse.Bash.json", transcript_path=str(rollout))
    item = {"type": "CommandExecution", "id": p["tool_use_id"], "status": "failed",
            "aggregated_output": p["tool_response"], "exit_code": 3}
    other = dict(item, id="call_1", exit_code=0)
    rollout.write_text("\n".join(json.dumps({"type": "event_msg", "payload": {
        "type": "item_completed", "item": i}}) for i in (other, item)) + "\n")
    ds.hook(p, cli="codex")
    (mtype, content, _), = memories(ds)
    assert mtype == "error" and "exit 3" in content and "ZQX7731" in content


def test_codex_apply_patch_edits_and_their_file_context(ds):
    earlier_error_about(ds, "codex")
    pre = ds.hook(live(ds, CODEX, "PreToolUse.apply_patch.json"), cli="codex")
    event, text = context_of(pre)
    assert event == "PreToolUse" and "must stay under 1.21" in text
    ds.hook(live(ds, CODEX, "PostToolUse.apply_patch.json"), cli="codex")
    patch = ("*** Begin Patch\n*** Update File: calibrate.py\n@@\n-FLUX_LIMIT = 1.21\n"
             "+FLUX_LIMIT = 1.10\n*** Delete File: old_notes.txt\n*** End Patch\n")
    ds.hook(live(ds, CODEX, "PostToolUse.apply_patch.json", tool_input={"command": patch}),
            cli="codex")
    edits = [(c.split("\n")[0], p) for _, c, p in memories(ds, "edit")]
    assert edits == [("Created calibrate.py: +2 -0 lines", "calibrate.py"),
                     ("Edited calibrate.py: +1 -1 lines", "calibrate.py"),
                     ("Deleted old_notes.txt: +0 -0 lines", "old_notes.txt")]


def test_codex_session_end_is_registered_and_summarises(ds):
    ds.cli("install", "--cli", "codex", check=True)
    data = json.load(open(os.path.join(ds.env["HOME"], ".codex", "hooks.json")))
    assert "SessionEnd" in data["hooks"]
    assert data["hooks"]["SessionEnd"][0]["hooks"][0]["timeout"] <= 3
    for name in ("SessionStart.json", "UserPromptSubmit.json", "PostToolUse.Bash.json",
                 "Stop.json", "SessionEnd.json"):
        ds.hook(live(ds, CODEX, name), cli="codex")
    (status, summary), = ds.sql("SELECT s.status, m.content FROM sessions s JOIN memories m "
                                "ON m.id = s.summary_id")
    assert status == "ended" and "Calibrate the flux capacitor" in summary


def test_codex_untrusted_hooks_warn_until_trusted(ds):
    proc = ds.cli("install", "--cli", "codex", check=True)
    assert "/hooks" in proc.stdout and "--trust" in proc.stdout
    report = ds.cli_json("doctor")
    check, = [c for c in report["checks"] if c["name"] == "codex trust/user"]
    assert check["status"] == "WARN" and "6 not trusted" in check["detail"]
    assert "/hooks" in check["fix"]
    config = os.path.join(ds.env["HOME"], ".codex", "config.toml")
    with open(config, "w") as fh:
        fh.write('model = "gpt-5.5"\n\n[projects."/src"]\ntrust_level = "trusted"\n')
    ds.cli("install", "--cli", "codex", "--trust", check=True)
    report = ds.cli_json("doctor")
    check, = [c for c in report["checks"] if c["name"] == "codex trust/user"]
    assert check["status"] == "PASS", check
    text = open(config).read()
    assert text.startswith('model = "gpt-5.5"\n\n[projects."/src"]\ntrust_level = "trusted"\n')
    # a reinstall from another interpreter changes the command: the trust no longer holds
    settings = os.path.join(ds.env["HOME"], ".codex", "hooks.json")
    data = json.load(open(settings))
    data["hooks"]["Stop"][0]["hooks"][0]["command"] += " "
    json.dump(data, open(settings, "w"))
    check, = [c for c in ds.cli_json("doctor")["checks"] if c["name"] == "codex trust/user"]
    assert check["status"] == "WARN" and "1 changed since they were trusted" in check["detail"]
    ds.cli("uninstall", "--cli", "codex", check=True)
    assert "hooks.state" not in open(config).read()
    assert 'model = "gpt-5.5"' in open(config).read()


def test_codex_project_hooks_need_a_trusted_project(ds):
    ds.cli("install", "--cli", "codex", "--scope", "project", "--project-dir", ds.project_dir,
           check=True)
    checks = {c["name"]: c for c in ds.cli_json("doctor")["checks"]}
    assert checks["codex project"]["status"] == "WARN"
    assert f'[projects."{ds.project_dir}"]' in checks["codex project"]["fix"]
    assert checks["codex trust/project"]["status"] == "WARN"
    config = os.path.join(ds.env["HOME"], ".codex", "config.toml")
    os.makedirs(os.path.dirname(config), exist_ok=True)
    with open(config, "w") as fh:
        fh.write(f'[projects."{ds.project_dir}"]\ntrust_level = "trusted"\n')
    ds.cli("install", "--cli", "codex", "--scope", "project", "--project-dir", ds.project_dir,
           "--trust", check=True)
    checks = {c["name"]: c for c in ds.cli_json("doctor")["checks"]}
    assert "codex project" not in checks
    assert checks["codex trust/project"]["status"] == "PASS", checks["codex trust/project"]


# ---------------------------------------------------------------- Qwen Code

def test_qwen_timeouts_are_seconds(ds):
    ds.cli("install", "--cli", "qwen", check=True)
    data = json.load(open(os.path.join(ds.env["HOME"], ".qwen", "settings.json")))
    handlers = [h for groups in data["hooks"].values() for g in groups for h in g["hooks"]]
    assert handlers and all(h["timeout"] < 1000 for h in handlers)
    assert "PreToolUse" not in data["hooks"]          # its context is never delivered
    assert "read_file" in data["hooks"]["PostToolUse"][0]["matcher"]


def test_qwen_failure_is_an_error_with_exit_code_and_output(ds):
    ds.hook(live(ds, QWEN, "PostToolUseFailure.run_shell_command.json"), cli="qwen")
    (mtype, content, _), = memories(ds)
    assert mtype == "error"
    assert "Exit code 3" in content and "ZQX7731 flux capacitor overheated" in content
    assert "Directory:" not in content and "PGID" not in content


def test_qwen_file_context_after_read_file(ds):
    earlier_error_about(ds, "qwen")
    event, text = context_of(ds.hook(live(ds, QWEN, "PostToolUse.read_file.json"), cli="qwen"))
    assert event == "PostToolUse" and "must stay under 1.21" in text


def test_qwen_edits(ds):
    ds.hook(live(ds, QWEN, "PostToolUse.write_file.json"), cli="qwen")
    ds.hook(live(ds, QWEN, "PostToolUse.edit.json"), cli="qwen")
    (_, created, p1), (_, edited, p2) = memories(ds, "edit")
    assert created.startswith("Created calibrate.py") and p1 == p2 == "calibrate.py"
    assert "FLUX_LIMIT = 1.10" in edited


def test_qwen_session_is_summarised_at_stop_and_closed_by_the_next(ds):
    for name in ("SessionStart.json", "UserPromptSubmit.json",
                 "PostToolUseFailure.run_shell_command.json", "Stop.json"):
        ds.hook(live(ds, QWEN, name), cli="qwen")
    # a continuation turn: an empty prompt is not the user's
    ds.hook(live(ds, QWEN, "UserPromptSubmit.json", prompt=""), cli="qwen")
    assert len(memories(ds, "prompt")) == 1
    (summary,), = ds.sql("SELECT m.content FROM sessions s JOIN memories m ON m.id=s.summary_id")
    assert "Calibrate the flux capacitor" in summary and "Failed:" in summary
    first = live(ds, QWEN, "SessionStart.json")["session_id"]
    event, text = context_of(ds.hook(live(ds, QWEN, "SessionStart.json", session_id="next"),
                                     cli="qwen"))
    assert "Calibrate the flux capacitor" in text           # no 30-minute wait
    assert ds.sql("SELECT status FROM sessions WHERE id=?", (first,)) == [("ended",)]


# ---------------------------------------------------------------- all: homes and detection

@pytest.mark.parametrize("cli,var,rel", [
    ("gemini", "GEMINI_CLI_HOME", os.path.join(".gemini", "settings.json")),
    ("codex", "CODEX_HOME", "hooks.json"),
    ("qwen", "QWEN_HOME", "settings.json"),
])
def test_install_uninstall_doctor_honour_the_cli_home(ds, cli, var, rel):
    home = os.path.join(ds.tmp, f"{cli}-home")
    env = {var: home}
    ds.cli("install", "--cli", cli, env=env, check=True)
    path = os.path.join(home, rel)
    assert any(f"--cli {cli}" in h["command"] for groups in json.load(open(path))["hooks"].values()
               for g in groups for h in g["hooks"])
    assert not os.path.exists(os.path.join(ds.env["HOME"], f".{cli}"))
    report = ds.cli_json("doctor", env=env)
    assert any(c["name"] == f"hooks {cli}/user" and c["detail"] == path
               for c in report["checks"]), report
    ds.cli("uninstall", "--cli", cli, env=env, check=True)
    assert json.load(open(path)) == {}


def fake_binaries(ds, *names):
    """A folder of do-nothing commands with these names (what `install` looks for on PATH)."""
    bindir = os.path.join(ds.tmp, "bin")
    os.makedirs(bindir)
    for name in names:
        exe = os.path.join(bindir, name)
        with open(exe, "w") as fh:
            fh.write("#!/bin/sh\n")
        os.chmod(exe, 0o755)
    return bindir


def test_install_without_cli_offers_the_clis_it_finds(ds):
    bindir = fake_binaries(ds, "gemini", "qwen")
    proc = ds.cli("install", env={"PATH": os.pathsep.join((bindir, "/usr/bin", "/bin"))},
                  check=True)
    assert "also found Gemini CLI: `devstream install --cli gemini`" in proc.stdout
    assert "also found Qwen Code: `devstream install --cli qwen`" in proc.stdout
    assert "Codex" not in proc.stdout
    assert os.path.exists(os.path.join(ds.env["HOME"], ".claude", "settings.json"))
    assert not os.path.exists(os.path.join(ds.env["HOME"], ".gemini", "settings.json"))
    ds.cli("install", "--cli", "gemini,qwen", check=True)
    assert os.path.exists(os.path.join(ds.env["HOME"], ".gemini", "settings.json"))
    assert os.path.exists(os.path.join(ds.env["HOME"], ".qwen", "settings.json"))


def test_install_on_a_terminal_asks_about_each_cli_it_finds(ds):
    """On a terminal, install offers every other CLI it finds and registers the accepted ones."""
    import pty
    bindir = fake_binaries(ds, "gemini", "codex")
    env = dict(ds.env, PATH=os.pathsep.join((bindir, "/usr/bin", "/bin")))
    argv = list(ds.hook_argv[:-3]) + ["install"]
    pid, fd = pty.fork()
    if pid == 0:                                     # the child: devstream on a terminal
        os.chdir(ds.project_dir)
        os.execve(argv[0], argv, env)
    import select
    import signal
    seen, answers = b"", [b"y\n", b"n\n"]
    while True:
        if not select.select([fd], [], [], 60)[0]:       # a hang, not a slow machine
            os.kill(pid, signal.SIGKILL)
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        if seen.count(b"[y/N]") > 2 - len(answers):
            os.write(fd, answers.pop(0))
    os.waitpid(pid, 0)
    text = seen.decode()
    assert "Gemini CLI is installed here. Register DevStream with it too?" in text
    assert "Codex CLI is installed here" in text and "Qwen" not in text
    home = ds.env["HOME"]
    assert os.path.exists(os.path.join(home, ".claude", "settings.json"))
    assert os.path.exists(os.path.join(home, ".gemini", "settings.json"))
    assert not os.path.exists(os.path.join(home, ".codex", "hooks.json"))
