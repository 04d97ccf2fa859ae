"""doctor tells the truth: its round trip proves that a hook event was stored and read back (and
leaves nothing behind); a data directory that cannot take the database is a FAIL; a missing
`devstream` command is a WARN with the fix; every FAIL's fix is one command."""
import json
import os
import shlex

from test_hook_faults import held_lock


def doctor(ds, env=None):
    proc = ds.cli("doctor", "--json", env=env)
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    return proc.returncode, {c["name"]: c for c in report["checks"]}


def assert_fixes_are_one_command(checks):
    for c in checks.values():
        if c["status"] == "FAIL":
            fix = c["fix"].split("   (")[0]
            assert fix and ";" not in fix and "&&" not in fix and "\n" not in fix, c
            assert " and " not in fix and not fix.startswith(("fix ", "check ", "move ")), c
            shlex.split(fix)


def test_round_trip_stores_reads_back_and_removes_its_probe(ds):
    ds.cli("install", check=True)
    ds.cli("memory", "add", "--type", "decision", "a real decision", check=True)
    before = ds.sql("SELECT count(*) FROM memories")
    code, checks = doctor(ds)
    assert code == 0, checks
    assert checks["round trip"]["status"] == "PASS"
    assert "stored and read back" in checks["round trip"]["detail"]
    # nothing of the probe is left: no project, session, memory, FTS row or queued embedding
    assert ds.sql("SELECT count(*) FROM memories") == before
    assert ds.sql("SELECT name FROM projects") == [("project",)]
    assert ds.sql("SELECT count(*) FROM sessions WHERE id LIKE 'devstream-doctor-%'") == [(0,)]
    assert ds.sql("SELECT count(*) FROM memories_fts WHERE memories_fts MATCH 'probe'") == [(0,)]
    assert ds.sql("SELECT count(*) FROM embed_pending") == before


def test_round_trip_fails_when_the_hook_could_not_store(ds):
    ds.cli("install", check=True)
    with held_lock(ds.db):
        code, checks = doctor(ds)
    assert code == 1
    trip = checks["round trip"]
    assert trip["status"] == "FAIL" and "stored nothing" in trip["detail"], trip
    assert "store" in trip["detail"]                    # the reason, from the log
    assert_fixes_are_one_command(checks)
    assert ds.sql("SELECT count(*) FROM projects WHERE name LIKE 'devstream-doctor-%'") == [(0,)]


def test_a_data_directory_that_cannot_be_created_is_a_fail(ds, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should go")
    code, checks = doctor(ds, env={"DEVSTREAM_HOME": str(blocker / "devstream")})
    assert code == 1
    assert checks["data dir"]["status"] == "FAIL"
    assert "cannot be created" in checks["data dir"]["detail"]
    assert checks["data dir"]["fix"].startswith("export DEVSTREAM_HOME=")
    assert checks["round trip"]["status"] == "FAIL"
    assert_fixes_are_one_command(checks)


def test_an_unwritable_data_directory_is_a_fail(ds):
    ds.cli("install", check=True)
    if os.geteuid() == 0:
        # root writes through file modes; a data directory path through a file still cannot
        # take files, which is the same finding
        home = os.path.join(ds.db, "sub")
        code, checks = doctor(ds, env={"DEVSTREAM_HOME": home})
    else:
        os.chmod(ds.home, 0o500)
        try:
            code, checks = doctor(ds)
        finally:
            os.chmod(ds.home, 0o700)
    assert code == 1 and checks["data dir"]["status"] == "FAIL", checks["data dir"]
    assert_fixes_are_one_command(checks)


def test_devstream_missing_from_path_is_a_warning_with_the_fix(ds):
    ds.cli("install", check=True)
    code, checks = doctor(ds, env={"PATH": "/usr/bin:/bin"})
    assert code == 0
    cmd = checks["command"]
    assert cmd["status"] == "WARN" and "not on PATH" in cmd["detail"]
    assert cmd["fix"].startswith(("export PATH=", "ln -s "))
    bindir = os.path.join(ds.tmp, "bin")
    os.makedirs(bindir)
    os.symlink(ds.hook_argv[2], os.path.join(bindir, "devstream"))     # the launcher
    code, checks = doctor(ds, env={"PATH": bindir + ":/usr/bin:/bin"})
    assert checks["command"]["status"] == "PASS"


def test_disabled_devstream_is_named(ds):
    ds.cli("install", check=True)
    code, checks = doctor(ds, env={"DEVSTREAM_DISABLE": "1"})
    assert checks["round trip"]["status"] == "WARN"
    assert checks["round trip"]["fix"] == "unset DEVSTREAM_DISABLE"


def test_hooks_registered_with_another_cli_only_are_no_warning(ds):
    """A user of Gemini CLI alone is set up: doctor does not ask for Claude Code; with no CLI
    registered at all it says so, naming them."""
    before = {c["name"]: c for c in ds.cli_json("doctor")["checks"]}
    assert before["hooks"]["status"] == "WARN" and "any agent CLI" in before["hooks"]["detail"]
    ds.cli("install", "--cli", "gemini", check=True)
    after = {c["name"]: c for c in ds.cli_json("doctor")["checks"]}
    assert "hooks" not in after
    assert after["hooks gemini/user"]["status"] == "PASS"
