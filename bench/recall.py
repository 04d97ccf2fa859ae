#!/usr/bin/env python3
"""Retrieval quality on a labelled set: recall@5 and MRR for keyword-only, vector-only and
hybrid search, through DevStream's own search code and any Ollama-compatible /api/embed.

    python3 bench/recall.py                         # starts bench/embed_server.py (real model)
    python3 bench/recall.py --url http://127.0.0.1:11434 --model embeddinggemma

The set (bench/data/recall_set.json) holds memories from coding sessions of one project and
queries of five kinds (exact identifiers, file names, error messages, questions about past
decisions, and paraphrases sharing no content word with their answer), plus unrelated queries
whose right answer is silence.  "answered" is the share of real queries whose top hit clears
the absolute relevance floor (so a hook would inject it); "silent" is the share of unrelated
queries where nothing clears it.
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
DATA = os.path.join(ROOT, "bench", "data", "recall_set.json")


def start_embed_server():
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "embed_server.py"),
                             "--port", "0"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("listening "):
        proc.kill()
        raise SystemExit(f"embed_server.py did not start: {line!r}")
    return proc, line.split()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="Ollama-compatible endpoint (default: start embed_server.py)")
    ap.add_argument("--model", default="all-minilm")
    ap.add_argument("--k", type=int, default=5)
    args = ap.parse_args()
    server = None
    url = args.url
    if not url:
        server, url = start_embed_server()
    home = tempfile.mkdtemp(prefix="devstream-recall-")
    os.environ.update(DEVSTREAM_HOME=home, DEVSTREAM_OLLAMA_URL=url,
                      DEVSTREAM_EMBED_MODEL=args.model, DEVSTREAM_EMBED_MODE="inline")
    import devstream
    try:
        data = json.load(open(DATA))
        cfg = devstream.Config()
        store = devstream.open_store(cfg)
        project = devstream.Project("recall-bench", "recall-bench", "recall-bench", home)
        key_of = {}
        now = time.time()
        with store.write():
            pid = store.project_id(project)
            for i, m in enumerate(data["memories"]):
                mid, _ = devstream.add_memory(store, pid, m["type"], m["content"],
                                              created_at=now - 86400 * 30 + i * 60)
                key_of[mid] = m["key"]
        t0 = time.perf_counter()
        done, err = devstream.embed_pending(store, cfg)
        if err:
            raise SystemExit(f"embedding failed: {err}")
        print(f"embedded {done} memories in {time.perf_counter() - t0:.1f} s with {args.model} "
              f"at {url}", file=sys.stderr)
        vfloor = devstream.vector_floor(cfg)
        modes = ("fts", "vector", "hybrid")
        per = {m: {} for m in modes}           # mode -> kind -> [recall, rr]
        silent = {m: [0, 0] for m in modes}    # unrelated: (silent, total)
        answered = {m: [0, 0] for m in modes}
        for q in data["queries"]:
            qvec = devstream.query_vector(store, cfg, q["query"], 30000)
            for mode in modes:
                hits = devstream.search(store, cfg, q["query"], project_id=pid, limit=10,
                                        qvec=qvec, mode=mode)
                keys = [key_of[h.id] for h in hits]
                have = mode != "fts" and qvec is not None
                relevant_top = bool(hits) and devstream.is_relevant(hits[0], vfloor, have)
                if not q["relevant"]:
                    silent[mode][0] += not any(devstream.is_relevant(h, vfloor, have)
                                               for h in hits)
                    silent[mode][1] += 1
                    continue
                answered[mode][0] += relevant_top
                answered[mode][1] += 1
                rel = set(q["relevant"])
                recall = len(rel & set(keys[:args.k])) / len(rel)
                rr = next((1 / (i + 1) for i, k in enumerate(keys) if k in rel), 0.0)
                per[mode].setdefault(q["kind"], []).append((recall, rr))
        kinds = sorted({q["kind"] for q in data["queries"] if q["relevant"]})
        n_real = sum(1 for q in data["queries"] if q["relevant"])
        print(f"\n{len(data['memories'])} memories, {n_real} labelled queries "
              f"(+{silent['fts'][1]} unrelated), model {args.model}, vector floor {vfloor}\n")
        print(f"| method | recall@{args.k} | MRR | " + " | ".join(f"R@{args.k} {k}" for k in kinds)
              + " | answered | silent on unrelated |")
        print("|---|---:|---:|" + "---:|" * len(kinds) + "---:|---:|")
        summary = {}
        for mode in modes:
            allv = [v for k in kinds for v in per[mode].get(k, [])]
            r = sum(v[0] for v in allv) / len(allv)
            mrr = sum(v[1] for v in allv) / len(allv)
            summary[mode] = r
            cells = " | ".join(f"{sum(v[0] for v in per[mode][k]) / len(per[mode][k]):.2f}"
                               for k in kinds)
            name = {"fts": "keyword (FTS5)", "vector": "vector", "hybrid": "hybrid"}[mode]
            print(f"| {name} | {r:.3f} | {mrr:.3f} | {cells} | "
                  f"{answered[mode][0] / answered[mode][1]:.0%} | "
                  f"{silent[mode][0] / max(1, silent[mode][1]):.0%} |")
        ok = summary["hybrid"] > summary["fts"] and summary["hybrid"] > summary["vector"]
        print(f"\nhybrid beats both single methods on recall@{args.k}: {'yes' if ok else 'NO'}")
        sys.exit(0 if ok else 1)
    finally:
        if server:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
