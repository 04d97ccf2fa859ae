"""Claude Code 2.1.328 over several sessions of one project, as a user runs it day to day.

One module-scoped story (nine `claude -p` runs, about a minute) is played once; each test checks
one thing a user would notice in what was stored or in what the model was sent.
"""
import json
import re

import pytest

from anthropic_stub import AnthropicStub
from .claude_helpers import claude_home, context_messages, run_claude

MEMORY_ID = re.compile(r"\[(m-[0-9a-f]{6})\]")


class Story:
    def __init__(self, home):
        self.home = home
        self.runs = {}
        self.requests = {}
        self.ids_after = {}         # memory ids in the database right after each run

    def sid(self, name):
        return self.runs[name].session_id

    def memories(self, session, mtype=None):
        q = "SELECT id, type, content, path FROM memories WHERE session_id=?"
        args = [self.sid(session)]
        if mtype:
            q += " AND type=?"
            args.append(mtype)
        return self.home.sql(q + " ORDER BY rowid", args)


@pytest.fixture(scope="module")
def story(tmp_path_factory, installed):
    home = claude_home(tmp_path_factory.mktemp("story"), installed)
    st = Story(home)
    with AnthropicStub(cwd=home.project) as stub:
        def run(name, *args):
            n0 = len(stub.requests)
            st.runs[name] = run_claude(home, stub, *args).check()
            st.requests[name] = stub.requests[n0:]
            st.ids_after[name] = {r[0] for r in home.sql("SELECT id FROM memories")}

        run("s1", "[[scenario:fix]] Fix the failing ledger test")
        run("s2", "[[scenario:ask]] Why did the ZEBRA-7731 ledger test fail?")
        run("read", "[[scenario:read]] Reword the rounding comment in ledger.py")
        run("resume", "--resume", st.sid("s1"), "[[scenario:hello]] THREAD-42 are we done?")
        run("compact", "--resume", st.sid("s1"), "/compact")
        run("after_compact", "--resume", st.sid("s1"), "[[scenario:hello]] THREAD-43 still there?")
        run("delegate", "[[scenario:delegate]] Look around with a subagent")
        run("remember", "[[scenario:remember]] Record the rounding decision")
        stub.usage = {"input_tokens": 190000}
        run("auto", "[[scenario:fix]] THREAD-77 fix the ledger again", "--autocompact", "100000")
        stub.usage = {}
    return st


def all_context(requests):
    return [t for r in requests for t in context_messages(r["body"] or {})]


def test_every_registered_event_runs_devstream_cleanly(story):
    settings = json.load(open(story.home.installed.claude_settings))
    registered = set(settings["hooks"])
    command = story.home.installed.hook_command
    seen = set()
    for name, run in story.runs.items():
        for event, cmd, status, _ in run.hook_lines():
            if cmd == command:
                assert status == 0, (name, event)
                seen.add(event.split(":")[0])
        for resp in run.hook_responses():
            assert resp["exit_code"] == 0, (name, resp)
            assert resp["stderr"] == "", (name, resp)
            out = resp["stdout"].strip()
            if out:
                assert "\n" not in out, (name, resp)
                assert isinstance(json.loads(out), dict), (name, resp)
    assert registered <= seen, f"registered but never run: {registered - seen}"
    assert not [r for r in story.home.log_records() if r.get("level") in ("error", "warning")]


def test_failing_command_edits_prompt_and_summary_are_stored(story):
    by_type = {}
    for mid, mtype, content, path in story.memories("s1"):
        by_type.setdefault(mtype, []).append((content, path))
    assert any("ZEBRA-7731 expected 1050 cents" in c for c, _ in by_type["error"])
    edits = by_type["edit"]
    assert {p for _, p in edits} == {"ledger.py"} and len(edits) == 2      # Write, then Edit
    assert any("half-even, see ZEBRA-7731" in c for c, _ in edits)
    assert any("Fix the failing ledger test" in c for c, _ in by_type["prompt"])
    (summary,) = [c for c, _ in by_type["summary"]]
    assert "Changed: ledger.py" in summary and "1 failed" in summary


def test_second_session_context_is_in_the_request_and_is_session_one(story):
    first = story.requests["s2"][0]["body"]
    start = context_messages(first, "SessionStart")
    prompt = context_messages(first, "UserPromptSubmit")
    assert start and prompt, "both contexts reach the model's first request"
    s1_ids = story.ids_after["s1"]
    start_ids = set(MEMORY_ID.findall("\n".join(start)))
    prompt_ids = set(MEMORY_ID.findall("\n".join(prompt)))
    assert start_ids and start_ids <= s1_ids, "SessionStart shows session 1's memory"
    (error_id,) = [mid for mid, *_ in story.memories("s1", "error")]
    assert error_id in prompt_ids, "the prompt's context is the failure it asks about"
    assert "Session " + story.sid("s1")[:8] in "\n".join(start)


