"""The task graph: ids and prefixes, cycles, ready order, start refusal, history, races."""
import json
import os
import subprocess

import pytest


def add(ds, title, *opts):
    return ds.cli("task", "add", title, *opts, check=True).stdout.strip()


def test_ids_are_short_and_prefixes_work(ds):
    t = add(ds, "Write the parser")
    assert t.startswith("t-") and len(t) == 8
    assert ds.cli_json("task", "show", t[2:6])["id"] == t
    assert ds.cli_json("task", "show", t[:5])["title"] == "Write the parser"


def test_ambiguous_prefix_is_a_clear_error(ds):
    ids = [add(ds, f"task {i}") for i in range(40)]
    # with 40 ids some single hex digit is shared by several
    first = {}
    for i in ids:
        first.setdefault(i[2], []).append(i)
    digit, group = max(first.items(), key=lambda kv: len(kv[1]))
    assert len(group) > 1
    proc = ds.cli("task", "show", digit)
    # candidates are listed in id order, so the smallest of the group is always named
    assert proc.returncode == 1 and "ambiguous" in proc.stderr and min(group) in proc.stderr
    assert "Traceback" not in proc.stderr
    missing = ds.cli("task", "done", "t-zz")
    assert missing.returncode == 1 and "no task" in missing.stderr


def test_direct_and_transitive_cycles_are_refused_with_the_cycle_named(ds):
    a = add(ds, "A")
    b = add(ds, "B", "--after", a)
    c = add(ds, "C", "--after", b)
    direct = ds.cli("task", "dep", "add", a, "--on", b)
    assert direct.returncode == 1
    assert f"{a} (A) -> {b} (B) -> {a} (A)" in direct.stderr
    transitive = ds.cli("task", "dep", "add", a, "--on", c)
    assert transitive.returncode == 1
    assert f"{a} (A) -> {c} (C) -> {b} (B) -> {a} (A)" in transitive.stderr
    self_dep = ds.cli("task", "dep", "add", a, "--on", a)
    assert self_dep.returncode == 1 and "itself" in self_dep.stderr
    assert ds.sql("SELECT count(*) FROM task_deps") == [(2,)]
    ds.cli("task", "dep", "rm", c, "--on", b, check=True)
    ds.cli("task", "dep", "add", a, "--on", c, check=True)      # no longer a cycle


def test_ready_is_open_with_all_dependencies_done_by_priority_then_age(ds):
    low = add(ds, "low priority old", "--priority", "3")
    dep = add(ds, "blocker", "--priority", "2")
    high_blocked = add(ds, "urgent but waiting", "--priority", "0", "--after", dep)
    high = add(ds, "urgent", "--priority", "0")
    mid_new = add(ds, "low priority new", "--priority", "3")
    ready = [t["id"] for t in ds.cli_json("task", "ready")]
    assert ready == [high, dep, low, mid_new]
    ds.cli("task", "done", dep, check=True)
    ready = [t["id"] for t in ds.cli_json("task", "ready")]
    assert ready == [high_blocked, high, low, mid_new]     # same priority: older first
    assert [t["id"] for t in ds.cli_json("task", "ready", "--limit", "1")] == [high_blocked]


def test_start_refuses_unfinished_dependencies_unless_forced(ds):
    a = add(ds, "first")
    b = add(ds, "second", "--after", a)
    proc = ds.cli("task", "start", b)
    assert proc.returncode == 1 and a in proc.stderr and "--force" in proc.stderr
    assert ds.cli_json("task", "show", b)["status"] == "open"
    ds.cli("task", "start", b, "--force", check=True)
    assert ds.cli_json("task", "show", b)["status"] == "in_progress"


def test_every_status_change_is_kept(ds):
    t = add(ds, "cycle through")
    ds.cli("task", "start", t, check=True)
    ds.cli("task", "block", t, "--reason", "waiting for API keys", check=True)
    ds.cli("task", "reopen", t, check=True)
    ds.cli("task", "done", t, check=True)
    shown = ds.cli_json("task", "show", t)
    assert [(h["from"], h["to"]) for h in shown["history"]] == [
        (None, "open"), ("open", "in_progress"), ("in_progress", "blocked"),
        ("blocked", "open"), ("open", "done")]
    assert shown["history"][2]["note"] == "waiting for API keys"
    assert shown["closed_at"] is not None
    again = ds.cli("task", "done", t)
    assert again.returncode == 1 and "already done" in again.stderr


