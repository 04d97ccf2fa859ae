"""Recall on unseen queries: exact identifiers win over filler words, an earlier copy of a prompt
is never its own answer, and the embedded static model gives every install vector search
(real hook processes, a real database, no Ollama anywhere)."""
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import devstream  # noqa: E402

DECISION = "parse_hook_payload now rejects JSON arrays with a clear log line"
HAS_MODEL = os.path.exists(devstream.static_model_path())
needs_model = pytest.mark.skipif(not HAS_MODEL, reason="the embedded model file is not built")


def prompt(ds, text, session="s-new"):
    proc = ds.hook({"hook_event_name": "UserPromptSubmit", "prompt": text, "session_id": session})
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    out = json.loads(proc.stdout) if proc.stdout.strip() else None
    return out["hookSpecificOutput"]["additionalContext"] if out else ""


def no_ollama(ds):
    # a port nothing listens on: Ollama is "not installed"; embedding on, as installed
    ds.env["DEVSTREAM_OLLAMA_URL"] = "http://127.0.0.1:9"
    ds.env["DEVSTREAM_EMBED_MODE"] = "background"


@pytest.mark.parametrize("embedded", [False, pytest.param(True, marks=needs_model)])
@pytest.mark.parametrize("question", ["where is parse_hook_payload handled?",
                                      "tell me about parse_hook_payload and its arrays"])
def test_identifier_question_injects_the_decision(ds, question, embedded):
    no_ollama(ds)
    mid = ds.cli("memory", "add", "--type", "decision", DECISION, check=True).stdout.strip()
    ds.cli("memory", "add", "--type", "note", "the hook log rotates daily", check=True)
    if embedded:
        assert ds.cli_json("embed")["memories"] == 2
    ctx = prompt(ds, question)
    assert mid in ctx and "rejects JSON arrays" in ctx


def test_unrelated_prompt_injects_nothing(ds):
    no_ollama(ds)
    ds.cli("memory", "add", "--type", "decision", DECISION, check=True)
    if HAS_MODEL:
        ds.cli("embed", check=True)
    assert prompt(ds, "what is the best way to bake sourdough bread at home?") == ""


def test_earlier_identical_prompt_is_never_its_own_answer(ds):
    no_ollama(ds)
    question = "how do we retry failed stripe webhooks?"
    assert prompt(ds, question, session="s-1") == ""
    edit = {"hook_event_name": "PostToolUse", "session_id": "s-1", "tool_name": "Edit",
            "cwd": ds.project_dir,
            "tool_input": {"file_path": os.path.join(ds.project_dir, "src/webhooks.py"),
                           "old_string": "retries = 0", "new_string": "retries = 5  # stripe"},
            "tool_response": {"filePath": os.path.join(ds.project_dir, "src/webhooks.py")}}
    assert ds.hook(edit).returncode == 0
    if HAS_MODEL:
        ds.cli("embed", check=True)
    prompt_id = ds.sql("SELECT id FROM memories WHERE type='prompt'")[0][0]
    edit_id = ds.sql("SELECT id FROM memories WHERE type='edit'")[0][0]
    ctx = prompt(ds, question, session="s-2")
    assert prompt_id not in ctx and question not in ctx
    assert edit_id in ctx, "what came of the question is the answer"


@needs_model
def test_fresh_install_without_ollama_has_vector_search(ds):
    no_ollama(ds)
    ds.cli("memory", "add", "--type", "decision",
           "Money is stored as integer cents; Decimal only at the API boundary", check=True)
    out = ds.cli_json("embed")
    assert out["memories"] == 1 and out["problems"] == []
    assert ds.sql("SELECT model FROM embed_spaces") == [(devstream.BUILTIN_MODEL,)]
    # a paraphrase that shares no word with the memory
    hits = ds.cli_json("memory", "search", "how are currency amounts represented")
    assert hits and hits[0]["vector"] > 0
    doctor = ds.cli("doctor").stdout
    assert devstream.BUILTIN_MODEL in doctor and "local" in doctor


@needs_model
def test_an_ollama_without_the_model_hands_over_to_the_embedded_model(ds):
    """Ollama answers, but the configured model is not pulled (HTTP 404): the embedded model
    serves, as when no Ollama runs at all."""
    from ollama_stub import OllamaStub
    with OllamaStub(models={"all-minilm": 384}) as stub:
        ds.env.update(DEVSTREAM_OLLAMA_URL=stub.url, DEVSTREAM_EMBED_MODE="background")
        ds.cli("memory", "add", "--type", "decision", "Money is stored as integer cents",
               check=True)
        out = ds.cli_json("embed")
        assert stub.requests_to("/api/embed"), "Ollama was not asked"
    assert out["memories"] == 1 and out["problems"] == [], out
    assert ds.sql("SELECT model FROM embed_spaces") == [(devstream.BUILTIN_MODEL,)]


def test_transcript_set_labels_resolve_to_imported_memories(tmp_path, monkeypatch):
    """Every label of the held-out set names at least one memory that importing the real
    transcripts produces (labels are content, so they must survive changes to the import)."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import recall
    monkeypatch.setenv("DEVSTREAM_HOME", str(tmp_path))
    monkeypatch.setenv("DEVSTREAM_EMBED_MODE", "off")
    store = devstream.open_store(devstream.Config())
    try:
        n, queries = recall.load_transcripts(devstream, store)
    finally:
        store.close()
    labelled = [q for q in queries if q["relevant"]]
    assert n > 300 and len(labelled) >= 60
    assert all(q["relevant"] for q in labelled)


@needs_model
def test_the_static_model_sums_its_rows_exactly():
    """The embedded model's vector of a text is the normalised sum of its tokens' rows, each
    weighted by the row's scale and the token's count.  The reader sums in integers (see
    StaticModel.embed); here the same sum is done the plain way, in floats."""
    check_sums(devstream.StaticModel())
    # and with negative weights, which the shipped file has none of
    flipped = devstream.StaticModel()
    scale = flipped.scale
    flipped.scale = lambda i: -scale(i) if i % 3 else scale(i)
    check_sums(flipped)


def check_sums(model):
    texts = ["why does the invoice total retry fail in ledger.py? (7)", "x", "",
             "Ünïcödé naïve café — 東京 ½ ① \u200b", "parse_hook_payload " * 300,
             " ".join(f"word{i} src/mod_{i}.py" for i in range(200))]
    for text in texts:
        counts = {}
        for i in model.token_ids(text):
            counts[i] = counts.get(i, 0) + 1
        acc = [0.0] * model.dim
        for i, c in counts.items():
            w = model.scale(i) * c
            for d, v in enumerate(memoryview(model.row(i)).cast("b")):
                acc[d] += w * v
        norm = sum(a * a for a in acc) ** 0.5
        expected = [a / norm for a in acc]
        got = model.embed(text)
        assert len(got) == model.dim
        assert max(abs(a - b) for a, b in zip(got, expected)) < 1e-9, text[:40]
        assert sum(a * b for a, b in zip(got, expected)) > 1 - 1e-12
