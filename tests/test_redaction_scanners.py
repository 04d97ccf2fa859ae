"""Redaction measured on test data DevStream did not write: the published true and false
positives of gitleaks, trufflehog and detect-secrets (tests/data/scanners/, sources and licenses
in tests/data/SOURCES.md), with the thresholds the README reports against."""
import os
import sys

import pytest

import devstream

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "bench"))
import redaction as evaluation  # noqa: E402

SOURCES = evaluation.SOURCES


@pytest.mark.parametrize("source", SOURCES)
def test_scanner_corpus_recall_and_false_positives(source):
    doc = evaluation.load_source(source)
    assert len(doc["positives"]) >= 40 and len(doc["negatives"]) >= 40 and doc["commit"]
    per, misses, kept = evaluation.evaluate(doc)
    positives, caught, negatives, false = evaluation.totals(per)
    assert kept <= positives, "most positives are measured, not set aside"
    assert caught / positives >= 0.95, [c["secrets"] for w, c in misses if w == "missed"][:20]
    assert false / negatives <= 0.05, [c["text"][:80] for w, c in misses if w != "missed"]


def test_own_corpus_every_secret_and_the_look_alikes():
    doc = evaluation.load_own()
    kinds = {c["kind"] for c in doc["positives"]}
    assert len(doc["positives"]) >= 150 and len(kinds) >= 80
    per, misses, _ = evaluation.evaluate(doc, policy=False)
    positives, caught, negatives, false = evaluation.totals(per)
    assert caught == positives, [c["kind"] for w, c in misses if w == "missed"]
    assert false / negatives <= 0.03, [c["kind"] for w, c in misses if w != "missed"]


@pytest.mark.parametrize("source", SOURCES + ("devstream",))
def test_redaction_is_idempotent(source):
    """The store redacts what it writes again: a second pass must change nothing."""
    doc = evaluation.load_own() if source == "devstream" else evaluation.load_source(source)
    for case in doc["positives"] + doc["negatives"]:
        once = devstream.redact(case["text"])
        assert devstream.redact(once) == once, case["text"][:120]
