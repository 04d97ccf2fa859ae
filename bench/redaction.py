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
import math
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data")
sys.path.insert(0, os.path.join(HERE, ".."))

import devstream  # noqa: E402

SOURCES = ("gitleaks", "trufflehog", "detect_secrets")

# Positives DevStream keeps by design, left out of recall (and counted apart):
#  - kinds that are not credentials
NOT_CREDENTIALS = {"ip_public": "a public IP address is not a credential"}


def by_policy(case):
    """Why a scanner's positive is one DevStream deliberately keeps, or None: its secret is a
    placeholder (ghp_xxxx..., AP6xxxxxxxxxx, AGE-SECRET-KEY-1QQQQ..., https://user:password@),
    which the issue requires to survive, or its kind is not a credential."""
    if case["kind"] in NOT_CREDENTIALS:
        return "not a credential"
    if all(devstream._is_token_placeholder(s) or devstream._is_placeholder(s.split(":")[-1], "'")
           for s in case["secrets"]):
        return "placeholder"
    return None


def entropy(token):
    n = len(token)
    return -sum(token.count(c) / n * math.log2(token.count(c) / n) for c in set(token))


def credential_like(text):
    """Whether a negative case still holds a credential-like value: a token of 16 or more
    characters with letters and digits and a Shannon entropy of at least 3.5 bits per character
    (gitleaks' own threshold for generic keys).  The scanners' negatives are mostly of this
    kind: a valid-looking key of the wrong length or prefix for that vendor, or a valid key
    too far from the vendor's name.  A redactor should remove those; its false positives are
    measured on the other negatives, the look-alikes (placeholders, words, documentation)."""
    for tok in re.findall(r"[^\s\"'`]{16,}", text):
        if re.search(r"[0-9]", tok) and re.search(r"[A-Za-z]", tok) and entropy(tok) >= 3.5:
            return True
    return False


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


def caught(case, redact=None):
    redact = redact or devstream.redact
    out = redact(case["text"])
    return not any(s in out for s in case["secrets"])


def false_positive(case, redact=None):
    redact = redact or devstream.redact
    out = redact(case["text"])
    if "keep" in case:                 # own corpus: the named look-alike must survive
        return case["keep"] not in out
    return out != case["text"]


def evaluate(doc, redact=None, policy=True):
    """{kind: [positives, caught, negatives, false positives]}, the misses, and the number of
    positives left out by policy."""
    per, misses, kept = {}, [], 0
    kept_neg = doc.setdefault("_credential_like", [0, 0])
    for case in doc["positives"]:
        if policy and "keep" not in case and by_policy(case):
            kept += 1
            continue
        row = per.setdefault(case["kind"], [0, 0, 0, 0])
        row[0] += 1
        if caught(case, redact):
            row[1] += 1
        else:
            misses.append(("missed", case))
    for case in doc["negatives"]:
        if policy and "keep" not in case and credential_like(case["text"]):
            kept_neg[0] += 1
            if false_positive(case, redact):
                kept_neg[1] += 1
            continue
        row = per.setdefault(case["kind"], [0, 0, 0, 0])
        row[2] += 1
        if false_positive(case, redact):
            row[3] += 1
            misses.append(("false positive", case))
    return per, misses, kept


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
    ap.add_argument("--redactor", metavar="FILE",
                    help="measure the redact() of another devstream.py (an older version, say: "
                         "git show REV:devstream.py > old.py)")
    args = ap.parse_args()
    redact = devstream.redact
    if args.redactor:
        import importlib.util
        spec = importlib.util.spec_from_file_location("devstream_other", args.redactor)
        other = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(other)
        redact = other.redact
    docs = {name: load_source(name) for name in SOURCES}
    docs["devstream"] = load_own()
    print("| source | positives | kinds | recall | kept by policy | look-alike negatives | "
          "false positives | credential-like negatives redacted |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    results = {}
    for name, doc in docs.items():
        per, misses, kept = evaluate(doc, redact, policy=name != "devstream")
        results[name] = (per, misses)
        p, c, n, f = totals(per)
        kinds = sum(1 for r in per.values() if r[0])
        cn, cf = doc["_credential_like"]
        print(f"| {name} | {p} | {kinds} | {pct(c, p)} ({c}/{p}) | {kept} | {n} | "
              f"{pct(f, n)} ({f}/{n}) | {f'{cf}/{cn}' if cn else '-'} |")
    if args.markdown:
        # every kind that is not perfect, then how many kinds are
        for name, (per, _) in results.items():
            worse = [k for k in sorted(per) if per[k][1] < per[k][0] or per[k][3]]
            good = len(per) - len(worse)
            print(f"\n{name}: {good} of {len(per)} kinds at 100% recall with no false positive"
                  + ("; the others:" if worse else "") + "\n")
            if worse:
                print("| kind | recall | false positives |")
                print("|---|---:|---:|")
                for kind in worse:
                    p, c, n, f = per[kind]
                    print(f"| {kind} | {f'{c}/{p}' if p else '-'} | {f'{f}/{n}' if n else '-'} |")
    if args.kinds:
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
