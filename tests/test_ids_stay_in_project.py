"""An id names a memory, task or session of the current project only: from another project the
commands that take an id answer "not in this project" (exit 1) and change nothing; with
--all-projects they reach it.  Two real project directories, the real command line."""
import json
import os


def project(ds, name):
    d = os.path.join(ds.tmp, name)
    os.makedirs(d, exist_ok=True)
    return d


def refused(proc):
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "in this project" in proc.stderr, proc.stderr
    return proc


def test_memory_ids_do_not_cross_projects(ds):
    a, b = project(ds, "alpha"), project(ds, "bravo")
    mid = ds.cli("memory", "add", "--type", "decision", "ALPHA-ONLY ledger in integer cents",
                 cwd=a, check=True).stdout.strip()
    ds.cli("memory", "add", "a note of bravo's own", cwd=b, check=True)

    shown = ds.cli("memory", "show", mid, cwd=a, check=True).stdout
    assert "ALPHA-ONLY" in shown
    for ident in (mid, mid[:5], mid[2:]):                      # full id, prefix, without m-
        out = refused(ds.cli("memory", "show", ident, cwd=b))
        assert "ALPHA-ONLY" not in out.stdout + out.stderr
    refused(ds.cli("memory", "forget", mid, cwd=b))
    assert ds.sql("SELECT count(*) FROM memories WHERE id=?", (mid,))[0][0] == 1
    # the current project is chosen with --project as well as by the working directory
    refused(ds.cli("memory", "show", mid, "--project", b, cwd=a))

    wide = ds.cli_json("memory", "show", mid, "--all-projects", cwd=b)
    assert wide["id"] == mid and wide["project"] == "alpha"
    ds.cli("memory", "forget", mid, "--all-projects", cwd=b, check=True)
    assert ds.sql("SELECT count(*) FROM memories WHERE id=?", (mid,))[0][0] == 0


def test_task_ids_do_not_cross_projects(ds):
    a, b = project(ds, "alpha"), project(ds, "bravo")
    t1 = ds.cli("task", "add", "ALPHA-ONLY write the ledger migration", cwd=a,
                check=True).stdout.strip()
    t2 = ds.cli("task", "add", "ALPHA-ONLY backfill", "--after", t1, cwd=a,
                check=True).stdout.strip()
    own = ds.cli("task", "add", "bravo's task", cwd=b, check=True).stdout.strip()
    assert ds.cli_json("task", "show", t1, cwd=a)["title"].startswith("ALPHA-ONLY")

    for argv in (["task", "show", t1], ["task", "show", t1[:5]], ["task", "tree", t1],
                 ["task", "start", t1], ["task", "done", t1, "--force"], ["task", "cancel", t1],
                 ["task", "reopen", t1], ["task", "block", t1, "--reason", "x"],
                 ["task", "dep", "rm", t2, "--on", t1], ["task", "dep", "add", own, "--on", t1]):
        out = refused(ds.cli(*argv, cwd=b))
        assert "ALPHA-ONLY" not in out.stdout + out.stderr, argv
    # nothing changed: still open, still depending on t1, no event but its creation
    assert ds.sql("SELECT status FROM tasks WHERE id IN (?, ?)", (t1, t2)) == [("open",), ("open",)]
    assert ds.sql("SELECT depends_on FROM task_deps WHERE task_id=?", (t2,)) == [(t1,)]
    assert ds.sql("SELECT count(*) FROM task_events WHERE task_id=?", (t1,))[0][0] == 1
    # a new task of bravo cannot name alpha's task as its parent or dependency either
    proc = ds.cli("task", "add", "sneaky", "--after", t1, cwd=b)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr

    wide = ds.cli_json("task", "show", t1, "--all-projects", cwd=b)
    assert wide["id"] == t1 and wide["project"] == "alpha" and wide["dependents"] == [t2]
    ds.cli("task", "start", t1, "--all-projects", cwd=b, check=True)
    assert ds.sql("SELECT status FROM tasks WHERE id=?", (t1,)) == [("in_progress",)]


def test_session_ids_do_not_cross_projects(ds):
    a, b = project(ds, "alpha"), project(ds, "bravo")
    ds.hook({"hook_event_name": "SessionStart", "source": "startup", "session_id": "alpha-s1",
             "cwd": a})
    ds.hook({"hook_event_name": "UserPromptSubmit", "session_id": "alpha-s1", "cwd": a,
             "prompt": "ALPHA-ONLY why is the ledger off by one cent?"})
    assert "ALPHA-ONLY" in ds.cli("session", "show", "alpha-s1", cwd=a, check=True).stdout
    out = refused(ds.cli("session", "show", "alpha", cwd=b))
    assert "ALPHA-ONLY" not in out.stdout
    wide = json.loads(ds.cli("session", "show", "alpha", "--all-projects", "--json", cwd=b,
                             check=True).stdout)
    assert wide["id"] == "alpha-s1" and wide["project"] == "alpha"