def test_read_delivers_file_context_in_the_request_that_decides_the_edit(story):
    reqs = story.requests["read"]
    (decides_edit,) = [r for r in reqs if r["kind"] == "main:read:1"]   # its answer is the Edit
    file_ctx = [t for t in context_messages(decides_edit["body"]) if "ledger.py" in t and
                ("PreToolUse:Read" in t or "PostToolUse:Read" in t)]
    assert file_ctx, "what is known about ledger.py arrives with the Read, before the Edit"
    ids = set(MEMORY_ID.findall("\n".join(file_ctx)))
    s1_file = {mid for mid, mtype, _, path in story.memories("s1")
               if path == "ledger.py" or mtype == "error"}
    assert ids & s1_file


def test_resume_keeps_the_thread_and_does_not_inject_it_again(story):
    first = story.requests["resume"][0]["body"]
    seen_tools = [b.get("name") for m in first["messages"] if m["role"] == "assistant"
                  for b in m["content"] if isinstance(b, dict) and b.get("type") == "tool_use"]
    assert seen_tools[:4] == ["Bash", "Write", "Read", "Edit"], "session 1's turns are there"
    ctx = all_context([story.requests["resume"][0]])
    assert not any("Session " + story.sid("s1")[:8] in t for t in ctx if "Last session" in t), \
        "the resumed session is not shown to itself as 'last session'"
    ids = [i for t in ctx for i in MEMORY_ID.findall(t)]
    assert len(ids) == len(set(ids)), f"a memory injected twice: {ids}"


def test_compact_keeps_the_thread(story):
    assert [r["kind"] for r in story.requests["compact"]] == ["compact"]
    events = [e for e, *_ in story.runs["compact"].hook_lines()]
    assert "PreCompact:manual" in events and "SessionStart:compact" in events
    assert story.runs["compact"].session_id == story.sid("s1")
    after = story.requests["after_compact"][0]["body"]
    text = json.dumps(after)
    assert "Primary Request: the scripted task" in text, "the compaction summary is the thread"
    assert "THREAD-42" in text and "THREAD-43" in text
    ctx = "\n".join(all_context([story.requests["after_compact"][0]]))
    assert "This session before compaction" in ctx and "Fix the failing ledger test" in ctx
    assert story.home.sql("SELECT count(*) FROM session_snapshots WHERE session_id=?",
                          (story.sid("s1"),))[0][0] >= 1


def test_compaction_fork_is_not_a_subagent(story):
    # Claude Code's compaction runs as a forked agent whose SubagentStop has an empty agent_type
    assert "SubagentStop" in [e for e, *_ in story.runs["compact"].hook_lines()]
    assert story.memories("s1", "subagent") == []
    (summary,) = [c for _, _, c, _ in story.memories("s1", "summary")]
    assert "Subagents reported" not in summary


def test_auto_compaction_keeps_the_thread(story):
    run = story.runs["auto"]
    events = [e for e, *_ in run.hook_lines()]
    assert "PreCompact:auto" in events and "SessionStart:compact" in events
    assert {e.get("session_id") for e in run.events if e.get("session_id")} == {run.session_id}
    kinds = [r["kind"] for r in story.requests["auto"]]
    assert "compact" in kinds
    after = story.requests["auto"][kinds.index("compact") + 1]["body"]
    assert "THREAD-77" in json.dumps(after), "the summary carries the thread on"
    ctx = "\n".join(context_messages(after, "SessionStart"))
    assert "This session before compaction" in ctx and "THREAD-77" in ctx


def test_background_subagent_result_is_a_subagent_report_not_a_prompt(story):
    prompts = [c for _, _, c, _ in story.memories("delegate", "prompt")]
    assert len(prompts) == 1 and prompts[0].startswith("[[scenario:delegate]] Look around")
    reports = [c for _, _, c, _ in story.memories("delegate", "subagent")]
    assert any("The repository holds tests/test_ledger.py" in c for c in reports)
    assert not any(c.startswith("<task-notification>") for c in reports), "stored readable"
    (summary,) = [c for _, _, c, _ in story.memories("delegate", "summary")]
    assert "task-notification" not in summary
    assert story.home.sql("SELECT prompts FROM sessions WHERE id=?",
                          (story.sid("delegate"),))[0][0] == 1


def test_memory_add_run_through_bash_is_not_captured_again(story):
    decisions = [c for _, _, c, _ in story.memories("remember", "decision")]
    assert decisions == ["Cents are rounded half-even (ZEBRA-7731)"]
    commands = [c for _, _, c, _ in story.memories("remember", "command")]
    assert not [c for c in commands if "devstream memory add" in c]


def test_injected_ages_say_when_for_earlier_sessions(story):
    ctx = all_context(story.requests["s2"][:1] + story.requests["read"])
    lines = [l for t in ctx for l in t.splitlines() if MEMORY_ID.search(l) and l.startswith("- ")]
    assert lines
    assert not [l for l in lines if "just now" in l], lines
    day = __import__("time").strftime("%Y-%m-%d", __import__("time").gmtime())
    assert all(day in l for l in lines), lines


def test_a_prompt_is_remembered_with_what_came_of_it(story):
    fixed = [c for _, _, c, _ in story.memories("s1", "prompt") if "Fix the failing" in c]
    assert fixed and "Done: the ZEBRA-7731 rounding failure is fixed in ledger.py" in fixed[0]
    # and it is found by what came of it, not only by what was asked
    hits = story.home.devstream_json("memory", "search", "rounding failure fixed round")
    assert any("Fix the failing ledger test" in h["content"] for h in hits)
