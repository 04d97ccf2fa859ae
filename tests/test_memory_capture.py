"""Capture through the real hook: what is stored, what is not, stored once."""
import json

from conftest import assert_silent_success, load_payload


def memories(ds, where="1=1"):
    import os
    if not os.path.exists(ds.db):
        return []
    return ds.sql(f"SELECT type, content, path, session_id FROM memories WHERE {where} "
                  "ORDER BY rowid")


def fixture(ds, name, **over):
    p = load_payload(name)
    p["cwd"] = ds.project_dir
    p.update(over)
    return p


def test_prompt_is_stored(ds):
    p = fixture(ds, "UserPromptSubmit__kesslerio-attio-mcp-server.json")
    assert_silent_success(ds.hook(p))
    rows = memories(ds)
    assert rows == [("prompt", p["prompt"].strip(), None, p["session_id"])]


def test_edit_write_and_commands(ds):
    edit = fixture(ds, "PostToolUse__kesslerio-attio-mcp-server__Edit.json")
    edit["tool_input"]["file_path"] = ds.project_dir + "/src/handlers/shared.ts"
    assert_silent_success(ds.hook(edit))
    write = fixture(ds, "PostToolUse__CoorpAcademy-serverless-plugins__Write.json")
    write["tool_input"]["file_path"] = ds.project_dir + "/docs/pr-body.md"
    assert_silent_success(ds.hook(write))
    bash = fixture(ds, "PostToolUse__kesslerio-attio-mcp-server__Bash.json")
    assert_silent_success(ds.hook(bash))
    rows = memories(ds)
    types = [r[0] for r in rows]
    assert types.count("edit") == 2
    e = next(r for r in rows if r[2] == "src/handlers/shared.ts")
    assert e[1].startswith("Edited src/handlers/shared.ts: replaced")
    w = next(r for r in rows if r[2] == "docs/pr-body.md")
    assert "docs/pr-body.md" in w[1] and "lines" in w[1]


def test_read_only_tools_and_inspection_commands_are_not_stored(ds):
    for name in ("PostToolUse__CoorpAcademy-serverless-plugins__Read.json",
                 "PostToolUse__CoorpAcademy-serverless-plugins__Read-in-subagent.json",
                 "PostToolUse__kesslerio-attio-mcp-server__TodoWrite.json"):
        assert_silent_success(ds.hook(fixture(ds, name)))
    for cmd in ("ls -la", "git status", "cat README.md | head -20", "grep -rn foo src"):
        ds.hook({"hook_event_name": "PostToolUse", "tool_name": "Bash",
                 "tool_input": {"command": cmd},
                 "tool_response": {"stdout": "x", "stderr": "", "interrupted": False}})
    assert memories(ds) == []


def test_failed_command_and_test_failures_are_errors(ds):
    p = fixture(ds, "PostToolUseFailure__ZhangJing-gugugaga-RPD-Skill__Bash-in-subagent.json")
    assert_silent_success(ds.hook(p))
    ds.hook({"hook_event_name": "PostToolUseFailure", "tool_name": "Bash",
             "tool_input": {"command": "pytest tests/test_invoice.py -x"},
             "error": "Exit code 1\n============ FAILURES ============\n"
                      "FAILED tests/test_invoice.py::test_rounding - AssertionError: 10.01 != 10.0\n"
                      "1 failed, 12 passed in 0.31s"})
    rows = memories(ds)
    assert [r[0] for r in rows] == ["error", "error"]
    assert "tests failed" in rows[1][1] and "test_rounding" in rows[1][1]


def test_subagent_message_kept(ds):
    p = fixture(ds, "SubagentStop__TomSelander-home-assistant-green-button.json")
    assert_silent_success(ds.hook(p))
    rows = memories(ds)
    assert len(rows) == 1 and rows[0][0] == "subagent"
    assert p["last_assistant_message"].strip()[:60] in rows[0][1]


def test_identical_content_is_stored_once_per_project(ds, tmp_path):
    prompt = {"hook_event_name": "UserPromptSubmit", "prompt": "rename parse_config to load"}
    ds.hook(dict(prompt, session_id="a"))
    ds.hook(dict(prompt, session_id="b"))
    assert len(memories(ds)) == 1
    other = tmp_path / "other-project"
    other.mkdir()
    ds.hook(dict(prompt, session_id="c", cwd=str(other)))
    assert len(memories(ds)) == 2            # another project keeps its own copy


def test_secret_files_are_never_captured(ds):
    for path in (".env", "config/.env.production", "certs/server.pem", "home/.ssh/id_rsa"):
        ds.hook({"hook_event_name": "PostToolUse", "tool_name": "Write",
                 "tool_input": {"file_path": f"{ds.project_dir}/{path}", "content": "A=1\n"},
                 "tool_response": {"type": "create"}})
    ds.hook({"hook_event_name": "PostToolUse", "tool_name": "Edit",
             "tool_input": {"file_path": f"{ds.project_dir}/.env.example", "old_string": "A=",
                            "new_string": "A=<your key>"}, "tool_response": {}})
    assert [r[2] for r in memories(ds)] == [".env.example"]


def test_memory_cli_round_trip(ds):
    mid = ds.cli("memory", "add", "--type", "decision", "--tag", "billing",
                 "Amounts are integer cents", check=True).stdout.strip()
    assert mid.startswith("m-") and len(mid) == 8
    shown = ds.cli_json("memory", "show", mid[:5])
    assert shown["id"] == mid and shown["type"] == "decision" and shown["tags"] == ["billing"]
    assert set(shown) >= {"id", "project", "type", "content", "tags", "created_at", "session_id",
                          "task_id", "embedded"}
    listed = ds.cli_json("memory", "list")
    assert [m["id"] for m in listed] == [mid]
    ds.cli("memory", "forget", mid, check=True)
    assert ds.cli_json("memory", "list") == []
    bad = ds.cli("memory", "show", "m-zzzz")
    assert bad.returncode == 1 and "no memory" in bad.stderr
    usage = ds.cli("memory", "add", "x", "--type", "nonsense")
    assert usage.returncode == 2 and "--type must be one of" in usage.stderr
