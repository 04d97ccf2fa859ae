"""Embeddings through a real HTTP server that speaks Ollama's API: batching, spaces per model,
hybrid search, and every way Ollama can fail (the hook still answers and falls back to FTS)."""
import json
import os
import time

import pytest

from ollama_stub import OllamaStub, free_port

NOTES = ["Decided to store money as integer cents in the ledger table",
         "The webhook consumer must be idempotent because Stripe retries deliveries",
         "getUserById returns None for soft-deleted users",
         "Exponential backoff in the job queue is capped at five minutes"]


@pytest.fixture
def stub():
    with OllamaStub(models={"embeddinggemma": 768, "all-minilm": 384}) as s:
        yield s


def setup_memories(ds, stub):
    ds.env["DEVSTREAM_OLLAMA_URL"] = stub.url
    ds.env["DEVSTREAM_EMBED_MODE"] = "background"
    ids = [ds.cli("memory", "add", "--type", "decision", n, check=True).stdout.strip()
           for n in NOTES]
    return ids


def write_config(ds, text):
    os.makedirs(ds.home, exist_ok=True)
    with open(os.path.join(ds.home, "config.toml"), "w") as fh:
        fh.write(text)


def prompt(ds, text, session="s1"):
    proc = ds.hook({"hook_event_name": "UserPromptSubmit", "prompt": text, "session_id": session})
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr
    return json.loads(proc.stdout)["hookSpecificOutput"]["additionalContext"] \
        if proc.stdout.strip() else None


def breaker(ds):
    rows = ds.sql("SELECT state, fail_counter FROM breaker WHERE name='ollama'")
    return rows[0] if rows else ("closed", 0)


def test_embed_command_batches_and_records_model(ds, stub):
    ids = setup_memories(ds, stub)
    out = ds.cli_json("embed")
    assert out == {"action": "embed", "dry_run": False, "memories": 4, "pending": 0,
                   "problems": []}
    assert ds.sql("SELECT model, dim FROM embed_spaces") == [("embeddinggemma", 768)]
    assert all(ds.cli_json("memory", "show", i)["embedded"] for i in ids)
    calls = stub.requests_to("/api/embed")
    assert len(calls) == 1 and calls[0]["json"]["input"] == NOTES     # one batch
    assert calls[0]["json"]["model"] == "embeddinggemma" and "keep_alive" in calls[0]["json"]


def test_vector_and_hybrid_search(ds, stub):
    ids = setup_memories(ds, stub)
    ds.cli("embed", check=True)
    vec = ds.cli_json("memory", "search", "webhook consumer idempotent", "--mode", "vector")
    assert vec[0]["id"] == ids[1] and vec[0]["vector"] > 0.5
    hyb = ds.cli_json("memory", "search", "stripe webhook retries")
    assert hyb[0]["id"] == ids[1] and hyb[0]["fts"] > 0 and hyb[0]["vector"] > 0
    ctx = prompt(ds, "is the webhook consumer idempotent?")
    assert ids[1] in ctx
    assert any(r["json"]["input"] == ["is the webhook consumer idempotent?"]
               for r in stub.requests_to("/api/embed"))


def test_query_embedding_is_cached(ds, stub):
    setup_memories(ds, stub)
    ds.cli("embed", check=True)
    prompt(ds, "ledger integer cents", session="a")
    n = len(stub.requests_to("/api/embed"))
    prompt(ds, "ledger integer cents", session="b")
    assert len(stub.requests_to("/api/embed")) == n


@pytest.mark.parametrize("fault", ["refused", "hang", "error500", "wrong_dim", "non_json",
                                   "not_pulled"])
