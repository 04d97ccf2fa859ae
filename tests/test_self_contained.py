"""A plain clone carries everything its tests and benchmarks read.

The fixtures live in tests/fixtures/ (each listed with its source and license in SOURCES.md);
nothing in tests/, bench/ or .ci/ may reach for a folder beside the repository.
"""
import os
import re

from conftest import FIXTURES, ROOT

# Assembled from pieces so that this file does not match itself.
SIBLING = "sha" + "red"
OUTSIDE_REFERENCE = re.compile(
    r"\.\./" + SIBLING + r"\b"                          # the sibling folder, relative
    r"|[\"']" + SIBLING + r"[\"']"                      # ... as a quoted path component
    r"|/" + SIBLING + r"/(?:fixtures|research|SPEC)"    # ... inside a longer path
    r"|dirname\(ROOT\)|dirname\(os\.path\.dirname\(ROOT")  # a step out of the repository
SCANNED = ("tests", "bench", ".ci")
SKIPPED = {os.path.join(ROOT, "tests", "fixtures"), os.path.join(ROOT, "tests", "e2e", "node_modules")}


def scanned_files():
    for top in SCANNED:
        for folder, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [d for d in dirs if os.path.join(folder, d) not in SKIPPED
                       and d not in ("__pycache__", ".pytest_cache")]
            for name in files:
                if name.endswith((".py", ".sh", ".toml", ".cfg", ".ini", ".txt", ".md")) \
                        or "." not in name:
                    yield os.path.join(folder, name)


def test_nothing_reads_a_folder_beside_the_repository():
    offenders = []
    for path in scanned_files():
        with open(path, encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                if OUTSIDE_REFERENCE.search(line):
                    offenders.append(f"{os.path.relpath(path, ROOT)}:{n}: {line.strip()}")
    assert not offenders, "tests must read fixtures from tests/fixtures:\n" + "\n".join(offenders)


def test_the_scan_would_catch_the_old_path():
    old = 'FIXTURES = os.path.join(os.path.dirname(' + 'ROOT), "' + SIBLING + '", "fixtures")'
    assert OUTSIDE_REFERENCE.search(old)
    assert OUTSIDE_REFERENCE.search("open('../" + SIBLING + "/fixtures/x.json')")
    assert not OUTSIDE_REFERENCE.search("aws shared-credentials-file; a shared schema")


def test_fixtures_are_inside_the_repository_and_each_has_its_source():
    assert os.path.realpath(FIXTURES).startswith(os.path.realpath(ROOT) + os.sep)
    with open(os.path.join(FIXTURES, "SOURCES.md"), encoding="utf-8") as fh:
        sources = fh.read()
    files = []
    for folder, _dirs, names in os.walk(FIXTURES):
        files += [os.path.relpath(os.path.join(folder, n), FIXTURES) for n in names]
    third_party = [f for f in files if f.startswith(("transcripts" + os.sep, "hook-payloads" + os.sep))]
    live = [f for f in files if f.startswith("live" + os.sep)]
    assert len(third_party) >= 90 and len(live) >= 80
    missing = [f for f in third_party if f"`{f.replace(os.sep, '/')}`" not in sources]
    assert not missing, f"not listed in SOURCES.md: {missing}"
    for version_dir in {f.split(os.sep)[1] for f in live}:
        assert f"live/{version_dir}/" in sources, version_dir
    # every listed row names a commit and a license
    for row in (r for r in sources.splitlines() if r.startswith("| `transcripts/")
                or r.startswith("| `hook-payloads/")):
        assert re.search(r"`[0-9a-f]{40}`", row) and re.search(r"\b(MIT|Apache-2\.0)\b", row), row
