"""The hook image: `devstream install` compiles what the hook path reaches into an image beside
the launcher, and a hook loads that instead of the whole module.  A stale or damaged image is
never trusted: the hook then imports devstream.py as usual and still does its job, and doctor
says how to rebuild it."""
import json
import os
import shlex
import shutil
import subprocess
import sys

from conftest import ROOT, base_env

PROMPT = "why does the ledger export drop the currency column?"


def install_copy(tmp_path):
    """devstream.py copied into a folder of its own and installed from there."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(os.path.join(ROOT, "devstream.py"), src / "devstream.py")
    env = base_env(str(tmp_path))
    subprocess.run([sys.executable, str(src / "devstream.py"), "install"], env=env, check=True,
                   capture_output=True)
    with open(os.path.join(env["HOME"], ".claude", "settings.json")) as fh:
        cmd = json.load(fh)["hooks"]["SessionStart"][0]["hooks"][0]["command"]
    project = tmp_path / "project"
    project.mkdir()
    return src / "devstream.py", shlex.split(cmd), env, str(project)


def run_prompt(argv, env, project, prompt):
    """A UserPromptSubmit through the hook command; the names of the modules it imported."""
    argv = [argv[0], "-X", "importtime"] + argv[1:]
    payload = {"hook_event_name": "UserPromptSubmit", "prompt": prompt, "session_id": "img",
               "cwd": project}
    proc = subprocess.run(argv, input=json.dumps(payload).encode(), capture_output=True,
                          env=env, timeout=60)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr
    mods = {line.rsplit(b"|", 1)[1].strip().decode() for line in proc.stderr.splitlines()
            if line.startswith(b"import time:") and b"|" in line}
    assert "posixpath" in mods, "importtime saw nothing"
    return mods


def prompts_stored(argv, env, project):
    cli = argv[:-3]
    out = subprocess.run(cli + ["memory", "list", "--type", "prompt", "--json"], env=env,
                         capture_output=True, text=True, cwd=project, check=True).stdout
    return [m["content"] for m in json.loads(out)]


def doctor_launcher(argv, env, project):
    out = subprocess.run(argv[:-3] + ["doctor", "--json"], env=env, capture_output=True,
                         text=True, cwd=project).stdout
    return {c["name"]: c for c in json.loads(out)["checks"]}["launcher"]


def test_a_hook_runs_from_the_image_and_a_stale_one_is_not_trusted(tmp_path):
    source, argv, env, project = install_copy(tmp_path)
    image = os.path.join(env["DEVSTREAM_HOME"], "bin", "devstream.hook-image")
    assert os.path.exists(image)
    assert "devstream" not in run_prompt(argv, env, project, PROMPT + " (1)")
    assert doctor_launcher(argv, env, project)["status"] == "PASS"

    # the source changes after install (an upgrade in place, an edit): the image is stale
    with open(source, "a", encoding="utf-8") as fh:
        fh.write("\n# changed after install\n")
    assert "devstream" in run_prompt(argv, env, project, PROMPT + " (2)")
    check = doctor_launcher(argv, env, project)
    assert check["status"] == "WARN" and "out of date" in check["detail"]
    assert "devstream install" in check["fix"]

    # a damaged image is not trusted either
    subprocess.run([sys.executable, str(source), "install"], env=env, check=True,
                   capture_output=True)
    assert "devstream" not in run_prompt(argv, env, project, PROMPT + " (3)")
    with open(image, "r+b") as fh:
        fh.seek(40)
        fh.write(b"\xff" * 64)
    assert "devstream" in run_prompt(argv, env, project, PROMPT + " (4)")
    # nor one cut short (the events' parts are at its end)
    subprocess.run([sys.executable, str(source), "install"], env=env, check=True,
                   capture_output=True)
    with open(image, "r+b") as fh:
        fh.truncate(os.path.getsize(image) - 100)
    assert "devstream" in run_prompt(argv, env, project, PROMPT + " (6)")
    assert doctor_launcher(argv, env, project)["status"] == "WARN"

    stored = prompts_stored(argv, env, project)
    assert sorted(p.split("(")[-1] for p in stored) == ["1)", "2)", "3)", "4)", "6)"]

    # the redactor's rules are a part of their own, loaded when text needs them
    subprocess.run([sys.executable, str(source), "install"], env=env, check=True,
                   capture_output=True)
    token = "ghp_" + "Zq8vK3" * 6
    assert "devstream" not in run_prompt(argv, env, project, f"deploy with {token} (5)")
    fifth = [p for p in prompts_stored(argv, env, project) if p.endswith("(5)")]
    assert fifth == ["deploy with [REDACTED:github_token] (5)"]


def test_the_image_leaves_out_what_no_hook_reaches_and_each_event_loads_its_own_part():
    sys.path.insert(0, ROOT)
    import marshal

    import devstream
    blob = devstream.hook_image(os.path.join(ROOT, "devstream.py"))
    code = marshal.loads(blob[32:])

    def defined(c):
        return {k.co_name for k in c.co_consts if hasattr(k, "co_code")}

    core = defined(code)
    assert {"hook_main", "run_hook", "hook_handler", "Hook", "Config", "redact", "Store",
            "ClaudeAdapter", "CodexAdapter"} <= core
    assert not {"main", "cmd_install", "Doctor", "cmd_plan", "export_records",
                "import_transcript", "recover_database", "help_text"} & core
    # a handler and what only it reaches are in the part of its event, not in every hook
    assert not {"on_user_prompt", "search", "on_stop", "on_session_end"} & core
    # a lazy function is a stand-in in the core, its code and what only it reaches a part
    assert {"_apply_rules", "hook_image_function"} <= core
    assert not {"_replacement", "_load_compiled", "_generic"} & core
    module = {"__name__": "devstream_image", "__file__": os.path.join(ROOT, "devstream.py")}
    exec(code, module)
    assert module["HANDLERS"] == {}
    parts = {e: marshal.loads(blob[a:b]) for e, (a, b) in module["HOOK_IMAGE_PARTS"].items()}
    assert set(parts) == set(devstream.HANDLERS) | {f"def {f}" for f in devstream.HOOK_IMAGE_LAZY}
    assert {"_apply_rules", "_replacement", "_load_compiled"} <= defined(parts["def _apply_rules"])
    assert sorted(module["HOOK_IMAGE_PARTS"].values())[-1][1] == len(blob)
    prompt = defined(parts["UserPromptSubmit"])
    assert {"on_user_prompt", "search", "prompt_context"} <= prompt and "on_stop" not in prompt
    assert "search" not in defined(parts["Stop"])
    whole = len(marshal.dumps(compile(open(os.path.join(ROOT, "devstream.py")).read(),
                                      "devstream.py", "exec")))
    every_hook = len(marshal.dumps(code))
    assert every_hook < 0.5 * whole
    assert every_hook + len(marshal.dumps(parts["UserPromptSubmit"])) < 0.7 * whole
    module["HOOK_IMAGE_BYTES"] = blob                   # as the launcher hands it over
    handler = module["hook_handler"]("UserPromptSubmit")
    assert handler.__name__ == "on_user_prompt" and handler.__code__.co_filename.endswith(
        "devstream.py")
    assert module["hook_handler"]("NoSuchEvent") is None
    stand_in = module["_apply_rules"]
    assert module["redact"]("key ghp_" + "Zq8vK3" * 6) == "key [REDACTED:github_token]"
    assert module["_apply_rules"] is not stand_in and "def _apply_rules" not in \
        module["HOOK_IMAGE_PARTS"]
    # the tables and word sets that devstream builds at import come built in the image
    for key in list(module["HOOK_IMAGE_PARTS"]):
        module["load_image_part"](key)
    for name in devstream.HOOK_IMAGE_CONSTANTS:
        assert module[name] == getattr(devstream, name), name
    stored = [c for unit in [code] + list(parts.values()) for c in unit.co_consts]
    assert devstream._ALL_HINTS in stored and devstream.STOPWORDS in stored
