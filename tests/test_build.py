"""The shipped artefact: build.py is reproducible, the zipapp installs itself and answers hooks,
and install.sh (the README's install-and-verify command) works on a clean home."""
import hashlib
import json
import os
import shlex
import subprocess
import sys

import pytest

from conftest import ROOT, base_env


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def pyz(tmp_path_factory):
    """Two builds of this tree, each by an interpreter at another path (as ./install.sh builds in
    a fresh temporary venv every time), so nothing path-dependent can hide in the archive."""
    out = tmp_path_factory.mktemp("dist")
    first, second = str(out / "a" / "devstream.pyz"), str(out / "b" / "devstream.pyz")
    for n, (target, staging) in enumerate(((first, out / "s1"), (second, out / "s2"))):
        python = sys.executable
        if sys.prefix != sys.base_prefix:           # a venv: reach it through another path
            link = out / f"venv-{n}"
            os.symlink(sys.prefix, link)
            python = str(link / "bin" / os.path.basename(sys.executable))
        subprocess.run([python, os.path.join(ROOT, "build.py"), "-o", target,
                        "--staging", str(staging)], check=True, capture_output=True, timeout=600)
    return first, second


def test_build_is_reproducible_and_pruned(pyz):
    first, second = pyz
    assert sha(first) == sha(second)
    import zipfile
    names = zipfile.ZipFile(first).namelist()
    assert "site-packages/devstream.py" in names
    assert not any("devstream_hooks" in n for n in names)      # registrations live in code
    assert not any("/apsw/tests/" in n or "sqlite_extra_binaries" in n for n in names)
    main = zipfile.ZipFile(first).read("__main__.py").decode()
    assert "BUILD_ID" in main and "_bootstrap" in main


def test_zipapp_installs_itself_and_answers_hooks(pyz, tmp_path):
    env = base_env(str(tmp_path))
    python = shlex.split(open(pyz[0], "rb").readline()[2:].decode())[0]
    proc = subprocess.run([python, "-IS", pyz[0], "install"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    settings = json.load(open(os.path.join(env["HOME"], ".claude", "settings.json")))
    cmd = settings["hooks"]["SessionStart"][0]["hooks"][0]["command"]
    assert "/app/devstream.pyz_" not in cmd          # the launcher, not the archive
    launcher = shlex.split(cmd)[2]
    assert "site-packages" in open(launcher).read()
    run = subprocess.run(cmd, shell=True, env=env, capture_output=True, timeout=60,
                         input=json.dumps({"hook_event_name": "UserPromptSubmit", "session_id": "z",
                                           "cwd": str(tmp_path), "prompt": "from the zipapp"}).encode())
    assert run.returncode == 0 and run.stdout == b"" and b"Traceback" not in run.stderr
    doctor = subprocess.run(shlex.split(cmd)[:3] + ["doctor", "--json"], env=env,
                            capture_output=True, text=True, timeout=120)
    report = json.loads(doctor.stdout)
    assert doctor.returncode == 0, report
    assert {c["name"]: c["status"] for c in report["checks"]}["database"] == "PASS"


def test_reinstalling_reuses_the_build_and_removes_older_ones(pyz, tmp_path):
    env = base_env(str(tmp_path))
    python = shlex.split(open(pyz[0], "rb").readline()[2:].decode())[0]
    app = os.path.join(env["DEVSTREAM_HOME"], "app")
    first = subprocess.run([python, "-IS", pyz[0], "install"], env=env, capture_output=True,
                           text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    builds = [n for n in os.listdir(app) if not n.startswith(".")]
    assert len(builds) == 1 and builds[0].startswith("devstream.pyz_")
    current = os.path.join(app, builds[0])
    marker = os.path.join(current, "kept-by-reuse")
    open(marker, "w").close()
    # an older build left by an earlier version, with shiv's lock file
    old = os.path.join(app, "devstream.pyz_0123456789abcdef")
    os.makedirs(os.path.join(old, "site-packages"))
    open(os.path.join(app, ".devstream.pyz_0123456789abcdef_lock"), "w").close()
    # the second, byte-identical build installs onto the same extracted copy
    again = subprocess.run([python, "-IS", pyz[1], "install"], env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "launcher: " in again.stdout and "(unchanged)" in again.stdout
    assert "removed 1 older build: devstream.pyz_0123456789abcdef" in again.stdout
    assert sorted(n for n in os.listdir(app) if not n.startswith(".")) == builds
    assert not os.path.exists(old) and os.path.exists(marker)
    assert not os.path.exists(os.path.join(app, ".devstream.pyz_0123456789abcdef_lock"))


@pytest.mark.skipif(not os.environ.get("CI") and not os.environ.get("DEVSTREAM_TEST_INSTALL_SH"),
                    reason="runs pip in a fresh venv; on in CI")
def test_install_sh_on_a_clean_home(tmp_path):
    env = base_env(str(tmp_path))
    proc = subprocess.run(["sh", os.path.join(ROOT, "install.sh")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS  round trip" in proc.stdout and "FAIL" not in proc.stdout
    built = sha(os.path.join(ROOT, "dist", "devstream.pyz"))
    app = os.path.join(env["DEVSTREAM_HOME"], "app")
    extracted = sorted(n for n in os.listdir(app) if not n.startswith("."))
    again = subprocess.run(["sh", os.path.join(ROOT, "install.sh")], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and "already up to date" in again.stdout
    # install.sh builds byte for byte the same archive, and its extracted copy is reused
    assert sha(os.path.join(ROOT, "dist", "devstream.pyz")) == built
    assert sorted(n for n in os.listdir(app) if not n.startswith(".")) == extracted
    assert len(extracted) == 1
