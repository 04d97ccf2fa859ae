"""Settings files are handled as a careful user expects: a symlink is followed and its target
written, backups are timestamped (the last five kept), DevStream's own entries are recognised
by their exact shape (a user's hook that mentions devstream is kept), a read-only file is
refused with a clear message."""
import glob
import json
import os
import time


def settings(ds):
    return os.path.join(ds.env["HOME"], ".claude", "settings.json")


def ours(data):
    return [h["command"] for groups in data.get("hooks", {}).values() for g in groups
            for h in g["hooks"] if " hook --cli claude" in h["command"]
            and "/bin/devstream " in h["command"]]


def test_a_symlinked_settings_file_stays_a_symlink(ds, tmp_path):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "claude-settings.json"
    target.write_text(json.dumps({"model": "opus"}))
    os.makedirs(os.path.dirname(settings(ds)), exist_ok=True)
    os.symlink(target, settings(ds))
    ds.cli("install", check=True)
    assert os.path.islink(settings(ds)) and os.readlink(settings(ds)) == str(target)
    data = json.loads(target.read_text())
    assert data["model"] == "opus" and ours(data)
    assert glob.glob(str(target) + ".devstream-backup-*")


def test_backups_are_timestamped_and_the_last_five_kept(ds):
    os.makedirs(os.path.dirname(settings(ds)), exist_ok=True)
    for i in range(7):
        with open(settings(ds), "w") as fh:
            json.dump({"model": f"m{i}"}, fh)
        ds.cli("install", check=True)
        time.sleep(1.05 if i in (0, 5) else 0)
    backups = sorted(glob.glob(settings(ds) + ".devstream-backup-*"))
    assert len(backups) == 5
    kept = [json.load(open(b))["model"] for b in backups]
    assert kept == ["m2", "m3", "m4", "m5", "m6"]


def test_users_own_hooks_that_mention_devstream_are_kept(ds):
    mine = [
        "echo 'devstream hook --cli claude' >> ~/hook.log",
        "/usr/local/bin/notify devstream hook --cli claude --loud",
        "devstream-wrapper.sh hook --cli claude",
    ]
    hand_edited = "/opt/python3.12/bin/python3 -I ~/.local/share/devstream/bin/devstream hook --cli claude"
    user = {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": c} for c in mine]}],
                      "SessionStart": [{"hooks": [{"type": "command", "command": hand_edited}]}]}}
    os.makedirs(os.path.dirname(settings(ds)), exist_ok=True)
    with open(settings(ds), "w") as fh:
        json.dump(user, fh)
    ds.cli("install", check=True)
    data = json.load(open(settings(ds)))
    commands = [h["command"] for groups in data["hooks"].values() for g in groups
                for h in g["hooks"]]
    for c in mine:
        assert commands.count(c) == 1, c
    assert hand_edited not in commands, "a hand-edited DevStream entry is replaced, not doubled"
    ds.cli("uninstall", check=True)
    data = json.load(open(settings(ds)))
    assert [h["command"] for g in data["hooks"]["Stop"] for h in g["hooks"]] == mine
    assert "SessionStart" not in data["hooks"]


def test_a_read_only_settings_file_is_refused(ds):
    os.makedirs(os.path.dirname(settings(ds)), exist_ok=True)
    with open(settings(ds), "w") as fh:
        json.dump({"model": "opus"}, fh)
    os.chmod(settings(ds), 0o444)
    proc = ds.cli("install")
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1
    assert "read-only" in proc.stderr and "Traceback" not in proc.stderr
    assert json.load(open(settings(ds))) == {"model": "opus"}