def test_ollama_faults_fall_back_to_keywords_and_trip_the_breaker(ds, stub, fault):
    ids = setup_memories(ds, stub)
    ds.cli("embed", check=True)
    write_config(ds, "breaker_reset_s = 1\nquery_embed_deadline_ms = 300\n")
    if fault == "refused":
        ds.env["DEVSTREAM_OLLAMA_URL"] = f"http://127.0.0.1:{free_port()}"
    elif fault == "not_pulled":
        stub.remove_model("embeddinggemma")
    else:
        stub.fault = fault
    # each prompt still gets its keyword match, inside the hook's deadline
    for i, text in enumerate(["integer cents ledger", "webhook idempotent stripe",
                              "getUserById soft-deleted"]):
        ctx = prompt(ds, text, session=f"f{i}")
        assert ctx and ids[i] in ctx, (fault, ctx)
    assert breaker(ds)[0] == "open"
    before = len(stub.requests_to("/api/embed"))
    prompt(ds, "exponential backoff job queue", session="f9")
    assert len(stub.requests_to("/api/embed")) == before, "an open breaker makes no calls"
    # Ollama recovers; after the reset timeout one trial call closes the breaker
    stub.fault = None
    stub.add_model("embeddinggemma", 768)
    ds.env["DEVSTREAM_OLLAMA_URL"] = stub.url
    time.sleep(1.2)
    assert ids[3] in prompt(ds, "backoff capped minutes queue", session="f10")
    assert breaker(ds) == ("closed", 0)


def test_embed_command_reports_failure_and_keeps_everything(ds, stub):
    setup_memories(ds, stub)
    stub.fault = "error500"
    proc = ds.cli("embed")
    assert proc.returncode == 1 and "embedding failed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert ds.sql("SELECT count(*) FROM embed_pending")[0][0] == 4
    stub.fault = None
    assert ds.cli_json("embed")["memories"] == 4


def test_background_embedding_after_stop(ds, stub):
    setup_memories(ds, stub)
    proc = ds.hook({"hook_event_name": "Stop", "session_id": "s1"})
    assert proc.returncode == 0 and proc.stdout == b""
    for _ in range(200):                  # the detached embedder finishes on its own
        if ds.sql("SELECT count(*) FROM embed_pending")[0][0] == 0:
            break
        time.sleep(0.1)
    assert ds.sql("SELECT count(*) FROM embed_pending")[0][0] == 0
    assert ds.sql("SELECT count(*) FROM memories WHERE embed_space IS NOT NULL")[0][0] == 4


def test_inline_mode_embeds_in_the_hook(ds, stub):
    setup_memories(ds, stub)
    ds.env["DEVSTREAM_EMBED_MODE"] = "inline"
    ds.hook({"hook_event_name": "Stop", "session_id": "s1"})
    assert ds.sql("SELECT count(*) FROM embed_pending")[0][0] == 0


def test_changing_the_model_never_mixes_vectors(ds, stub):
    ids = setup_memories(ds, stub)
    ds.cli("embed", check=True)
    ds.env["DEVSTREAM_EMBED_MODEL"] = "all-minilm"
    # before re-embedding, search with the new model has no vectors: keyword only, no mixing
    hits = ds.cli_json("memory", "search", "webhook idempotent")
    assert all(h["vector"] == 0 for h in hits)
    assert ds.cli_json("embed")["memories"] == 4
    spaces = dict((m, d) for m, d in ds.sql("SELECT model, dim FROM embed_spaces"))
    assert spaces == {"embeddinggemma": 768, "all-minilm": 384}
    assert ds.sql("SELECT count(DISTINCT embed_space) FROM memories") == [(1,)]
    hits = ds.cli_json("memory", "search", "webhook consumer idempotent", "--mode", "vector")
    assert hits[0]["id"] == ids[1]


def embedded_store(ds, stub, monkeypatch):
    """The memories of setup_memories, embedded through Ollama's stand-in, and this process set
    to use the same home: (devstream, its Config, an open store)."""
    import devstream
    setup_memories(ds, stub)
    ds.cli("embed", check=True)
    monkeypatch.setenv("DEVSTREAM_HOME", ds.home)
    monkeypatch.setenv("DEVSTREAM_OLLAMA_URL", stub.url)
    cfg = devstream.Config()
    return devstream, cfg, devstream.open_store(cfg)


