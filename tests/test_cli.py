"""The command line as a first-time user meets it: help for every command and group, the
documented exit codes, one JSON shape per kind of thing, --limit and --all-projects the same
everywhere, counted and previewed deletions, and no traceback anywhere."""
import json
import os

import pytest

import devstream

COMMANDS = [name for name in devstream.COMMANDS]
GROUPS = list(devstream.GROUPS)
LISTINGS = [("memory", "list"), ("memory", "search", "x"), ("task", "list"), ("task", "ready"),
            ("session", "list")]


def no_traceback(proc):
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr


def one_line_error(proc, code):
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    no_traceback(proc)
    lines = [l for l in proc.stderr.splitlines() if l.startswith("devstream:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


# -- help ---------------------------------------------------------------------------------------

def test_help_lists_every_command(ds):
    proc = ds.cli("help")
    assert proc.returncode == 0 and proc.stderr == ""
    for name in COMMANDS:
        if name not in devstream.HIDDEN:
            assert f"  {name} " in proc.stdout, name
    assert ds.cli("--help").stdout == proc.stdout


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_its_own_help(ds, name):
    proc = ds.cli(*name.split(), "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    text = proc.stdout
    assert text.startswith(f"usage: devstream {name}")
    assert "\nexample:\n  " in text and f"devstream {name}" in text.split("example:")[1]
    for option in devstream.COMMANDS[name][1]:
        assert f"  {option} " in text or f"  {option}," in text or f", {option} " in text, \
            f"{name} --help does not explain {option}"
    # the explanation is the command's own, and `help NAME` gives the same page
    assert devstream.HELP[name][0].split()[0] in text
    assert ds.cli("help", *name.split()).stdout == text
    assert ds.cli(*name.split(), "-h").stdout == text


def test_every_option_of_a_command_is_explained_and_nothing_else():
    for name, (summary, usage, options, example) in devstream.HELP.items():
        spec = devstream.COMMANDS[name][1]
        for flag, text in options:
            for part in flag.split(", "):
                token = part.split()[0]
                if token.startswith("-"):
                    assert token in spec, f"{name} documents {token} but does not take it"
            assert text.strip(), (name, flag)
        assert f"devstream {name}" in example, name


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_has_help(ds, group):
    proc = ds.cli(*group.split(), "--help")
    assert proc.returncode == 0 and proc.stderr == ""
    subs = [n[len(group) + 1:] for n in COMMANDS if n.startswith(group + " ")
            and n not in devstream.HIDDEN]
    assert subs
    for sub in subs:
        assert f"  {sub} " in proc.stdout
    bare = ds.cli(*group.split())
    assert bare.returncode == 2 and "needs a command" in bare.stderr
    unknown = ds.cli(*group.split(), "frobnicate")
    assert unknown.returncode == 2 and "unknown command" in unknown.stderr
    no_traceback(unknown)


def test_unknown_command_and_option_are_usage_errors(ds):
    assert "unknown command" in one_line_error(ds.cli("frobnicate"), 2)
    assert "unknown option --colour" in one_line_error(ds.cli("task", "list", "--colour"), 2)
    assert "missing" in one_line_error(ds.cli("memory", "show"), 2)
    assert ds.cli().returncode == 2
    # --all-projects only where there is a listing
    assert one_line_error(ds.cli("task", "add", "x", "--all-projects"), 2)


# -- exit codes and option values ---------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ("task", "add", "x", "--priority", "9"),
    ("task", "add", "x", "--priority", "high"),
    ("task", "add", "x", "--priority", "-1"),
    ("memory", "add", "x", "--type", "bogus"),
    ("memory", "list", "--type", "bogus"),
    ("memory", "search", "x", "--type", "bogus"),
    ("memory", "search", ""),
    ("memory", "search", "x", "--mode", "psychic"),
    ("task", "list", "--status", "finished"),
    ("context", "--event", "lunch"),
    ("install", "--scope", "galaxy"),
    ("gc", "--older-than", "soon"),
    ("task", "add", "x", "--estimate", "ten"),
])
def test_bad_option_values_are_usage_errors(ds, argv):
    one_line_error(ds.cli(*argv), 2)
    assert not os.path.exists(ds.db) or ds.sql("SELECT count(*) FROM tasks") == [(0,)]


def test_priority_words_that_work(ds):
    tid = ds.cli("task", "add", "urgent", "--priority", "P0", check=True).stdout.strip()
    assert ds.cli_json("task", "show", tid)["priority"] == 0


@pytest.mark.parametrize("argv", LISTINGS + [("embed",)])
@pytest.mark.parametrize("limit", ["0", "-1", "-20"])
def test_limit_must_be_one_or_more_everywhere(ds, argv, limit):
    assert "--limit must be 1 or more" in one_line_error(ds.cli(*argv, "--limit", limit), 2)


@pytest.mark.parametrize("argv", LISTINGS)
def test_listings_before_anything_was_recorded_are_empty_not_errors(ds, argv):
    proc = ds.cli(*argv)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert ds.cli_json(*argv) == []


def test_limit_means_at_most_n(ds):
    for i in range(5):
        ds.cli("memory", "add", f"limit note {i}", check=True)
        ds.cli("task", "add", f"limit task {i}", check=True)
    assert len(ds.cli_json("memory", "list", "--limit", "2")) == 2
    assert len(ds.cli_json("memory", "search", "limit", "--limit", "2")) == 2
    assert len(ds.cli_json("task", "list", "--limit", "2")) == 2
    assert len(ds.cli_json("task", "ready", "--limit", "2")) == 2
    assert len(ds.cli_json("task", "list")) == 5


def test_embed_without_ollama_uses_the_embedded_model(ds):
    ds.cli("memory", "add", "something to embed", check=True)
    proc = ds.cli("embed", env={"DEVSTREAM_EMBED_MODE": "background"})
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout == "embedded 1 memory, 0 pending\n"


def test_non_utf8_input_is_an_error_not_a_traceback(ds, tmp_path):
    import subprocess
    argv = list(ds.hook_argv[:-3]) + ["memory", "add", "-"]
    raw = subprocess.run(argv, input=b"caf\xe9 \xff\xfe decision", capture_output=True,
                         env=ds.env, cwd=ds.project_dir, timeout=60)
    assert raw.returncode == 1 and b"Traceback" not in raw.stderr
    assert b"not UTF-8" in raw.stderr and raw.stdout == b""
    bad = tmp_path / "plan.md"
    bad.write_bytes(b"# Plan\n- [ ] caf\xe9\n")
    assert "not UTF-8" in one_line_error(ds.cli("plan", "--from", str(bad)), 1)
    assert not os.path.exists(ds.db) or ds.sql("SELECT count(*) FROM memories") == [(0,)]


# -- one JSON shape per kind --------------------------------------------------------------------

def test_one_json_shape_for_a_memory(ds):
    added = ds.cli_json("memory", "add", "--type", "decision", "--tag", "money", "integer cents")
    shown = ds.cli_json("memory", "show", added["id"])
    listed = ds.cli_json("memory", "list")[0]
    found = ds.cli_json("memory", "search", "integer cents")[0]
    assert added == shown == listed
    assert set(found) - set(shown) == {"score", "fts", "vector"}
    assert {k: found[k] for k in shown} == shown
    assert shown["type"] == "decision" and shown["tags"] == ["money"]
    again = ds.cli_json("memory", "add", "--type", "decision", "integer cents")
    assert again["id"] == added["id"]


def test_one_json_shape_for_a_task(ds):
    dep = ds.cli_json("task", "add", "first")
    t = ds.cli_json("task", "add", "second", "--after", dep["id"])
    base = set(t)
    assert set(dep) == base
    assert set(ds.cli_json("task", "list")[0]) == base
    assert set(ds.cli_json("task", "ready")[0]) == base
    shown = ds.cli_json("task", "show", t["id"])
    assert base <= set(shown) and {k: shown[k] for k in base} == t
    started = ds.cli_json("task", "start", dep["id"])
    assert set(started) == base and started["status"] == "in_progress"
    tree = ds.cli_json("task", "tree", dep["id"])[0]
    assert set(tree) == base | {"children"}


def test_one_json_shape_for_a_session(ds):
    ds.hook({"hook_event_name": "SessionStart", "session_id": "shape-1", "source": "startup"})
    ds.hook({"hook_event_name": "UserPromptSubmit", "session_id": "shape-1",
             "prompt": "make the invoice totals exact"})
    listed = ds.cli_json("session", "list")[0]
    shown = ds.cli_json("session", "show", "shape-1")
    assert set(listed) <= set(shown)
    assert {k: shown[k] for k in listed} == listed
    assert listed["prompts"] == 1 and isinstance(shown["prompts"], int)
    assert shown["prompt_texts"] == ["make the invoice totals exact"]


def test_one_json_shape_for_a_result_summary(ds, tmp_path):
    ds.cli("memory", "add", "to be exported", check=True)
    export = tmp_path / "x.jsonl"
    ds.cli("export", "-o", str(export), check=True)
    mid = ds.cli_json("memory", "list")[0]["id"]
    results = [ds.cli_json("import", str(export)), ds.cli_json("gc", "--older-than", "1"),
               ds.cli_json("memory", "forget", mid)]
    transcript = tmp_path / "t.jsonl"
    transcript.write_text("")
    results.append(ds.cli_json("import-transcripts", str(transcript)))
    for r in results:
        assert {"action", "dry_run", "problems"} <= set(r), r
        assert isinstance(r["problems"], list) and isinstance(r["dry_run"], bool)
        for k, v in r.items():
            if k not in ("action", "dry_run", "problems", "by_type", "files", "ids", "vacuumed"):
                assert isinstance(v, int) and k.endswith("s"), (r["action"], k)  # plural counts
    assert results[0]["memories"] == 0 and results[2]["memories"] == 1


# -- --all-projects -----------------------------------------------------------------------------

def test_all_projects_works_for_every_listing(ds, tmp_path):
    a, b = tmp_path / "alpha", tmp_path / "beta"
    a.mkdir()
    b.mkdir()
    ds.cli("task", "add", "alpha task", cwd=str(a), check=True)
    ds.cli("task", "add", "beta task", cwd=str(b), check=True)
    ds.cli("memory", "add", "alpha shared word", cwd=str(a), check=True)
    ds.cli("memory", "add", "beta shared word", cwd=str(b), check=True)
    ds.hook({"hook_event_name": "SessionStart", "session_id": "in-a", "cwd": str(a)})
    ds.hook({"hook_event_name": "SessionStart", "session_id": "in-b", "cwd": str(b)})
    for argv in (("task", "ready"), ("task", "list"), ("memory", "list"),
                 ("memory", "search", "shared word"), ("session", "list")):
        here = ds.cli_json(*argv, cwd=str(a))
        wide = ds.cli_json(*argv, "--all-projects", cwd=str(a))
        assert {x["project"] for x in here} == {"alpha"}, argv
        assert {x["project"] for x in wide} == {"alpha", "beta"}, argv
    text = ds.cli("task", "list", "--all-projects", cwd=str(a), check=True).stdout
    assert "alpha" in text and "beta" in text          # a project column
    tree = ds.cli("task", "tree", "--all-projects", cwd=str(a), check=True).stdout
    assert "project alpha" in tree and "project beta" in tree


# -- wording ------------------------------------------------------------------------------------

def test_plurals_and_verbs(ds, tmp_path):
    mid = ds.cli_json("memory", "add", "only one")["id"]
    assert ds.cli("memory", "forget", mid, check=True).stdout.startswith("forgot 1 memory")
    dep = ds.cli("task", "add", "a", check=True).stdout.strip()
    t = ds.cli("task", "add", "b", "--after", dep, check=True).stdout.strip()
    ds.cli("task", "done", dep, check=True)
    msg = one_line_error(ds.cli("task", "done", dep), 1)
    assert "already done" in msg
    ds.cli("task", "cancel", t, check=True)
    msg = one_line_error(ds.cli("task", "block", t, "--reason", "x"), 1)
    assert "cannot block" in msg and "cancelled" in msg
    ds.hook({"hook_event_name": "SessionStart", "session_id": "w1"})
    # no agent_type at all (an empty one is Claude Code's compaction fork, not a subagent)
    ds.hook({"hook_event_name": "SubagentStop", "session_id": "w1",
             "last_assistant_message": "The rounding bug comes from float division in totals."})
    content = ds.sql("SELECT content FROM memories WHERE type='subagent'")[0][0]
    assert content.startswith("A subagent reported: ")
    listed = ds.cli("session", "list", check=True).stdout
    assert "0 prompts" in listed and " 1 sessions" not in listed
    for text in (listed, ds.cli("help", check=True).stdout):
        assert "memorys" not in text and "(s)" not in text


# -- nothing destructive without a preview ------------------------------------------------------

def aged(ds, days):
    ds.sql("UPDATE memories SET created_at = created_at - ?", (days * 86400,))


def seed_for_gc(ds):
    for i in range(3):
        ds.cli("memory", "add", f"old note {i}", check=True)
    ds.cli("memory", "add", "--type", "decision", "old decision: integer cents", check=True)
    ds.cli("memory", "add", "--type", "learning", "old learning: the API rounds", check=True)
    ds.cli("memory", "add", "--type", "error", "old error: ZeroDivisionError", check=True)
    aged(ds, 400)


@pytest.mark.parametrize("age", ["0", "-1", "-30"])
def test_gc_refuses_zero_and_negative_ages(ds, age):
    seed_for_gc(ds)
    one_line_error(ds.cli("gc", "--older-than", age), 2)
    one_line_error(ds.cli("gc", "--keep", age), 2)
    assert ds.sql("SELECT count(*) FROM memories") == [(6,)]


def test_gc_without_an_age_deletes_nothing(ds):
    seed_for_gc(ds)
    assert "--older-than" in one_line_error(ds.cli("gc"), 2)
    assert ds.sql("SELECT count(*) FROM memories") == [(6,)]


def test_gc_dry_run_previews_by_type_and_deletes_nothing(ds):
    seed_for_gc(ds)
    preview = ds.cli_json("gc", "--older-than", "30", "--dry-run")
    assert preview["dry_run"] is True and preview["memories"] == 4
    assert preview["by_type"] == {"note": 3, "error": 1}
    text = ds.cli("gc", "--older-than", "30", "--dry-run", check=True).stdout
    assert text.startswith("would delete 4 memories (1 error, 3 note)")
    assert "decisions and learnings kept" in text
    assert ds.sql("SELECT count(*) FROM memories") == [(6,)]


def test_gc_keeps_decisions_and_learnings_unless_named(ds):
    seed_for_gc(ds)
    out = ds.cli("gc", "--older-than", "30", check=True).stdout
    assert out.startswith("deleted 4 memories (1 error, 3 note)")
    assert sorted(r[0] for r in ds.sql("SELECT type FROM memories")) == ["decision", "learning"]
    named = ds.cli_json("gc", "--older-than", "30", "--type", "decision")
    assert named["by_type"] == {"decision": 1}
    assert [r[0] for r in ds.sql("SELECT type FROM memories")] == ["learning"]


def test_gc_acts_on_this_project_unless_all_projects(ds, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    ds.cli("memory", "add", "here old", check=True)
    ds.cli("memory", "add", "there old", cwd=str(other), check=True)
    aged(ds, 100)
    assert ds.cli_json("gc", "--older-than", "30")["memories"] == 1
    assert [r[0] for r in ds.sql("SELECT content FROM memories")] == ["there old"]
    assert ds.cli_json("gc", "--older-than", "30", "--all-projects")["memories"] == 1


def test_task_done_refuses_unfinished_dependencies_without_force(ds):
    dep = ds.cli("task", "add", "migrate the ledger", check=True).stdout.strip()
    t = ds.cli("task", "add", "ship billing v2", "--after", dep, check=True).stdout.strip()
    msg = one_line_error(ds.cli("task", "done", t), 1)
    assert "cannot finish" in msg and dep in msg and "--force" in msg
    assert ds.cli_json("task", "show", t)["status"] == "open"
    forced = ds.cli_json("task", "done", t, "--force")
    assert forced["status"] == "done"
    other = ds.cli("task", "add", "write docs", "--after", dep, check=True).stdout.strip()
    ds.cli("task", "done", dep, check=True)
    assert ds.cli_json("task", "done", other)["status"] == "done"


def test_memory_add_keeps_the_whole_text_or_refuses(ds):
    limit = devstream.MAX_MEMORY_CHARS
    exact = "word " * (limit // 5)
    mid = ds.cli("memory", "add", exact, check=True).stdout.strip()
    assert ds.cli_json("memory", "show", mid)["content"] == exact.strip()
    longer = exact + " and then some more text that does not fit"
    msg = one_line_error(ds.cli("memory", "add", longer), 1)
    assert f"{limit:,}" in msg and "nothing was stored" in msg
    assert ds.sql("SELECT count(*) FROM memories") == [(1,)]
    # the longer text is not "already stored": it was never cut to the shorter one
    assert "already stored" not in msg


def test_memory_forget_prints_counts(ds):
    mid = ds.cli_json("memory", "add", "--type", "decision", "forget me")["id"]
    out = ds.cli_json("memory", "forget", mid)
    assert out["memories"] == 1 and out["by_type"] == {"decision": 1} and out["ids"] == [mid]
    assert "no memory" in one_line_error(ds.cli("memory", "forget", mid), 1)


# -- the README's commands are real -------------------------------------------------------------

def readme_commands():
    import re
    text = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "README.md"), encoding="utf-8").read()
    spans = re.findall(r"`([^`\n]+)`", text)
    spans += [line.strip() for line in text.splitlines() if line.startswith("    ")]
    found = []
    for span in spans:
        for m in re.finditer(r"(?:^|[\s|;(])devstream ([a-z][a-z-]*(?: [^|;)&#]*)?)", span):
            found.append(m.group(1).strip())
    return found


def test_every_command_the_readme_shows_exists_with_its_options():
    shown = readme_commands()
    assert len(shown) > 20
    problems = []
    for cmd in shown:
        words = cmd.split()
        name, rest = devstream._split_command(words)
        if name is None:
            group = " ".join(words[:2]) if " ".join(words[:2]) in devstream.GROUPS else words[0]
            if group not in devstream.GROUPS:
                problems.append(f"no command: devstream {cmd}")
            continue
        spec = devstream.COMMANDS[name][1]
        for word in rest:
            option = word.split("=")[0].rstrip(",.")
            if option.startswith("--") and option != "--help" and option not in spec:
                problems.append(f"devstream {cmd}: {name} has no {option}")
    assert not problems, "\n".join(problems)
