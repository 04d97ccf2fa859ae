"""Project identity: worktrees of one repository share a project; DEVSTREAM_PROJECT overrides."""
import os
import subprocess

import devstream


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
                            GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t"))


def make_repo(path):
    os.makedirs(path)
    git(path, "init", "-q", "-b", "main")
    with open(os.path.join(path, "README"), "w") as fh:
        fh.write("x\n")
    git(path, "add", "README")
    git(path, "commit", "-qm", "init")


def test_worktrees_share_one_project(tmp_path):
    repo = str(tmp_path / "repo")
    make_repo(repo)
    wt = str(tmp_path / "elsewhere" / "feature")
    git(repo, "worktree", "add", "-q", "-b", "feature", wt)
    os.makedirs(os.path.join(repo, "src", "deep"))
    main = devstream.find_project(os.path.join(repo, "src", "deep"), env={})
    other = devstream.find_project(wt, env={})
    assert main.key == other.key
    assert main.name == other.name == "repo"
    assert main.root == os.path.realpath(repo)
    assert other.top == os.path.realpath(wt)


def test_plain_directory_and_override(tmp_path):
    d = str(tmp_path / "plain")
    os.makedirs(d)
    p = devstream.find_project(d, env={})
    assert p.key == os.path.realpath(d) and p.name == "plain"
    o = devstream.find_project(d, env={"DEVSTREAM_PROJECT": "shared-name"})
    assert o.key == "shared-name"


def test_sessions_of_two_worktrees_land_in_one_project(ds, tmp_path):
    repo = str(tmp_path / "r2")
    make_repo(repo)
    wt = str(tmp_path / "r2-wt")
    git(repo, "worktree", "add", "-q", "-b", "b", wt)
    ds.hook({"hook_event_name": "SessionStart", "session_id": "a", "cwd": repo})
    ds.hook({"hook_event_name": "SessionStart", "session_id": "b", "cwd": wt})
    rows = ds.sql("SELECT DISTINCT project_id FROM sessions")
    assert len(rows) == 1
    assert ds.sql("SELECT count(*) FROM projects")[0][0] == 1


def test_ignored_project_is_never_captured(ds):
    open(os.path.join(ds.project_dir, ".devstream-ignore"), "w").close()
    ds.hook({"hook_event_name": "SessionStart", "session_id": "ign"})
    if os.path.exists(ds.db):
        assert ds.sql("SELECT count(*) FROM sessions")[0][0] == 0