def test_parallel_vector_search_gives_the_same_results(ds, stub, monkeypatch):
    """Large stores run the vector search in a second thread; the answer must not change."""
    devstream, cfg, store = embedded_store(ds, stub, monkeypatch)
    try:
        pid = store.scalar("SELECT id FROM projects")
        qvec = devstream.query_vector(store, cfg, "stripe webhook retries", 5000)
        assert qvec is not None
        monkeypatch.setattr(devstream, "PARALLEL_SEARCH_ABOVE", 10 ** 9)
        serial = [(h.id, round(h.score, 6)) for h in
                  devstream.search(store, cfg, "stripe webhook retries", project_id=pid, qvec=qvec)]
        monkeypatch.setattr(devstream, "PARALLEL_SEARCH_ABOVE", 0)
        parallel = [(h.id, round(h.score, 6)) for h in
                    devstream.search(store, cfg, "stripe webhook retries", project_id=pid,
                                     qvec=qvec)]
        # the hook's way: the vector is computed while the second connection opens
        embedded = [(h.id, round(h.score, 6)) for h in
                    devstream.search(store, cfg, "stripe webhook retries", project_id=pid,
                                     embed=lambda: qvec)]
        keyword = [h.id for h in devstream.search(store, cfg, "stripe webhook retries",
                                                  project_id=pid, embed=lambda: None)]
        # an embedder that fails must not leave the search waiting on its second thread

        def broken():
            raise OSError("the embedder fell over")
        with pytest.raises(OSError):
            devstream.search(store, cfg, "stripe webhook retries", project_id=pid, embed=broken)
    finally:
        store.close()
    assert serial and serial == parallel == embedded
    assert keyword and keyword[0] == serial[0][0]


def test_a_search_runs_its_meanwhile_write_once_and_finds_the_same(ds, stub, monkeypatch):
    """UserPromptSubmit stores its prompt while the search runs (the search leaves its session
    out): once, whether the vector half runs in a second thread, on the caller's connection, or
    its thread cannot open a connection at all."""
    devstream, cfg, store = embedded_store(ds, stub, monkeypatch)
    written = []

    def write():
        written.append(True)
        with store.write():
            devstream.add_memory(store, pid, "prompt", f"stored meanwhile {len(written)}",
                                 session_id="meanwhile")
    real_store = devstream.Store

    def no_second_connection(*args, **kwargs):
        if kwargs.get("checked"):
            raise OSError("no second connection today")
        return real_store(*args, **kwargs)
    try:
        pid = store.scalar("SELECT id FROM projects")
        qvec = devstream.query_vector(store, cfg, "stripe webhook retries", 5000)
        found = []
        for above, store_class in ((10 ** 9, real_store), (0, real_store),
                                   (0, no_second_connection)):
            monkeypatch.setattr(devstream, "PARALLEL_SEARCH_ABOVE", above)
            monkeypatch.setattr(devstream, "Store", store_class)
            found.append([h.id for h in devstream.search(
                store, cfg, "stripe webhook retries", project_id=pid, embed=lambda: qvec,
                meanwhile=write, exclude_session="meanwhile")])
    finally:
        store.close()
    assert found[0] and found[0] == found[1]
    assert found[2] and found[2][0] == found[0][0]      # keyword-only when the thread failed
    stored = [r[0] for r in ds.sql("SELECT content FROM memories WHERE session_id='meanwhile' "
                                   "ORDER BY rowid")]
    assert stored == ["stored meanwhile 1", "stored meanwhile 2", "stored meanwhile 3"]


