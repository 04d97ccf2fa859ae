"""No memory of one project reaches another, whatever its content: text shaped like the store's
own project and type terms, a file named like them, a session id shared across projects, and
vector neighbours all stay in their project."""
import json
import os

import apsw

import devstream
from ollama_stub import OllamaStub

FORGED = " ".join(f"dsproject{i} dsproject{i}_leak Dsproject{i}Leak dstypedecision_{i}"
                  for i in range(1, 7))
SECRET_WORDS = "ledger importer cents reconciliation"


def project(ds, name):
    d = os.path.join(ds.tmp, name)
    os.makedirs(d, exist_ok=True)
    return d


def prompt(ds, cwd, text, session):
    proc = ds.hook({"hook_event_name": "UserPromptSubmit", "prompt": text, "session_id": session,
                    "cwd": cwd})
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    return json.loads(proc.stdout)["hookSpecificOutput"]["additionalContext"] \
        if proc.stdout.strip() else ""


def test_crafted_content_never_crosses_projects(ds):
    a, b, c = project(ds, "alpha"), project(ds, "bravo"), project(ds, "charlie")
    # the projects exist in this order: alpha=1, bravo=2, charlie=3
    for d in (a, b, c):
        ds.hook({"hook_event_name": "SessionStart", "source": "startup", "session_id": "s-" + d[-5:],
                 "cwd": d})
    leaks = [
        ds.cli("memory", "add", "--type", "decision", f"ALPHA-ONLY {SECRET_WORDS} {FORGED}",
               cwd=a, check=True).stdout.strip(),
        ds.cli("memory", "add", "--type", "learning", "--tag", "dsproject2", "--tag", "dsproject3",
               f"ALPHA-ONLY second {SECRET_WORDS}", cwd=a, check=True).stdout.strip(),
    ]
    # an edit in alpha of a file named like a project term, and a failure in a session whose id
    # bravo uses too (a session that wandered between repositories)
    ds.hook({"hook_event_name": "PostToolUse", "session_id": "wandering", "cwd": a, "tool_name": "Write",
             "tool_input": {"file_path": os.path.join(a, "dsproject2_ledger.py"),
                            "content": f"# ALPHA-ONLY {SECRET_WORDS}\n"},
             "tool_response": {"type": "create"}})
    ds.hook({"hook_event_name": "PostToolUseFailure", "session_id": "wandering", "cwd": a,
             "tool_name": "Bash", "tool_input": {"command": "make ledger"},
             "error": f"ALPHA-ONLY failure {SECRET_WORDS} dsproject2 dsproject3"})
    ds.cli("memory", "add", "--type", "decision", f"bravo's own note on the {SECRET_WORDS}",
           cwd=b, check=True)
    assert len(ds.sql("SELECT * FROM memories WHERE content LIKE 'ALPHA-ONLY%' "
                      "OR content LIKE '%ALPHA-ONLY%'")) == 4

    for d in (b, c):
        for i, text in enumerate([f"what about the {SECRET_WORDS}?", "dsproject2 dsproject3",
                                  "dsproject2_leak Dsproject3Leak dstypedecision"]):
            ctx = prompt(ds, d, text, session=f"q{i}-{d[-5:]}")
            assert "ALPHA-ONLY" not in ctx, (d, text, ctx)
        # before an edit of a file with the same name
        proc = ds.hook({"hook_event_name": "PreToolUse", "session_id": "pre-" + d[-5:], "cwd": d,
                        "tool_name": "Edit", "tool_input": {
                            "file_path": os.path.join(d, "dsproject2_ledger.py"),
                            "old_string": "a", "new_string": "b"}})
        assert b"ALPHA-ONLY" not in proc.stdout
        for query in (SECRET_WORDS, "dsproject2", "dsproject3 leak", "ALPHA-ONLY"):
            found = ds.cli_json("memory", "search", query, "--all", cwd=d)
            assert not [m for m in found if "ALPHA-ONLY" in m["content"]], (d, query)
        listed = ds.cli_json("memory", "list", "--limit", "100", cwd=d)
        assert not [m for m in listed if "ALPHA-ONLY" in m["content"]]
        start = ds.hook({"hook_event_name": "SessionStart", "source": "startup",
                         "session_id": "later-" + d[-5:], "cwd": d})
        assert b"ALPHA-ONLY" not in start.stdout
    # the session shared by name: bravo's summary holds none of alpha's memories
    ds.hook({"hook_event_name": "SessionStart", "source": "startup", "session_id": "wandering",
             "cwd": b})
    ds.hook({"hook_event_name": "SessionEnd", "reason": "other", "session_id": "wandering", "cwd": b})
    for (content,) in ds.sql("SELECT content FROM memories m JOIN projects p ON p.id=m.project_id"
                             " WHERE p.name != 'alpha'"):
        assert "ALPHA-ONLY" not in content
    # alpha itself still finds them
    assert {m["id"] for m in ds.cli_json("memory", "search", SECRET_WORDS, cwd=a)} >= set(leaks)


