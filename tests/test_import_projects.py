"""Imported sessions go to the project they were recorded in; DEVSTREAM_PROJECT given as a path
means that directory's project; the first session of a new project is primed."""
import json
import os
import shutil

from conftest import FIXTURES
from test_projects import git, make_repo

TRANSCRIPTS = os.path.join(FIXTURES, "transcripts")


def transcript_in(tmp_path, name, cwd, session, fixture="marot__spotter__short.jsonl"):
    """A real transcript whose lines say they were recorded in `cwd` as session `session`."""
    out = tmp_path / name
    lines = []
    with open(os.path.join(TRANSCRIPTS, fixture), encoding="utf-8") as fh:
        for line in fh:
            obj = json.loads(line)
            if "cwd" in obj:
                obj["cwd"] = cwd
            if "sessionId" in obj:
                obj["sessionId"] = session
            lines.append(json.dumps(obj))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return str(out)


def projects_of_sessions(ds):
    return dict(ds.sql("SELECT s.id, p.name FROM sessions s JOIN projects p ON p.id=s.project_id"))


def test_each_session_goes_to_the_project_of_its_cwd(ds, tmp_path):
    repo = str(tmp_path / "billing")
    make_repo(repo)
    wt = str(tmp_path / "billing-feature")
    git(repo, "worktree", "add", "-q", "-b", "feature", wt)
    os.makedirs(os.path.join(repo, "src"))
    files = [transcript_in(tmp_path / "t", "a.jsonl", repo, "sess-main"),
             transcript_in(tmp_path / "t", "b.jsonl", wt, "sess-worktree"),
             transcript_in(tmp_path / "t", "c.jsonl", os.path.join(repo, "src"), "sess-subdir"),
             transcript_in(tmp_path / "t", "d.jsonl", "/nonexistent/elsewhere/webshop", "sess-far")]
    out = ds.cli_json("import-transcripts", *files)     # run from an unrelated project
    assert out["sessions"] == 4
    assert projects_of_sessions(ds) == {"sess-main": "billing", "sess-worktree": "billing",
                                        "sess-subdir": "billing", "sess-far": "webshop"}
    # nothing landed in the project the command ran in
    assert ds.cli_json("memory", "list") == [] and ds.cli_json("session", "list") == []
    here = ds.cli_json("session", "list", cwd=wt)
    assert sorted(s["id"] for s in here) == ["sess-main", "sess-subdir", "sess-worktree"]
    assert [f["projects"] for f in out["files"]] == [["billing"], ["billing"], ["billing"],
                                                      ["webshop"]]
    text = ds.cli("import-transcripts", *files, check=True).stdout
    assert "a.jsonl: 0 new sessions, 0 new memories -> billing" in text


def test_project_option_forces_the_target(ds, tmp_path):
    f = transcript_in(tmp_path, "x.jsonl", "/nonexistent/some/other-repo", "sess-forced")
    target = tmp_path / "target"
    target.mkdir()
    out = ds.cli_json("import-transcripts", f, "--project", str(target))
    assert out["files"][0]["projects"] == ["target"]
    assert projects_of_sessions(ds) == {"sess-forced": "target"}


