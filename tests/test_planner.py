"""`devstream plan`: a chat model through Ollama's /api/chat, and Markdown checklists."""
import json
import os

import pytest

from ollama_stub import OllamaStub, free_port


@pytest.fixture
def stub(ds):
    with OllamaStub(models={"embeddinggemma": 768, "llama3.2": None}) as s:
        ds.env.update(DEVSTREAM_OLLAMA_URL=s.url, DEVSTREAM_CHAT_MODEL="llama3.2")
        yield s


def task_count(ds):
    return ds.sql("SELECT count(*) FROM tasks")[0][0] if os.path.exists(ds.db) else 0


def test_plan_from_the_model(ds, stub):
    out = ds.cli_json("plan", "Add CSV export to the invoices page")
    req = stub.requests_to("/api/chat")[-1]["json"]
    assert req["stream"] is False and req["model"] == "llama3.2"
    assert req["format"]["required"] == ["steps"]
    assert "CSV export" in req["messages"][-1]["content"]
    tree = ds.cli_json("task", "tree", out["id"])[0]
    assert tree == out                      # plan prints the plan as `task tree` shows it
    assert tree["title"] == "Add CSV export to the invoices page"
    steps = tree["children"]
    assert [s["title"] for s in steps] == ["Outline the approach", "Implement the core change",
                                          "Test and document"]
    assert steps[1]["depends_on"] == [steps[0]["id"]] and steps[2]["depends_on"] == [steps[1]["id"]]
    assert steps[0]["estimate_minutes"] == 15 and steps[0]["priority"] == 1
    assert [t["id"] for t in ds.cli_json("task", "ready")] == [steps[0]["id"]]


def test_dry_run_writes_nothing(ds, stub):
    proc = ds.cli("plan", "Add CSV export", "--dry-run", check=True)
    assert "Implement the core change" in proc.stdout and "after 1" in proc.stdout
    assert task_count(ds) == 0


def step(title, deps, **kw):
    d = {"title": title, "description": "d", "estimate_minutes": 5, "priority": 2,
         "depends_on": deps}
    d.update(kw)
    return d


