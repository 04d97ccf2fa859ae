"""What the Gemini CLI, Codex CLI and Qwen Code end-to-end tests share: a scratch HOME with
DevStream registered by `devstream install --cli NAME`, one agent run, and the checks every
CLI must pass (see test_gemini.py, test_codex.py, test_qwen.py).

The two sessions each test plays (tests/e2e/stand_ins.py): "fix" runs a shell command that fails
with ZQX7731 and creates calibrate.py; "tune", a new session, reads calibrate.py and changes one
line.  A fifth CLI needs a stand-in for its API (if it is a new one), a test file that starts its
binary, and nothing else from here.
"""
import json
import os
import subprocess
import time

from .conftest import RUN_TIMEOUT_S, AgentHome, git_init

FIX = ("[[scenario:fix]] Calibrate the flux capacitor: run the calibration check, then write "
       "calibrate.py")
TUNE = "[[scenario:tune]] Lower the flux limit in calibrate.py"
FAILURE_TEXT = "ZQX7731 flux capacitor overheated at 88 mph"


class CliHome(AgentHome):
    """A scratch HOME and project with DevStream registered for one CLI."""

    def __init__(self, tmp, installed, cli, env=None):
        super().__init__(tmp, installed)
        self.cli = cli
        self.env.update(env or {})
        self.env["DEVSTREAM_LOG_LEVEL"] = "debug"       # every handled event is logged
        git_init(self.project)
        self.install = None

    def register(self, *install_args):
        """`devstream install --cli NAME ...` in this HOME; returns its output."""
        self.install = self.devstream("install", "--cli", self.cli, *install_args)
        return self.install.stdout

    def settings(self, path):
        with open(path) as fh:
            return json.load(fh)

    def registered_events(self, path):
        """The events DevStream registered in the CLI's settings file at `path`."""
        return {event for event, groups in self.settings(path)["hooks"].items()
                for g in groups for h in g["hooks"] if " hook --cli " in h["command"]}

    def handled_events(self):
        """Event names (as the CLI sent them) that DevStream's hook ran to the end for."""
        return {r.get("hook_event") for r in self.log_records() if r.get("event") == "hook.done"}

    def problems_logged(self):
        return [r for r in self.log_records() if r.get("level") in ("warning", "error")]

    def run(self, argv, env=None, timeout=RUN_TIMEOUT_S):
        started = time.monotonic()
        proc = subprocess.run(argv, cwd=self.project, env=dict(self.env, **(env or {})),
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        proc.wall_s = time.monotonic() - started
        assert proc.returncode == 0, (f"{os.path.basename(argv[0])} exited {proc.returncode}\n"
                                      f"stderr: {proc.stderr[-3000:]}\nstdout: "
                                      f"{proc.stdout[-2000:]}")
        return proc

    def memories(self, mtype, session_id=None):
        q = "SELECT content, path, session_id FROM memories WHERE type=?"
        args = [mtype]
        if session_id:
            q += " AND session_id=?"
            args.append(session_id)
        return self.sql(q + " ORDER BY rowid", args)

    def sessions(self):
        """(id, status, summary text or None) in the order they started."""
        return self.sql("SELECT s.id, s.status, m.content FROM sessions s LEFT JOIN memories m "
                        "ON m.id = s.summary_id ORDER BY s.started_at, s.rowid")


def play_two_sessions(home, stand_in, run):
    """Run "fix" then "tune" as two sessions with run(home, stand_in, prompt); returns both
    runs and the model requests of the second, after checking the CLI raised no hook warning."""
    first = run(home, stand_in, FIX)
    n = len(stand_in.requests)
    second = run(home, stand_in, TUNE)
    for proc in (first, second):
        assert hook_warnings(proc.stderr) == [], proc.stderr
    return first, second, [r["body"] for r in stand_in.requests[n:] if stand_in.is_turn(r["path"])]


def hook_warnings(stderr):
    """Lines in which the CLI complains about a hook (invalid entries, failures, timeouts);
    Codex's progress lines `hook: EVENT` and `hook: EVENT Completed` are not complaints."""
    out = []
    for line in stderr.splitlines():
        words = line.split()
        progress = len(words) in (2, 3) and words[0] == "hook:" and words[1].isalpha() and \
            words[2:] in ([], ["Completed"])
        if "hook" in line.lower() and not progress:
            out.append(line)
    return out


def check_two_sessions(home, requests_of_second, first_prompt=FIX, second_prompt=TUNE,
                       exit_text=("exit 3", "Exit code 3")):
    """What every CLI must show after playing "fix" then "tune": the prompts as typed, the
    failure as an error with its output, the edits with their paths, the first session closed
    and summarised, and the second session's model requests holding what the first earned."""
    (s1, status1, summary1), (s2, _, summary2) = home.sessions()
    # a prompt memory is the prompt as typed, then (from the turn's Stop) "\n\nOutcome: ANSWER"
    asked = [c.split("\n\nOutcome: ", 1)[0] for c, _, _ in home.memories("prompt")]
    assert asked == [first_prompt, second_prompt]
    (error, _, sid), = home.memories("error")
    assert sid == s1 and FAILURE_TEXT in error and any(t in error for t in exit_text), error
    assert "exit 0" not in error
    edits = home.memories("edit")
    assert [(p, s) for _, p, s in edits] == [("calibrate.py", s1), ("calibrate.py", s2)], edits
    assert "1.21" in edits[0][0] and "1.10" in edits[1][0]
    assert status1 == "ended" and summary1, home.sessions()
    assert "Calibrate the flux capacitor" in summary1 and "ZQX7731" in summary1
    assert summary2 and "Lower the flux limit" in summary2
    seen = "\n".join(json.dumps(b) for b in requests_of_second)
    assert summary1.split("\n", 1)[0] in seen           # the last session's summary
    assert "DevStream memory about calibrate.py" in seen   # file context, before the edit
    assert "<hook_context>" not in "".join(c for c, _, _ in home.memories("prompt"))
    return s1, s2