def test_directories_are_searched_and_each_file_reported(ds, tmp_path):
    folder = tmp_path / "claude-projects"
    a = transcript_in(folder / "-repo-a", "one.jsonl", "/nonexistent/repo-a", "dir-1")
    b = transcript_in(folder / "-repo-b", "two.jsonl", "/nonexistent/repo-b", "dir-2")
    sub = transcript_in(folder / "-repo-b" / "two" / "subagents", "agent-x.jsonl",
                        "/nonexistent/repo-b", "dir-3")
    (folder / "-repo-b" / "notes.txt").write_text("not a transcript")
    proc = ds.cli("import-transcripts", str(folder), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [f["path"] for f in out["files"]] == [a, b]          # subagents/ skipped
    assert sub not in proc.stdout
    assert out["sessions"] == 2 and sorted(projects_of_sessions(ds).values()) == ["repo-a", "repo-b"]
    text = ds.cli("import-transcripts", str(folder), check=True).stdout.splitlines()
    assert text[0].startswith(a + ": ") and text[1].startswith(b + ": ")
    assert text[-1] == "imported 0 sessions, 0 memories from 2 files"


def test_unreadable_paths_exit_1_after_importing_the_rest(ds, tmp_path):
    good = transcript_in(tmp_path, "good.jsonl", "/nonexistent/repo-g", "good-1")
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    missing = str(tmp_path / "missing.jsonl")
    proc = ds.cli("import-transcripts", missing, good, str(empty_dir), "--json")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    out = json.loads(proc.stdout)
    assert out["sessions"] == 1                          # the readable one was imported
    assert any("missing.jsonl" in p and "no such file" in p for p in out["problems"])
    assert any("empty" in p and "no transcripts" in p for p in out["problems"])
    assert "missing.jsonl" in proc.stderr
    if os.geteuid() != 0:                                # root reads anything
        locked = tmp_path / "locked.jsonl"
        shutil.copy(good, locked)
        os.chmod(locked, 0)
        assert ds.cli("import-transcripts", str(locked)).returncode == 1


def test_real_transcripts_of_many_repositories_stay_apart(ds):
    names = ["marot__spotter__short.jsonl", "git-ai-project__git-ai__claude-code-with-thinking.jsonl",
             "d-kimuson__claude-code-viewer__1af7fc5e-8455-4414-9ccd-011d40f70b2a.jsonl"]
    out = ds.cli_json("import-transcripts", *[os.path.join(TRANSCRIPTS, n) for n in names])
    assert out["sessions"] >= 3
    named = {p for f in out["files"] for p in f["projects"]}
    assert len(named) == 3 and "project" not in named
    assert ds.cli_json("memory", "list") == []


# -- DEVSTREAM_PROJECT --------------------------------------------------------------------------

def test_devstream_project_as_a_path_is_that_directorys_project(ds, tmp_path):
    repo = str(tmp_path / "shop")
    make_repo(repo)
    wt = str(tmp_path / "shop-wt")
    git(repo, "worktree", "add", "-q", "-b", "x", wt)
    ds.cli("memory", "add", "--type", "decision", "prices are integer cents", cwd=repo, check=True)
    for value in (repo, wt, os.path.join(repo, "."), repo + "/", "~/../" + os.path.relpath(
            repo, os.path.dirname(ds.env["HOME"]))):
        listed = ds.cli_json("memory", "list", env={"DEVSTREAM_PROJECT": value})
        assert [m["content"] for m in listed] == ["prices are integer cents"], value
    assert ds.sql("SELECT count(*) FROM projects") == [(1,)]
    named = ds.cli_json("memory", "list", env={"DEVSTREAM_PROJECT": "just-a-name"})
    assert named == []


# -- SessionStart primes the agent --------------------------------------------------------------

def start(ds, **env):
    proc = ds.hook({"hook_event_name": "SessionStart", "session_id": "prime", "source": "startup"},
                   env=env or None)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    return proc.stdout


def test_first_session_of_a_new_project_gets_the_how_to(ds):
    out = json.loads(start(ds))
    text = out["hookSpecificOutput"]["additionalContext"]
    assert text.startswith("## DevStream: project project")
    assert "devstream memory add --type decision" in text and "devstream task add" in text
    preview = ds.cli("context", check=True).stdout
    assert preview.strip() == text


def test_ignored_or_disabled_projects_stay_silent(ds):
    assert start(ds, DEVSTREAM_DISABLE="1") == b""
    open(os.path.join(ds.project_dir, ".devstream-ignore"), "w").close()
    assert start(ds) == b""
    assert ds.cli("context", check=True).stdout.strip() == "(nothing would be injected)"
