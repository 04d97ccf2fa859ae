#!/bin/sh
# DevStream one-line install:  ./install.sh [devstream install options, e.g. --scope project]
#
# Builds devstream.pyz for this machine's python3 (3.11 or newer), installs it under the data
# directory with a `devstream` command on PATH, registers the hooks with Claude Code, and ends
# with `devstream doctor`.  Safe to re-run.  Set PYTHON=/path/to/python3 to choose another.
set -eu

say() { printf 'devstream-install: %s\n' "$*"; }
die() { printf 'devstream-install: error: %s\n' "$*" >&2; exit 1; }

CALLER=$(pwd)           # `--scope project` means the project the user ran this from
cd "$(dirname "$0")"
HERE=$(pwd)
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null 2>&1 || die "$PY not found; install Python 3.11 or newer"
# A version manager's shim execs the real interpreter, so sys.executable is the real path; the
# hooks use that path directly (a shim costs ~90 ms on every hook).
REAL=$("$PY" -c 'import sys; print(sys.executable)')
"$REAL" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$REAL is Python $("$REAL" -c 'import sys; print(sys.version.split()[0])'); DevStream needs 3.11 or newer"
say "interpreter $REAL"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT INT TERM
say "building devstream.pyz"
"$REAL" -m venv "$WORK/venv" || die "python3 -m venv failed (on Debian/Ubuntu: apt install python3-venv)"
"$WORK/venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt \
    || die "could not install the build requirements (is the package index reachable?)"
"$WORK/venv/bin/python" build.py --python "$REAL" --staging "$WORK/site-packages" >"$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log" >&2; die "build failed"; }
tail -n 1 "$WORK/build.log"

say "installing"
cd "$CALLER"
"$REAL" -IS "$HERE/dist/devstream.pyz" install "$@"

say "checking"
"$REAL" -IS "$HERE/dist/devstream.pyz" doctor || die "doctor found a failure (see FAIL above)"