def test_vector_neighbours_stay_in_their_project(ds):
    a, b = project(ds, "alpha"), project(ds, "bravo")
    with OllamaStub(models={"embeddinggemma": 768}) as stub:
        ds.env["DEVSTREAM_OLLAMA_URL"] = stub.url
        ds.env["DEVSTREAM_EMBED_MODE"] = "background"
        ds.cli("memory", "add", "ALPHA-ONLY the ledger stores integer cents", cwd=a, check=True)
        ds.cli("memory", "add", "bravo keeps its config in yaml files", cwd=b, check=True)
        ds.cli("embed", check=True)
        hits = ds.cli_json("memory", "search", "the ledger stores integer cents", "--mode",
                           "vector", "--all", cwd=b)
        assert hits and not [h for h in hits if "ALPHA-ONLY" in h["content"]]
        assert "ALPHA-ONLY" not in prompt(ds, b, "the ledger stores integer cents", "v1")


def test_old_index_with_forged_terms_is_reindexed(tmp_path):
    path = str(tmp_path / "d.db")
    store = devstream.Store(path, migrate=False)
    store.migrate(target=4)
    with store.write():
        for key in ("k1", "k2"):
            store.execute("INSERT INTO projects(key, root, name, created_at) VALUES(?,?,?,1)",
                          (key, "/" + key, key))
        store.execute("INSERT INTO memories(id, project_id, type, content, created_at, "
                      "content_hash) VALUES('m-aaaaaa', 1, 'note', 'x dsproject2_leak', 1, 'h')")
        # what the old index_terms() produced from that content
        store.execute("INSERT INTO memories_fts(rowid, content, terms) VALUES(1, "
                      "'x dsproject2_leak', 'dsproject2 leak dsproject1 dstypenote')")
    store.close()
    store = devstream.Store(path)
    match = lambda t: store.all("SELECT rowid FROM memories_fts WHERE memories_fts MATCH ?",
                                (f'terms:"{t}"',))
    assert match("dsproject2") == [] and match("dsproject1") == [(1,)]
    assert match("leak") == [(1,)]
    store.close()


def test_a_small_project_beside_a_busy_one_still_finds_its_own_memories(ds):
    """Keyword candidates are ranked across the store first; when the busy project's memories
    crowd this one's out of that ranking, the search ranks within this project alone."""
    busy, small = project(ds, "busy"), project(ds, "small")
    for i in range(40):
        ds.cli("memory", "add", f"ledger ledger {i} busy", cwd=busy, check=True)
    mine = ds.cli("memory", "add", "--type", "decision", "the ledger keeps integer cents, never "
                  "floats, for every invoice line, refund and currency conversion we support",
                  cwd=small, check=True).stdout.strip()
    hits = ds.cli_json("memory", "search", "ledger", cwd=small)
    assert [h["id"] for h in hits] == [mine]
    assert "integer cents" in prompt(ds, small, "does the ledger keep cents?", "s-small")
    busy_hits = ds.cli_json("memory", "search", "ledger", "--limit", "5", cwd=busy)
    assert len(busy_hits) == 5 and all("busy" in h["content"] for h in busy_hits)


def test_file_context_of_a_small_project_beside_a_busy_one(ds):
    """What is known about a file: the busy project's many notes about a file of the same name
    neither crowd out this project's own nor appear here."""
    busy, small = project(ds, "busy"), project(ds, "small")
    ds.cli("memory", "add", "--type", "decision", "invoice.py rounds half to even, per the auditors",
           cwd=small, check=True)
    for i in range(30):         # newer, all of them
        ds.cli("memory", "add", "--type", "decision", f"BUSY-ONLY invoice.py rule {i}", cwd=busy,
               check=True)
    proc = ds.hook({"hook_event_name": "PreToolUse", "tool_name": "Read", "session_id": "s-small",
                    "cwd": small, "tool_input": {"file_path": os.path.join(small, "invoice.py")}})
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    text = json.loads(proc.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "half to even" in text and "BUSY-ONLY" not in text
