#!/usr/bin/env python3
"""Build dist/devstream.pyz, a shiv zipapp, for the interpreter running this script.

    python3 build.py [--python /abs/python3] [-o dist/devstream.pyz]

The build is reproducible: pinned wheels (requirements.lock), fixed timestamps, sorted entries;
two builds of the same tree are byte-identical.  What the program never uses is pruned (apsw's
test suite and its bundle of extra SQLite binaries, caches, installer scripts).

shiv's own start-up (`_bootstrap`) costs ~30 ms on every run because it imports zipfile, runpy,
hashlib and friends even when nothing needs extracting.  The archive's __main__.py is therefore
replaced by a lean one: when this build is already extracted under <data dir>/app it puts that
directory on sys.path and calls devstream.main() directly; otherwise it hands over to shiv's
bootstrap, which extracts under a file lock and then runs the same entry point.
"""

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DATE_EPOCH = "1700000000"        # fixed timestamp for reproducible archives

PRUNE_DIRS = {
    os.path.join("apsw", "tests"),
    os.path.join("apsw", "sqlite_extra_binaries"),
    "bin",
}
PRUNE_SUFFIXES = (".pyi", ".pyc")

LEAN_MAIN = '''\
# DevStream zipapp entry point (written by build.py).  Fast path: this build is already extracted,
# so skip shiv's bootstrap and its imports; otherwise let shiv extract it, then run.
import os
import sys

BUILD_ID = "{build_id}"


def _data_dir():
    home = os.environ.get("DEVSTREAM_HOME")
    if home:
        return os.path.abspath(os.path.expanduser(home))
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "devstream")


def _run():
    archive = os.path.realpath(sys.argv[0])
    os.environ["DEVSTREAM_PYZ"] = archive
    root = os.path.join(_data_dir(), "app")
    site = os.path.join(root, os.path.basename(archive) + "_" + BUILD_ID, "site-packages")
    if os.path.isdir(site) and not os.environ.get("SHIV_FORCE_EXTRACT"):
        sys.path.insert(0, site)
        from devstream import run_and_exit
        run_and_exit()
    os.environ["SHIV_ROOT"] = root
    import _bootstrap
    _bootstrap.bootstrap()


_run()
'''


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def stage(staging):
    if os.path.exists(staging):
        shutil.rmtree(staging)
    os.makedirs(staging)
    run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-compile", "--no-deps", "--only-binary=:all:", "--target", staging,
         "-r", os.path.join(HERE, "requirements.lock")])
    shutil.copy2(os.path.join(HERE, "devstream.py"), os.path.join(staging, "devstream.py"))
    model_out = os.path.join(staging, "devstream_model")
    os.makedirs(model_out)
    for name in ("minilm-static.i8", "LICENSE", "NOTICE", "manifest.json"):
        src = os.path.join(HERE, "devstream_model", name)
        if os.path.exists(src):
            shutil.copy2(src, os.path.join(model_out, name))
    pruned = 0
    for rel in PRUNE_DIRS:
        path = os.path.join(staging, rel)
        if os.path.isdir(path):
            pruned += sum(len(f) for _, _, f in os.walk(path))
            shutil.rmtree(path)
    for dirpath, dirnames, filenames in os.walk(staging):
        for d in list(dirnames):
            if d == "__pycache__":
                shutil.rmtree(os.path.join(dirpath, d))
                dirnames.remove(d)
        for f in filenames:
            if f.endswith(PRUNE_SUFFIXES) or f in ("INSTALLER", "REQUESTED", "direct_url.json"):
                os.unlink(os.path.join(dirpath, f))
                pruned += 1
    records = prune_records(staging)
    print(f"staged {staging} (pruned {pruned} files, {records} RECORD entries)")


def prune_records(staging):
    """Drop RECORD lines of files that are not in the archive.  Console scripts went to bin/
    (pruned) with the build venv's interpreter in their shebang, a temporary path that differs on
    every ./install.sh run; their hashes in RECORD made two builds of one tree differ."""
    dropped = 0
    for dirpath, _dirs, filenames in os.walk(staging):
        if not dirpath.endswith(".dist-info") or "RECORD" not in filenames:
            continue
        path = os.path.join(dirpath, "RECORD")
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        kept = []
        for line in lines:
            name = line.rsplit(",", 2)[0]
            target = os.path.normpath(os.path.join(staging, name))
            if name.startswith("..") or not os.path.exists(target):
                dropped += 1
                continue
            kept.append(line)
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("\n".join(kept) + "\n")
    return dropped


def patch_main(pyz):
    """Replace shiv's __main__.py by the lean entry point, keeping everything else identical."""
    with open(pyz, "rb") as fh:
        data = fh.read()
    start = data.index(b"PK\x03\x04")
    shebang, body = data[:start], data[start:]
    src = zipfile.ZipFile(io.BytesIO(body))
    env = json.loads(src.read("environment.json"))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            payload = src.read(info)
            if info.filename == "__main__.py":
                payload = LEAN_MAIN.format(build_id=env["build_id"]).encode()
            new = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            new.external_attr = info.external_attr
            new.compress_type = info.compress_type
            dst.writestr(new, payload)
    with open(pyz, "wb") as fh:
        fh.write(shebang + out.getvalue())
    os.chmod(pyz, 0o755)
    return env["build_id"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    ap.add_argument("--python", default=base,
                    help="interpreter written into the shebang (default: this one, %(default)s)")
    ap.add_argument("-o", "--output", default=os.path.join(HERE, "dist", "devstream.pyz"))
    ap.add_argument("--staging", default=os.path.join(HERE, "build", "site-packages"))
    args = ap.parse_args()
    try:
        import shiv  # noqa: F401
    except ImportError:
        sys.exit("build.py needs shiv: pip install -r requirements-dev.txt")
    stage(args.staging)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    env = dict(os.environ, SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH)
    run([sys.executable, "-m", "shiv", "--site-packages", args.staging, "--reproducible",
         "--compressed", "-e", "devstream:main", "-p", f"{args.python} -IS",
         "-o", args.output], env=env)
    build_id = patch_main(args.output)
    digest = hashlib.sha256(open(args.output, "rb").read()).hexdigest()
    size = os.path.getsize(args.output)
    print(f"built {args.output}: {size / 1e6:.1f} MB, build {build_id[:12]}, sha256 {digest[:16]}")


if __name__ == "__main__":
    main()
