"""Keyword search and what the hooks inject (no embeddings here: FTS only)."""
import glob
import json
import os

import pytest

from conftest import assert_silent_success

NOTES = [
    ("decision", "Decided to store money as integer cents in the ledger table; Decimal only "
                 "at the API boundary"),
    ("error", "$ pytest tests/test_invoice.py -x\ntests failed\nFAILED tests/test_invoice.py::"
              "test_rounding - AssertionError: 10.01 != 10.0"),
    ("learning", "The webhook consumer must be idempotent: Stripe retries deliveries for 3 days"),
    ("note", "getUserById returns None for soft-deleted users; callers must check"),
    ("edit", "Edited src/queue/retry.py: exponential backoff capped at max_backoff=300"),
]


@pytest.fixture
def seeded(ds):
    ids = {}
    for t, text in NOTES:
        ids[t] = ds.cli("memory", "add", "--type", t, text, check=True).stdout.strip()
    return ids


def prompt(ds, text, session="s-new"):
    proc = ds.hook({"hook_event_name": "UserPromptSubmit", "prompt": text, "session_id": session})
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def test_search_finds_by_identifier_words_and_stems(ds, seeded):
    hits = ds.cli_json("memory", "search", "getUserById")
    assert hits[0]["id"] == seeded["note"]
    hits = ds.cli_json("memory", "search", "why did the invoice rounding test fail")
    assert hits[0]["id"] == seeded["error"]
    hits = ds.cli_json("memory", "search", "retrying webhooks")
    assert hits[0]["id"] == seeded["learning"]
    assert {"score", "id", "type", "content"} <= set(hits[0])


@pytest.mark.parametrize("query", ['getUserById(42)', 'foo-bar', 'src/a.py', 'NOT', 'what is this?',
                                   'unbalanced " quote', 'col:umn', 'a AND OR NEAR(', '*', '^x'])
def test_user_text_never_breaks_the_query(ds, seeded, query):
    proc = ds.cli("memory", "search", query, "--json")
    assert proc.returncode == 0, proc.stderr
    json.loads(proc.stdout)


def test_prompt_injects_relevant_memories_once(ds, seeded):
    out = prompt(ds, "the invoice rounding test is failing again, 10.01 vs 10.0")
    hso = out["hookSpecificOutput"]
    assert set(out) == {"hookSpecificOutput"}
    assert hso["hookEventName"] == "UserPromptSubmit"
    assert seeded["error"] in hso["additionalContext"]
    assert "devstream memory show" in hso["additionalContext"]
    # same session, same topic: nothing new to say, so nothing is injected
    assert prompt(ds, "invoice rounding test failing: 10.01 != 10.0 again") is None
    # a new session hears about it again
    assert seeded["error"] in prompt(ds, "invoice rounding test failure", session="s-other")[
        "hookSpecificOutput"]["additionalContext"]


def test_nothing_injected_when_nothing_is_relevant(ds, seeded):
    for text in ("how do I configure kubernetes ingress annotations",
                 "write a haiku about autumn leaves", "thanks!", "ok do it"):
        assert prompt(ds, text) is None, text


def test_pre_tool_use_tells_what_is_known_about_the_file(ds):
    f = os.path.join(ds.project_dir, "src", "queue", "retry.py")
    ds.hook({"hook_event_name": "PostToolUseFailure", "tool_name": "Edit", "session_id": "old",
             "tool_input": {"file_path": f, "old_string": "x", "new_string": "y"},
             "error": "String to replace not found in file."})
    ds.cli("memory", "add", "--type", "decision", "retry.py keeps max_backoff at 300 s", check=True)
    proc = ds.hook({"hook_event_name": "PreToolUse", "tool_name": "Edit", "session_id": "new",
                    "tool_input": {"file_path": f, "old_string": "a", "new_string": "b"}})
    ctx = json.loads(proc.stdout)["hookSpecificOutput"]
    assert ctx["hookEventName"] == "PreToolUse"
    assert "src/queue/retry.py" in ctx["additionalContext"]
    assert "String to replace not found" in ctx["additionalContext"]
    assert "max_backoff at 300" in ctx["additionalContext"]
    assert "permissionDecision" not in ctx, "DevStream never allows or denies"
    # never repeated in the session; other files get nothing
    again = ds.hook({"hook_event_name": "PreToolUse", "tool_name": "Edit", "session_id": "new",
                     "tool_input": {"file_path": f, "old_string": "a", "new_string": "b"}})
    assert again.stdout == b""
    other = ds.hook({"hook_event_name": "PreToolUse", "tool_name": "Write", "session_id": "new",
                     "tool_input": {"file_path": os.path.join(ds.project_dir, "new.py"),
                                    "content": "x"}})
    assert_silent_success(other)