def test_a_sampled_nearest_neighbour_query_finds_the_same_memories(ds, monkeypatch):
    """In a large store the space's sample (one vector in KNN_SAMPLE_EVERY) bounds the k nearest;
    the answer is the unbounded one, also when too few fall within the bound, in a space made
    before samples (it gets its sample from the next embedding pass), and after a forget."""
    import random
    import devstream
    monkeypatch.setenv("DEVSTREAM_HOME", ds.home)
    monkeypatch.setenv("DEVSTREAM_EMBED_MODEL", "builtin")
    cfg = devstream.Config()
    store = devstream.open_store(cfg)
    rng = random.Random(5)
    words = ("invoice ledger webhook retry queue worker token session cache parser config "
             "migration index schema timeout socket refund currency tax cart profile audit "
             "flag limiter pool").split()

    def add(count):
        with store.write():
            for i in range(count):
                devstream.add_memory(store, pid, "note", " ".join(rng.sample(words, 6)) +
                                     f" {rng.random()}")
        assert devstream.embed_pending(store, cfg) == (count, None)

    try:
        with store.write():
            pid = store.project_id(devstream.find_project(ds.project_dir))
        add(600)
        space = store.scalar("SELECT id FROM embed_spaces")
        sampled = store.all(f"SELECT rowid FROM vecsample_{space} ORDER BY rowid")
        assert sampled and all(r % devstream.KNN_SAMPLE_EVERY == 0 for (r,) in sampled)
        assert len(sampled) == store.scalar(f"SELECT count(*) FROM vecf_{space} WHERE rowid % "
                                            f"{devstream.KNN_SAMPLE_EVERY} = 0")
        bounded_seen = fallback_seen = 0
        shipped_rank = devstream.KNN_SAMPLE_RANK
        for text in ("the webhook retry queue", "refund the tax", "hello there"):
            space, qvec, _model = devstream.query_vector(store, cfg, text, 1000)
            plain = devstream.nearest_memories(store, space, qvec, 64, pid, 40)
            assert len(plain) == 40
            for rank in (shipped_rank, 1):                     # 1: too few within the bound
                monkeypatch.setattr(devstream, "KNN_SAMPLE_RANK", rank)
                bound = devstream.sample_bound(store, space, qvec, pid)
                inside = store.scalar(
                    f"SELECT count(*) FROM vec_{space} WHERE embedding MATCH "
                    "vec_quantize_binary(?) AND k = 600 AND distance <= ?", (qvec, bound))
                bounded_seen += inside >= 64
                fallback_seen += inside < 64
                assert devstream.nearest_memories(store, space, qvec, 64, pid, 40,
                                                  sampled=True) == plain
                # every project's memories (`memory search --all-projects`): here the same ones
                assert devstream.nearest_memories(store, space, qvec, 64, None, 40,
                                                  sampled=True) == plain
            monkeypatch.setattr(devstream, "KNN_SAMPLE_RANK", shipped_rank)
        assert bounded_seen and fallback_seen           # both ways were taken
        # a space from before samples: unbounded until the next embedding pass makes its sample
        with store.write():
            store.execute(f"DROP TABLE vecsample_{space}")
        assert devstream.sample_bound(store, space, qvec, pid) is None
        assert devstream.nearest_memories(store, space, qvec, 64, pid, 40, sampled=True) == plain
        # a pass past its deadline makes the sample and leaves the copy to the next pass
        import time
        devstream.fill_vector_samples(store, deadline=time.monotonic() - 1)
        assert store.scalar(f"SELECT count(*) FROM vecsample_{space}") == 0
        assert store.get_state(f"vector_sample_{space}") is not None
        assert devstream.nearest_memories(store, space, qvec, 64, pid, 40, sampled=True) == plain
        monkeypatch.setattr(devstream, "SAMPLE_FILL_ROWIDS", 100)      # copied in 7 slices
        add(1)
        assert store.get_state(f"vector_sample_{space}") is None
        assert store.all(f"SELECT rowid FROM vecsample_{space} ORDER BY rowid")[:len(sampled)] \
            == sampled
        assert devstream.sample_bound(store, space, qvec, pid) is not None
        # a forgotten memory leaves the sample with its vector
        with store.write():
            devstream.delete_memory(store, sampled[0][0])
        assert store.scalar(f"SELECT count(*) FROM vecsample_{space} WHERE rowid = ?",
                            sampled[0]) == 0
    finally:
        store.close()


def test_background_embedder_logs_with_structlog_field_names(ds, stub):
    setup_memories(ds, stub)
    stub.fault = "error500"
    ds.hook({"hook_event_name": "Stop", "session_id": "s1"})
    record = None
    for _ in range(200):
        record = next((r for r in ds.log_records() if r["event"] == "embed.background_stopped"),
                      None)
        if record:
            break
        time.sleep(0.1)
    assert record is not None
    assert record["level"] == "warning" and record["timestamp"].endswith("Z")
    assert "HTTP 500" in record["error"] and record["embedded"] == 0
    assert ds.sql("SELECT count(*) FROM embed_pending")[0][0] == 4       # nothing lost
