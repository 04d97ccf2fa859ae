#!/usr/bin/env python3
"""Redaction measured on test data DevStream did not write, and on its own corpus.

    python3 bench/redaction.py              # totals per source
    python3 bench/redaction.py --kinds      # and recall / false positives per kind
    python3 bench/redaction.py --misses gitleaks   # the cases one source's figures lose

Sources: the published test cases of gitleaks, trufflehog and detect-secrets
(tests/data/scanners/, made by bench/extract_scanner_data.py; tests/data/SOURCES.md), and
tests/data/redaction_corpus.json.  A positive counts as caught when none of its secrets is left
in redact(text); a negative counts as a false positive when redact(text) changes it at all.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data")
sys.path.insert(0, os.path.join(HERE, ".."))

import devstream  # noqa: E402

SOURCES = ("gitleaks", "trufflehog", "detect_secrets")


def load_source(name):
    with open(os.path.join(DATA, "scanners", name + ".json")) as fh:
        return json.load(fh)


def load_own():
    with open(os.path.join(DATA, "redaction_corpus.json")) as fh:
        corpus = json.load(fh)
    pos = [{"kind": e["kind"], "text": e["text"], "secrets": [e["secret"]]}
           for e in corpus["secrets"]]
    neg = [{"kind": e["kind"], "text": e["text"], "keep": e["value"]} for e in corpus["benign"]]
    return {"positives": pos, "negatives": neg}


def caught(case, redact=devstream.redact):
    out = redact(case["text"])
    return not any(s in out for s in case["secrets"])


def false_positive(case, redact=devstream.redact):
    out = redact(case["text"])
    if "keep" in case:                 # own corpus: the named look-alike must survive
        return case["keep"] not in out
    return out != case["text"]


def evaluate(doc, redact=devstream.redact):
    """{kind: [positives, caught, negatives, false positives]} and the misses."""
    per, misses = {}, []
    for case in doc["positives"]:
        row = per.setdefault(case["kind"], [0, 0, 0, 0])
        row[0] += 1
        if caught(case, redact):
            row[1] += 1
        else:
            misses.append(("missed", case))
    for case in doc["negatives"]:
        row = per.setdefault(case["kind"], [0, 0, 0, 0])
        row[2] += 1
        if false_positive(case, redact):
            row[3] += 1
            misses.append(("false positive", case))
    return per, misses


def totals(per):
    p = sum(r[0] for r in per.values())
    c = sum(r[1] for r in per.values())
    n = sum(r[2] for r in per.values())
    f = sum(r[3] for r in per.values())
    return p, c, n, f


def pct(a, b):
    return f"{100 * a / b:.1f}%" if b else "-"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kinds", action="store_true", help="figures per kind")
    ap.add_argument("--misses", metavar="SOURCE", help="print the cases SOURCE loses")
    ap.add_argument("--markdown", action="store_true", help="per-kind tables as Markdown")
    args = ap.parse_args()
    docs = {name: load_source(name) for name in SOURCES}
    docs["devstream"] = load_own()
    print("| source | positives | kinds | recall | negatives | false positives |")
    print("|---|---:|---:|---:|---:|---:|")
    results = {}
    for name, doc in docs.items():
        per, misses = evaluate(doc)
        results[name] = (per, misses)
        p, c, n, f = totals(per)
        kinds = sum(1 for r in per.values() if r[0])
        print(f"| {name} | {p} | {kinds} | {pct(c, p)} ({c}/{p}) | {n} | {pct(f, n)} ({f}/{n}) |")
    if args.kinds or args.markdown:
        for name, (per, _) in results.items():
            print(f"\n{name}\n")
            print("| kind | recall | false positives |")
            print("|---|---:|---:|")
            for kind in sorted(per):
                p, c, n, f = per[kind]
                print(f"| {kind} | {f'{c}/{p}' if p else '-'} | {f'{f}/{n}' if n else '-'} |")
    if args.misses:
        for what, case in results[args.misses][1]:
            print(f"\n--- {what} [{case['kind']}] {case.get('secrets', '')}\n{case['text'][:400]}")


if __name__ == "__main__":
    main()
