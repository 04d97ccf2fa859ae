"""Qwen Code 0.24.4, the real binary, `qwen -p` against the scripted OpenAI chat completions
stand-in (SSE on /v1/chat/completions), with DevStream registered by
`devstream install --cli qwen`."""
import os

from .cli_helpers import TUNE, CliHome, check_two_sessions, play_two_sessions
from .conftest import agent_binary
from .stand_ins import ChatStandIn


def run_qwen(home, stand_in, prompt):
    return home.run([agent_binary("qwen"), "-p", prompt, "--yolo"],
                    env={"OPENAI_API_KEY": "stand-in-key", "OPENAI_BASE_URL": stand_in.url + "/v1",
                         "OPENAI_MODEL": stand_in.model, "QWEN_CODE_SUPPRESS_YOLO_WARNING": "1",
                         "QWEN_CODE_NO_RELAUNCH": "true"})       # one process, not two


def test_qwen_sessions_are_remembered(tmp_path, installed):
    home = CliHome(tmp_path, installed, "qwen")
    home.register()
    settings = os.path.join(home.home, ".qwen", "settings.json")
    summaries = []

    def run(home, stand_in, prompt):
        proc = run_qwen(home, stand_in, prompt)
        summaries.append(home.sessions()[-1])
        return proc

    with ChatStandIn(cwd=home.project) as stand_in:
        play_two_sessions(home, stand_in, run)
        second_requests = [r["body"] for r in stand_in.requests if stand_in.is_turn(r["path"])
                           and TUNE in str(r["body"]["messages"])]
    # -p mode never fires SessionEnd: the summary was written at the turn's Stop, at once
    (_, status, summary) = summaries[0]
    assert status == "active" and "ZQX7731" in summary
    assert home.handled_events() == home.registered_events(settings) - {"SessionEnd"}
    assert home.problems_logged() == []
    check_two_sessions(home, second_requests)
    # where the context landed: SessionStart's in the system message, the file's appended to
    # read_file's tool result (before the model decides the edit)
    messages = second_requests[-1]["messages"]
    assert "ZQX7731" in str(messages[0]["content"]) and messages[0]["role"] == "system"
    tool_texts = [str(m["content"]) for m in messages if m["role"] == "tool"]
    assert "DevStream memory about calibrate.py" in tool_texts[0]
