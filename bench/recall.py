#!/usr/bin/env python3
"""Retrieval quality on two labelled sets: recall@5 and MRR for keyword-only, vector-only and
hybrid search with the embedded static model and with all-MiniLM-L6-v2, through DevStream's own
search and injection code.

    python3 bench/recall.py                     # both sets; starts bench/embed_server.py
    python3 bench/recall.py --set billing       # one set
    python3 bench/recall.py --no-minilm         # embedded model and keywords only (no torch)
    python3 bench/recall.py --url http://127.0.0.1:11434 --model embeddinggemma

Sets:
  billing      bench/data/recall_set.json: 361 memories written for one fictional billing
               service, 107 labelled queries in five kinds plus unrelated ones.  The ranking
               rules and the per-model floors were TUNED on this set.
  transcripts  bench/data/transcript_set.json: the memories DevStream's own transcript import
               makes of the 19 real sessions in tests/fixtures/transcripts (7 projects, each
               searched on its own), with queries about what really happened in them.  Its
               queries and labels were written before any tuning and it was NOT tuned on: it is
               the held-out set.  Relevant memories are named by content (type + substrings),
               so the labels survive re-imports and id changes.

Columns: recall@5 and MRR over labelled queries, recall@5 per kind, "answered" = the top hit
clears the relevance floor, "injected" = what UserPromptSubmit would inject (the real
prompt_context) contains a relevant memory, "silent" = nothing injected for an unrelated query.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DATA = os.path.join(ROOT, "bench", "data")
TRANSCRIPTS = os.path.join(ROOT, "tests", "fixtures", "transcripts")


def start_embed_server():
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "embed_server.py"),
                             "--port", "0"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("listening "):
        proc.kill()
        raise SystemExit(f"embed_server.py did not start: {line!r}")
    return proc, line.split()[1]


def transcript_project(filename):
    parts = filename.split("__")
    return parts[2] if parts[0] in ("codex", "gemini") else parts[1]


def load_billing(ds, store):
    data = json.load(open(os.path.join(DATA, "recall_set.json")))
    project = ds.Project("bench:billing", "/bench/billing", "billing", "/bench/billing")
    key_of = {}
    now = time.time()
    with store.write():
        pid = store.project_id(project)
        for i, m in enumerate(data["memories"]):
            mid, _ = ds.add_memory(store, pid, m["type"], m["content"],
                                   created_at=now - 86400 * 30 + i * 60)
            key_of[m["key"]] = mid
    queries = []
    for q in data["queries"]:
        queries.append({"kind": q["kind"] if q["relevant"] else "unrelated", "query": q["query"],
                        "project": (project, pid),
                        "relevant": {key_of[k] for k in q["relevant"]}})
    return len(data["memories"]), queries


def load_transcripts(ds, store):
    data = json.load(open(os.path.join(DATA, "transcript_set.json")))
    projects = {}
    for name in sorted(os.listdir(TRANSCRIPTS)):
        path = os.path.join(TRANSCRIPTS, name)
        if not os.path.isfile(path):
            continue
        pname = transcript_project(name)
        if pname not in projects:
            project = ds.Project("bench:" + pname, "/bench/" + pname, pname, "/bench/" + pname)
            with store.write():
                projects[pname] = (project, store.project_id(project))
        project, pid = projects[pname]
        ds.import_transcript(store, path, forced=project)
    rows = store.all("SELECT m.id, p.name, m.type, m.content, coalesce(m.path, '') FROM memories m "
                     "JOIN projects p ON p.id = m.project_id")
    queries = []
    for q in data["queries"]:
        rel = set()
        for m in q["relevant"]:
            found = {mid for mid, pname, mtype, content, path in rows
                     if pname == q["project"] and m.get("type", mtype) == mtype
                     and all(h in content or h in path for h in m["has"])}
            if not found:
                raise SystemExit(f"label matches no memory: {q['query']!r} {m}")
            rel |= found
        queries.append({"kind": q["kind"], "query": q["query"], "project": projects[q["project"]],
                        "relevant": rel})
    return len(rows), queries


def evaluate(ds, store, cfg, queries, k, model_label):
    """Rows of the results table for one embedding setup (model_label None = keyword only)."""
    modes = ("fts",) if model_label is None else ("vector", "hybrid")
    per = {m: {} for m in modes}
    stats = {m: {"answered": [0, 0], "injected": [0, 0], "silent": [0, 0]} for m in modes}
    for n, q in enumerate(queries):
        project, pid = q["project"]
        qvec = ds.query_vector(store, cfg, q["query"], 30000) if model_label else None
        model = qvec[2] if qvec else None
        vfloor = ds.vector_floor(cfg, model)
        for mode in modes:
            hits = ds.search(store, cfg, q["query"], project_id=pid, limit=10, qvec=qvec,
                             mode=mode)
            have = mode != "fts" and qvec is not None
            relevant = [h for h in hits if ds.is_relevant(h, vfloor, have)]
            if mode == modes[-1]:
                saved = cfg.values["embed_mode"]
                if model_label is None:
                    cfg.values["embed_mode"] = "off"
                text, ids = ds.prompt_context(store, cfg, project, pid, f"bench-{n}",
                                              q["query"])
                cfg.values["embed_mode"] = saved
            else:
                ids = [h.id for h in relevant[:6]]
            st = stats[mode]
            if not q["relevant"]:
                st["silent"][0] += not ids
                st["silent"][1] += 1
                continue
            st["answered"][0] += bool(hits) and ds.is_relevant(hits[0], vfloor, have)
            st["answered"][1] += 1
            st["injected"][0] += bool(set(ids) & q["relevant"])
            st["injected"][1] += 1
            ranked = [h.id for h in hits]
            recall = len(q["relevant"] & set(ranked[:k])) / min(len(q["relevant"]), k)
            rr = next((1 / (i + 1) for i, h in enumerate(ranked) if h in q["relevant"]), 0.0)
            per[mode].setdefault(q["kind"], []).append((recall, rr))
    rows = []
    for mode in modes:
        allv = [v for vs in per[mode].values() for v in vs]
        name = {"fts": "keyword only", "vector": f"vector, {model_label}",
                "hybrid": f"hybrid, {model_label}"}[mode]
        rows.append((name, sum(v[0] for v in allv) / len(allv), sum(v[1] for v in allv) / len(allv),
                     {kind: sum(v[0] for v in vs) / len(vs) for kind, vs in per[mode].items()},
                     {key: a / max(1, b) for key, (a, b) in stats[mode].items()}))
    return rows


def run_set(name, args, url):
    import devstream as ds
    home = tempfile.mkdtemp(prefix=f"devstream-recall-{name}-")
    os.environ.update(DEVSTREAM_HOME=home, DEVSTREAM_EMBED_MODE="inline",
                      DEVSTREAM_EMBED_MODEL="builtin")
    cfg = ds.Config()
    cfg.values["query_embed_deadline_ms"] = 30000
    cfg.values["vector_floor"] = args.floor
    store = ds.open_store(cfg)
    n_mem, queries = (load_billing if name == "billing" else load_transcripts)(ds, store)
    labelled = [q for q in queries if q["relevant"]]
    results = evaluate(ds, store, cfg, queries, args.k, None)
    setups = [("embedded", {})]
    if url:
        setups.append((args.model, {"embed_model": args.model, "ollama_url": url}))
    for label, values in setups:
        cfg.values.update(values)
        t0 = time.perf_counter()
        done, err = ds.embed_pending(store, cfg)
        if err:
            raise SystemExit(f"embedding failed: {err}")
        print(f"{name}: embedded {done} memories with {label} in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
        results += evaluate(ds, store, cfg, queries, args.k, label)
    kinds = sorted({q["kind"] for q in labelled})
    role = "tuned on" if name == "billing" else "held out, not tuned on"
    print(f"\n{name} ({role}): {n_mem} memories, {len(labelled)} labelled queries "
          f"(+{len(queries) - len(labelled)} unrelated)\n")
    print(f"| method | recall@{args.k} | MRR | " + " | ".join(f"R@{args.k} {k}" for k in kinds)
          + " | answered | injected | silent on unrelated |")
    print("|---|---:|---:|" + "---:|" * len(kinds) + "---:|---:|---:|")
    for label, r, mrr, kind_r, st in results:
        cells = " | ".join(f"{kind_r.get(k, 0):.2f}" for k in kinds)
        print(f"| {label} | {r:.3f} | {mrr:.3f} | {cells} | {st['answered']:.0%} | "
              f"{st['injected']:.0%} | {st['silent']:.0%} |")
    store.close()
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=("billing", "transcripts", "both"), default="both")
    ap.add_argument("--url", help="Ollama-compatible endpoint (default: start embed_server.py)")
    ap.add_argument("--model", default="all-minilm")
    ap.add_argument("--no-minilm", action="store_true", help="skip the Ollama-compatible model")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--floor", type=float, default=0.0,
                    help="override every model's vector floor (for calibration sweeps)")
    args = ap.parse_args()
    server, url = None, args.url
    if not url and not args.no_minilm:
        server, url = start_embed_server()
    try:
        for name in (("billing", "transcripts") if args.set == "both" else (args.set,)):
            run_set(name, args, url)
    finally:
        if server:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