BAD = {
    "not JSON": ("Here is your plan: 1. do it 2. test it", "not valid JSON"),
    "schema broken": (json.dumps({"steps": [step("x", [], priority="high")]}),
                      "does not fit the schema: step 1's priority must be an integer, not text"),
    "field missing": (json.dumps({"steps": [{"title": "x", "priority": 1}]}),
                      "does not fit the schema: step 1 has no description"),
    "wrong shape": (json.dumps([{"title": "x"}]), "the plan must be an object, not a list"),
    "no steps": (json.dumps({"steps": []}), "the plan must have at least 1 step"),
    "too many steps": (json.dumps({"steps": [step(f"s{i}", []) for i in range(31)]}),
                       "the plan must have at most 30 steps"),
    "negative estimate": (json.dumps({"steps": [step("a", [], estimate_minutes=-5)]}),
                          "step 1's estimate_minutes must be at least 0"),
    "cyclic": (json.dumps({"steps": [step("a", [3]), step("b", [1]), step("c", [2])]}), "cycle"),
    "dangling": (json.dumps({"steps": [step("a", []), step("b", [7])]}), "does not exist"),
    "self": (json.dumps({"steps": [step("a", [1])]}), "itself"),
    "priority out of range": (json.dumps({"steps": [step("a", [], priority=9)]}),
                              "step 1's priority must be at most 4"),
    "blank title": (json.dumps({"steps": [step("  ", [])]}), "step 1 has an empty title"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_answers_are_refused_and_nothing_is_written(ds, stub, name):
    stub.chat_reply, expected = BAD[name]
    proc = ds.cli("plan", "Refactor the ledger")
    assert proc.returncode == 1, proc.stdout
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert task_count(ds) == 0


def test_every_bound_the_model_is_told_is_the_one_enforced(ds, stub):
    """The schema sent to the model and the validation of its answer come from one declaration:
    a plan that breaks any bound the sent schema states is refused, naming the field, and a plan
    sitting on every bound is accepted."""
    import devstream
    ds.cli_json("plan", "x", "--dry-run")
    schema = stub.requests_to("/api/chat")[-1]["json"]["format"]
    assert "$ref" not in json.dumps(schema)         # one self-contained object for the grammar
    steps = schema["properties"]["steps"]
    props = steps["items"]["properties"]
    assert sorted(steps["items"]["required"]) == sorted(props) == sorted(step("a", []))
    breaking, edge = [], {}
    for field, prop in props.items():
        target = prop["items"] if prop["type"] == "array" else prop
        wrap = (lambda v: [v]) if prop["type"] == "array" else (lambda v: v)
        for key, delta in (("minimum", -1), ("maximum", 1)):
            if key in target:
                breaking.append((field, {field: wrap(target[key] + delta)}))
        if "minLength" in prop:
            breaking.append((field, {field: "x" * (prop["minLength"] - 1)}))
        if "minimum" in target and field != "depends_on":
            edge[field] = target.get("maximum", target["minimum"])
    assert len(breaking) >= 5
    for field, change in breaking:
        with pytest.raises(devstream.UserError, match=f"step 1's {field} must"):
            devstream.validate_plan(json.dumps({"steps": [dict(step("a", []), **change)]}))
    most = [step(f"s{i}", [i] if i else [], **edge) for i in range(steps["maxItems"])]
    assert len(devstream.validate_plan(json.dumps({"steps": most}))) == steps["maxItems"]
    for n in (steps["minItems"] - 1, steps["maxItems"] + 1):
        with pytest.raises(devstream.UserError, match=f"the plan must have at"):
            devstream.validate_plan(json.dumps({"steps": [step("s", [])] * n}))


def test_no_chat_model_configured(ds, stub):
    del ds.env["DEVSTREAM_CHAT_MODEL"]
    proc = ds.cli("plan", "x")
    assert proc.returncode == 1 and "DEVSTREAM_CHAT_MODEL" in proc.stderr


def test_model_not_pulled(ds, stub):
    ds.env["DEVSTREAM_CHAT_MODEL"] = "qwen3:8b"
    proc = ds.cli("plan", "x")
    assert proc.returncode == 1 and "ollama pull qwen3:8b" in proc.stderr


def test_nothing_listening(ds, stub):
    ds.env["DEVSTREAM_OLLAMA_URL"] = f"http://127.0.0.1:{free_port()}"
    proc = ds.cli("plan", "x")
    assert proc.returncode == 1 and "no chat model reachable" in proc.stderr


def test_a_model_that_never_answers_hits_the_deadline(ds, stub):
    os.makedirs(ds.home, exist_ok=True)
    with open(os.path.join(ds.home, "config.toml"), "w") as fh:
        fh.write("chat_timeout_s = 1\n")
    stub.fault = "hang"
    proc = ds.cli("plan", "x")
    assert proc.returncode == 1 and "did not answer" in proc.stderr
    assert task_count(ds) == 0


CHECKLIST = """# Billing v2

Some intro text that is not a step.

- [x] Agree on integer cents
- [ ] Ledger table
  - [ ] Write the migration
  - [ ] Model and repository
- [ ] Public API
  1. Endpoint
  2. Docs
"""


def test_plan_from_markdown(ds, tmp_path):
    f = tmp_path / "plan.md"
    f.write_text(CHECKLIST)
    out = ds.cli_json("plan", "--from", str(f))
    tree = ds.cli_json("task", "tree", out["id"])[0]
    assert tree["title"] == "Billing v2"
    top = tree["children"]
    assert [t["title"] for t in top] == ["Agree on integer cents", "Ledger table", "Public API"]
    assert top[0]["status"] == "done"
    assert top[1]["depends_on"] == [top[0]["id"]] and top[2]["depends_on"] == [top[1]["id"]]
    ledger = top[1]["children"]
    assert [t["title"] for t in ledger] == ["Write the migration", "Model and repository"]
    assert ledger[0]["depends_on"] == [] and ledger[1]["depends_on"] == [ledger[0]["id"]]
    assert [t["title"] for t in top[2]["children"]] == ["Endpoint", "Docs"]
    ready = [t["title"] for t in ds.cli_json("task", "ready")]
    assert ready == ["Write the migration"]      # the API steps wait with their parent


def test_markdown_without_items(ds, tmp_path):
    f = tmp_path / "empty.md"
    f.write_text("# Nothing here\n\nJust prose.\n")
    proc = ds.cli("plan", "--from", str(f))
    assert proc.returncode == 1 and "no list items" in proc.stderr


def test_a_streamed_answer_is_understood(stub):
    """Ollama streams newline-delimited chunks when `stream` is left out; DevStream asks for
    one object, but reads the chunks too if a server streams anyway."""
    import urllib.request
    import devstream
    stub.chat_reply = json.dumps({"steps": [step("only step", [])]})
    req = urllib.request.Request(stub.url + "/api/chat", data=json.dumps(
        {"model": "llama3.2", "messages": [{"role": "user", "content": "plan"}]}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read().decode()
    assert len([l for l in body.splitlines() if l.strip()]) > 1      # really streamed
    assert devstream.chat_content(body) == stub.chat_reply
    assert devstream.validate_plan(devstream.chat_content(body))[0]["title"] == "only step"