def test_session_start_injects_decisions_with_usage_line(ds, seeded):
    proc = ds.hook({"hook_event_name": "SessionStart", "source": "startup", "session_id": "s9"})
    ctx = json.loads(proc.stdout)["hookSpecificOutput"]
    assert ctx["hookEventName"] == "SessionStart"
    text = ctx["additionalContext"]
    assert seeded["decision"] in text and seeded["learning"] in text
    assert "devstream memory add --type decision" in text
    assert len(text) <= 6000


def test_budgets_and_hard_cap(ds):
    for i in range(60):
        ds.cli("memory", "add", "--type", "decision",
               f"Decision {i}: the ledger service keeps {'very long rationale ' * 30}", check=True)
    start = json.loads(ds.hook({"hook_event_name": "SessionStart", "source": "startup"}).stdout)
    assert len(start["hookSpecificOutput"]["additionalContext"]) <= 6000
    out = prompt(ds, "ledger service decision rationale")
    assert len(out["hookSpecificOutput"]["additionalContext"]) <= 3000


def test_projects_do_not_leak_into_each_other(ds, seeded, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    proc = ds.hook({"hook_event_name": "UserPromptSubmit", "cwd": str(other), "session_id": "x",
                    "prompt": "invoice rounding test failing 10.01"})
    assert proc.stdout == b""
    found = {h["id"] for h in ds.cli_json("memory", "search", "invoice rounding", cwd=str(other))}
    assert not found & set(seeded.values())
    wide = ds.cli_json("memory", "search", "invoice rounding", "--all-projects", cwd=str(other))
    assert seeded["error"] in [h["id"] for h in wide]


def test_context_preview_matches_the_hook(ds, seeded):
    preview = ds.cli_json("context", "--event", "prompt", "--prompt",
                          "getUserById soft-deleted users")
    assert seeded["note"] in preview["context"]
    assert preview["output"]["hookSpecificOutput"]["additionalContext"] == preview["context"]


def _old_decision_then_600_edits(ds, decision, edit_text, **edit_fields):
    """A store holding one decision, then 600 edits (edit_text(i)): (devstream, config, store,
    project id, the decision's id)."""
    import devstream
    cfg = devstream.Config()
    store = devstream.open_store(cfg)
    with store.write():
        pid = store.project_id(devstream.find_project(ds.project_dir))
        old, _ = devstream.add_memory(store, pid, "decision", decision)
        for i in range(600):
            devstream.add_memory(store, pid, "edit", edit_text(i), **edit_fields)
    return devstream, cfg, store, pid, old


def test_large_store_estimates_keep_old_rare_words_findable(ds, monkeypatch):
    """Above FTS_WINDOW memories a common word's frequency is estimated from the newest ones;
    a rare word, such as an identifier from long ago, is still counted and found."""
    import devstream
    monkeypatch.setenv("DEVSTREAM_HOME", ds.home)
    monkeypatch.setattr(devstream, "FTS_WINDOW", 300)
    monkeypatch.setattr(devstream, "DF_SAMPLE", 100)
    devstream, cfg, store, pid, old = _old_decision_then_600_edits(
        ds, "reconcile_ledger_v2 keeps the invoice totals in cents",
        lambda i: f"Edited invoice.py: invoice total retry change {i}", path="src/invoice.py")
    try:
        groups = devstream.query_groups("why does reconcile_ledger_v2 change the invoice total?")
        known = devstream.document_frequencies(store, groups, 601)
        assert known["reconcile_ledger_v2"] == 1                        # counted exactly
        assert 400 <= known["invoice"] <= 800                          # estimated from the newest
        hits = devstream.search(store, cfg, "why does reconcile_ledger_v2 change the invoice "
                                "total?", project_id=pid, limit=5)
    finally:
        store.close()
    assert hits and hits[0].id == old


def test_large_store_ranks_the_newest_but_finds_an_old_identifier(ds, monkeypatch):
    """With words common enough that ranking every match would be slow, only the newest
    FTS_RANK_WINDOW memories are ranked; an identifier from long before them is still found."""
    import devstream
    monkeypatch.setenv("DEVSTREAM_HOME", ds.home)
    monkeypatch.setattr(devstream, "FTS_RANK_WINDOW", 300)
    # two words in 44 memories each: each too rare to be left out of the query, together
    # common enough for the window (FTS_RANK_WINDOW // 4)
    devstream, cfg, store, pid, old = _old_decision_then_600_edits(
        ds, "reconcile_ledger_v2 drains the webhook backlog nightly",
        lambda i: ("webhook retries" if i % 14 == 0 else "backlog grows" if i % 14 == 1 else
                   "edited the ledger") + f" {i}")
    try:
        hits = devstream.search(store, cfg, "why does reconcile_ledger_v2 stall the webhook "
                                "backlog?", project_id=pid, limit=5)
        newest = devstream.search(store, cfg, "webhook retries", project_id=pid, limit=5)
    finally:
        store.close()
    assert hits and hits[0].id == old
    assert newest and all("webhook retries" in h.content for h in newest)


def _seed(ds, texts):
    import devstream
    store = devstream.open_store(devstream.Config())
    try:
        with store.write():
            pid = store.project_id(devstream.find_project(ds.project_dir))
            ids = [devstream.add_memory(store, pid, t, text)[0] for t, text in texts]
    finally:
        store.close()
    return pid, ids


def test_common_word_counts_are_kept_and_rank_exactly_as_counted_ones(ds, monkeypatch):
    """A common word's count is kept for the next search (counting it reads its whole posting
    list): the ranking is the same as with fresh counts, and the count is taken again once the
    store has grown by a quarter."""
    import devstream
    monkeypatch.setenv("DEVSTREAM_HOME", ds.home)
    pid, _ = _seed(ds, [("decision", "reconcile_ledger_v2 keeps the invoice totals in cents")] +
                   [("edit", f"Edited ledger.py: ledger {'invoice ' if i % 2 else ''}retry {i}")
                    for i in range(199)])
    cfg = devstream.Config()
    query = "why does reconcile_ledger_v2 retry the ledger invoice?"
    store = devstream.open_store(cfg)
    try:
        first = [(h.id, h.score) for h in devstream.search(store, cfg, query, project_id=pid)]
        counted = {t: (n, upto) for t, n, upto in store.term_counts_due}
        assert counted["ledger"] == (200, 200) and counted["invoic"] == (100, 200)
        assert "reconcile_ledger_v2" not in counted                   # rare: always counted
        with store.write():
            devstream.keep_term_counts(store)
        again = [(h.id, h.score) for h in devstream.search(store, cfg, query, project_id=pid)]
        # the same ranking (scores differ only by the recency of a few milliseconds)
        assert [i for i, _ in again] == [i for i, _ in first] and all(
            abs(a - b) < 1e-6 for (_, a), (_, b) in zip(again, first))
        assert store.term_counts_due == []                            # nothing counted again
    finally:
        store.close()

    _seed(ds, [("note", f"ledger note {i}") for i in range(40)])     # 240: kept, scaled
    store = devstream.open_store(cfg)
    try:
        known = devstream.document_frequencies(store, devstream.query_groups(query), 240)
        assert known["ledger"] == 240 and store.term_counts_due == []
    finally:
        store.close()
    _seed(ds, [("note", f"plain note {i}") for i in range(60)])      # 300: counted again
    store = devstream.open_store(cfg)
    try:
        known = devstream.document_frequencies(store, devstream.query_groups(query), 300)
        assert known["ledger"] == 240 and ("ledger", 240, 300) in store.term_counts_due
    finally:
        store.close()


def test_a_forgotten_common_word_leaves_the_kept_counts_too(ds, monkeypatch):
    word = "zanzibarite"
    monkeypatch.setenv("DEVSTREAM_HOME", ds.home)
    _seed(ds, [("note", f"build {i} used the {word} mirror") for i in range(70)] +
          [("note", "an unrelated note about invoices")])
    prompt(ds, f"which builds used {word}?")
    assert ds.sql("SELECT docs FROM term_counts WHERE term=?", (word,)) == [(70,)]
    assert ds.cli_json("memory", "forget", "--match", word)["memories"] == 71    # and the prompt
    blob = open(ds.db, "rb").read()
    for f in glob.glob(ds.db + "-wal"):
        blob += open(f, "rb").read()
    assert word.encode() not in blob
    assert ds.sql("SELECT count(*) FROM term_counts") == [(0,)]


def test_words_with_diacritics_are_found_as_the_index_holds_them(ds):
    """The keyword index folds diacritics (unicode61, remove_diacritics 2); the query side must
    fold them the same way, or an accented word is "unknown" and its memory is never found."""
    mid = ds.cli("memory", "add", "--type", "decision", "Die Straßenbahn-Haltestelle wird "
                 "verlegt; Fahrplanänderung im Süden ab März", check=True).stdout.strip()
    other = ds.cli("memory", "add", "--type", "note", "le café ferme à 18 h — réunion déplacée",
                   check=True).stdout.strip()
    ds.cli("memory", "add", "--type", "note", "the ledger export drops the currency", check=True)
    for query, want in (("Fahrplanänderung Süden", mid), ("fahrplananderung suden", mid),
                        ("Wann kommt die Fahrplanänderung?", mid), ("café réunion", other),
                        ("cafe reunion deplacee", other)):
        hits = ds.cli_json("memory", "search", query)
        assert hits and hits[0]["id"] == want, query
    out = prompt(ds, "die Fahrplanänderung im Süden?")
    assert out and mid in out["hookSpecificOutput"]["additionalContext"]
    import devstream
    assert devstream.words("Réunion—déplacée, naïve_café") == ["reunion", "deplacee",
                                                                "naive_cafe"]
