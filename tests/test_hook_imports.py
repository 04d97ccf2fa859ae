"""The hook path's import discipline, as a test: each hook event runs in its own process through
the installed hook command (with -X importtime), and fails if it imported a module outside the
allow-list (interpreter start-up, builtins, apsw and devstream itself)."""
import json
import os
import subprocess
import sys

import pytest

# what the interpreter imports under -IS, what apsw needs, and the few builtin modules the
# hook path uses on purpose
ALLOWED = {
    "_io", "marshal", "posix", "_frozen_importlib_external", "time", "zipimport", "_codecs",
    "codecs", "encodings.aliases", "encodings", "encodings.utf_8", "_signal", "_abc", "abc", "io",
    "_stat", "stat", "genericpath", "posixpath", "os", "_json", "devstream",
    "apsw", "_operator", "mmap", "_blake2", "_socket", "_struct", "math", "_random",
    "_sha2", "_bisect", "_heapq", "errno", "fcntl", "select", "_posixsubprocess",
    "sqlite_vec", "_weakref", "_weakrefset", "_thread", "_functools", "_string", "gc",
}
# the expensive ones, named so a failure says what crept in (`collections` and
# `_collections_abc`: os and apsw are imported without them, see _import_os_alone and import_apsw)
FORBIDDEN = {"collections", "_collections_abc", "re", "json", "httpx", "structlog", "msgspec",
             "pybreaker", "socket", "http", "urllib", "tomllib", "typing", "enum", "numpy", "subprocess", "logging",
             "datetime", "difflib", "shlex", "pathlib", "tempfile", "threading"}

EVENTS = {
    "SessionStart": {"source": "startup"},
    "UserPromptSubmit": {"prompt": "why does the parser reject the config file?"},
    "PreToolUse": {"tool_name": "Edit", "tool_input": {"file_path": "src/app.py",
                                                       "old_string": "a", "new_string": "b"}},
    "PostToolUse:Edit": {"tool_name": "Edit", "tool_input": {"file_path": "src/app.py",
                                                             "old_string": "a", "new_string": "b"},
                         "tool_response": {}},
    "PostToolUse:Bash": {"tool_name": "Bash", "tool_input": {"command": "make test"},
                         "tool_response": {"stdout": "FAILED test_x", "stderr": "", "exit_code": 1}},
    "PostToolUseFailure": {"tool_name": "Bash", "tool_input": {"command": "make"},
                           "error": "make: *** [all] Error 2"},
    "Stop": {},
    "SubagentStop": {"last_assistant_message": "The subagent found the bug in the parser module."},
    "PreCompact": {"trigger": "auto"},
    "SessionEnd": {"reason": "other"},
}


def imported_modules(stderr):
    names = []
    for line in stderr.decode("utf-8", "replace").splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.append(name)
    return names


@pytest.mark.parametrize("mode", ["off", "background", "embedded"])
def test_each_hook_event_imports_only_the_allow_list(ds, mode):
    ds.env["DEVSTREAM_EMBED_MODE"] = "off" if mode == "off" else "background"
    if mode == "embedded":          # the embedded model serves: the prompt is embedded in the hook
        ds.env["DEVSTREAM_EMBED_MODEL"] = "builtin"
    ds.cli("memory", "add", "--type", "decision", "the parser rejects tabs in config files",
           check=True)
    if mode == "embedded":
        assert ds.cli_json("embed")["memories"] == 1
    argv = list(ds.hook_argv)
    argv.insert(1, "-X")
    argv.insert(2, "importtime")
    report = {}
    for name, fields in EVENTS.items():
        payload = dict(fields, hook_event_name=name.split(":")[0], session_id="imports",
                       cwd=ds.project_dir)
        proc = subprocess.run(argv, input=json.dumps(payload).encode(), capture_output=True,
                              env=ds.env, timeout=60)
        assert proc.returncode == 0
        mods = imported_modules(proc.stderr)
        assert "posixpath" in mods, "importtime saw nothing"
        # the launcher names their files: no search of sys.path for them (see import_compiled)
        assert "apsw" not in mods and "_json" not in mods, f"{name} searched for apsw or _json"
        # devstream itself comes from the hook image, not through the import system
        assert "devstream" not in mods, f"{name} loaded the whole module, not the hook image"
        extra = sorted({m for m in mods if m.split(".")[0] not in ALLOWED and m not in ALLOWED})
        if extra:
            report[name] = extra
    assert not report, f"hook events imported modules outside the allow-list: {report}"
    assert not FORBIDDEN & ALLOWED


def test_os_imported_without_the_collection_abcs_still_works(tmp_path):
    """devstream imported first thing, as the launcher does: os comes without _collections_abc,
    and os.environ, os.PathLike and a later real collections.abc all behave as usual."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = tmp_path / "probe.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {root!r})\n"
        "import devstream, os\n"
        "assert '_collections_abc' not in sys.modules\n"
        "env = os.environ\n"
        "env.update({'DS_A': '1'}, DS_B='2')\n"
        "assert env.get('DS_A') == '1' and 'DS_B' in env and env.get('DS_NONE') is None\n"
        "assert env.pop('DS_B') == '2' and env.pop('DS_B', 'gone') == 'gone'\n"
        "assert 'DS_B' not in env and dict(env)['DS_A'] == '1'\n"
        "assert ('DS_A', '1') in env.items() and 'DS_A' in env.keys() and '1' in env.values()\n"
        "assert env == dict(env) and env.copy() == dict(env)\n"
        "assert env.setdefault('DS_C', '3') == '3' and os.getenv('DS_C') == '3'\n"
        "import collections.abc, pathlib, subprocess\n"
        "assert collections.abc.Mapping is not dict and isinstance({}, collections.abc.Mapping)\n"
        "assert isinstance(pathlib.Path('x'), os.PathLike) and not isinstance('x', os.PathLike)\n"
        "out = subprocess.run([sys.executable, '-c', 'import os; print(os.environ[\"DS_A\"])'],\n"
        "                     capture_output=True, text=True).stdout\n"
        "assert out.strip() == '1', out\n"
        "print('ok')\n")
    proc = subprocess.run([sys.executable, "-IS", str(script)], capture_output=True, text=True,
                          timeout=60)
    assert proc.stdout.strip() == "ok", proc.stderr