def test_task_json_shape(ds):
    parent = add(ds, "plan")
    t = ds.cli_json("task", "add", "step", "--parent", parent, "--estimate", "25", "--label", "db",
                    "--label", "api", "--description", "do it")
    assert set(t) >= {"id", "project", "title", "description", "status", "priority", "parent",
                      "depends_on", "estimate_minutes", "labels", "created_at", "updated_at",
                      "closed_at"}
    assert t["parent"] == parent and t["labels"] == ["db", "api"] and t["estimate_minutes"] == 25
    bad = ds.cli("task", "add", "x", "--priority", "7")
    assert bad.returncode == 2 and "priority" in bad.stderr


def test_memories_captured_while_a_task_is_in_progress_carry_it(ds):
    t = add(ds, "fix rounding")
    ds.cli("task", "start", t, check=True)
    ds.hook({"hook_event_name": "PostToolUse", "tool_name": "Edit",
             "tool_input": {"file_path": os.path.join(ds.project_dir, "invoice.py"),
                            "old_string": "round(x)", "new_string": "quantize(x)"},
             "tool_response": {}})
    ds.cli("task", "done", t, check=True)
    ds.hook({"hook_event_name": "UserPromptSubmit", "prompt": "next thing please"})
    shown = ds.cli_json("task", "show", t)
    assert [m["type"] for m in shown["memories"]] == ["edit"]
    assert ds.sql("SELECT task_id FROM memories WHERE type='prompt'") == [(None,)]


def test_tree_shows_plan_progress(ds):
    plan = add(ds, "Ship it")
    s1 = add(ds, "one", "--parent", plan)
    s2 = add(ds, "two", "--parent", plan, "--after", s1)
    ds.cli("task", "done", s1, check=True)
    out = ds.cli("task", "tree", plan, check=True).stdout
    assert f"[ ] {plan} Ship it  (1/2 done)" in out
    assert f"  [x] {s1} one" in out and f"  [ ] {s2} two  after {s1}" in out
    tree = ds.cli_json("task", "tree", plan)
    assert [c["id"] for c in tree[0]["children"]] == [s1, s2]
    assert plan not in [t["id"] for t in ds.cli_json("task", "ready")]


RACE = r"""
import subprocess, sys, json
argv = json.loads(sys.argv[1])
procs = [subprocess.Popen(argv + [action, sys.argv[2]], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) for action in ("done", "cancel") * 4]
codes = [p.wait() for p in procs]
print(json.dumps(codes))
"""


def test_concurrent_status_changes_from_two_processes(ds):
    for round_ in range(3):
        t = add(ds, f"contended {round_}")
        argv = ds.hook_argv[:-3] + ["task"]
        proc = subprocess.run(["python3", "-c", RACE, json.dumps(argv), t], capture_output=True,
                              text=True, env=ds.env, cwd=ds.project_dir, timeout=120)
        codes = json.loads(proc.stdout)
        assert codes.count(0) == 1, codes       # exactly one transition wins
        shown = ds.cli_json("task", "show", t)
        assert shown["status"] in ("done", "cancelled")
        assert len(shown["history"]) == 2       # created + the one winning change


def test_session_start_shows_tasks_and_how_to_update_them(ds):
    a = add(ds, "Doing now")
    ds.cli("task", "start", a, check=True)
    b = add(ds, "Next up", "--priority", "1")
    out = ds.hook({"hook_event_name": "SessionStart", "source": "startup", "session_id": "s1"})
    text = json.loads(out.stdout)["hookSpecificOutput"]["additionalContext"]
    assert a in text and "Doing now" in text and b in text
    assert "devstream task done ID" in text
    compact = ds.hook({"hook_event_name": "SessionStart", "source": "compact", "session_id": "s1"})
    assert b in json.loads(compact.stdout)["hookSpecificOutput"]["additionalContext"]
