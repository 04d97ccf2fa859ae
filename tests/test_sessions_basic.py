"""The session record through real hook events shaped like Claude Code's."""
import json

from conftest import assert_silent_success, load_payload


def test_session_opens_and_closes(ds):
    start = load_payload("SessionStart__kesslerio-attio-mcp-server__startup.json")
    start["cwd"] = ds.project_dir
    first = ds.hook(start)
    assert first.returncode == 0 and first.stderr == b""
    # a new project: only the how-to block is injected
    context = json.loads(first.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "Nothing is recorded" in context and "devstream memory add --type decision" in context
    sid = start["session_id"]
    assert ds.sql("SELECT status, source FROM sessions WHERE id=?", (sid,)) == \
        [("active", "startup")]
    stop = load_payload("Stop__kesslerio-attio-mcp-server.json")
    stop.update(cwd=ds.project_dir, session_id=sid)
    assert_silent_success(ds.hook(stop))
    end = load_payload("SessionEnd__TomSelander-home-assistant-green-button__other.json")
    end.update(cwd=ds.project_dir, session_id=sid)
    assert_silent_success(ds.hook(end))
    assert ds.sql("SELECT status, end_reason, turns FROM sessions WHERE id=?", (sid,)) == \
        [("ended", "other", 1)]
