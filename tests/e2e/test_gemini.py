"""Gemini CLI 0.61.0, the real binary, `gemini -p` against the scripted Gemini API stand-in
(streamGenerateContent SSE), with DevStream registered by `devstream install --cli gemini`."""
import json
import os

import pytest

from .cli_helpers import TUNE, CliHome, check_two_sessions, play_two_sessions
from .conftest import agent_binary
from .stand_ins import GeminiStandIn


@pytest.fixture
def gemini_home(tmp_path, installed):
    home = CliHome(tmp_path, installed, "gemini")
    home.register()
    settings = os.path.join(home.home, ".gemini", "settings.json")
    data = home.settings(settings)
    # an API key alone selects a gateway auth that -p refuses; the user picks the key auth once
    data["security"] = {"auth": {"selectedType": "gemini-api-key"}}
    with open(settings, "w") as fh:
        json.dump(data, fh)
    with open(os.path.join(home.home, ".gemini", "trustedFolders.json"), "w") as fh:
        json.dump({home.project: "TRUST_FOLDER"}, fh)      # hooks run only in trusted folders
    home.settings_path = settings
    return home


def run_gemini(home, stand_in, prompt):
    return home.run([agent_binary("gemini"), "-p", prompt, "--yolo", "-m", stand_in.model],
                    env={"GEMINI_API_KEY": "stand-in-key", "GOOGLE_GEMINI_BASE_URL": stand_in.url,
                         "GEMINI_CLI_NO_RELAUNCH": "true"})     # one process, not two


def test_gemini_sessions_are_remembered(gemini_home):
    home = gemini_home
    assert "trusted folders" in home.install.stdout
    with GeminiStandIn(cwd=home.project) as stand_in:
        first, second, second_requests = play_two_sessions(home, stand_in, run_gemini)
    assert "ZQX7731" in first.stdout and "1.10" in second.stdout
    assert home.handled_events() == home.registered_events(home.settings_path)
    assert home.problems_logged() == []
    check_two_sessions(home, second_requests)
    doctor = home.devstream_json("doctor", check=False)
    assert [c["status"] for c in doctor["checks"] if c["name"] == "gemini folder"] == ["PASS"]
    # where the context landed: SessionStart's before the prompt in the user turn, the file's
    # appended to read_file's result (the request that decides the edit)
    edit_request = next(b for b in second_requests
                        if any("functionResponse" in p and p["functionResponse"]["name"] ==
                               "read_file" for c in b["contents"] for p in c["parts"]))
    (read,) = [p["functionResponse"]["response"]["output"] for c in edit_request["contents"]
               for p in c["parts"] if p.get("functionResponse", {}).get("name") == "read_file"]
    assert "DevStream memory about calibrate.py" in read and "Created calibrate.py" in read
    user_turn = next(p["text"] for c in second_requests[0]["contents"] if c["role"] == "user"
                     for p in c["parts"] if TUNE in p.get("text", ""))
    assert user_turn.index("ZQX7731") < user_turn.index(TUNE)
