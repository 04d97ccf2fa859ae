#!/usr/bin/env python3
"""Turn the published test cases of open-source secret scanners into DevStream's evaluation data.

    python3 bench/extract_scanner_data.py --gitleaks DIR --trufflehog DIR --detect-secrets DIR

Each DIR is a git repository (a clone or a bare mirror).  The script reads the scanners' test
files with `git show`, evaluates the small subset of Go and Python they build their cases with
(string literals, concatenation, fmt.Sprintf, gitleaks' random-secret helpers), and writes one
JSON file per scanner under tests/data/scanners/: the case texts with the secret each positive
case holds, and the negative cases.  Only data is written; nothing of the scanners' code.

Random parts (gitleaks generates many of its true positives from a regular expression) are drawn
with a fixed seed, so a rerun writes the same files.
"""

import argparse
import ast
import json
import os
import random
import re
import subprocess
import sys
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "data", "scanners")
RNG = random.Random(20261201)


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True,
                          text=True).stdout


def head(repo):
    return git(repo, "rev-parse", "HEAD").strip()


def files(repo, prefix, suffix):
    return [p for p in git(repo, "ls-tree", "-r", "--name-only", "HEAD", prefix).splitlines()
            if p.endswith(suffix)]


def show(repo, path):
    return git(repo, "show", f"HEAD:{path}")


# -- strings from a regular expression (gitleaks' secrets.NewSecret) ----------------------------

def _expand(tree, out):
    from re import _constants as C
    for op, av in tree:
        if op is C.LITERAL:
            out.append(chr(av))
        elif op is C.IN:
            chars = []
            negate = False
            for iop, iav in av:
                if iop is C.LITERAL:
                    chars.append(chr(iav))
                elif iop is C.RANGE:
                    chars.extend(chr(c) for c in range(iav[0], iav[1] + 1))
                elif iop is C.NEGATE:
                    negate = True
                elif iop is C.CATEGORY:
                    chars.extend({C.CATEGORY_DIGIT: "0123456789",
                                  C.CATEGORY_WORD: "abcdefghijklmnopqrstuvwxyz0123456789_",
                                  C.CATEGORY_SPACE: " "}.get(iav, ""))
            if negate:
                chars = [c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                         if c not in chars]
            out.append(RNG.choice(chars))
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
            lo, hi, sub = av
            hi = lo + 8 if hi is C.MAXREPEAT else hi
            for _ in range(RNG.randint(lo, hi)):
                _expand(sub, out)
        elif op is C.SUBPATTERN:
            _expand(av[-1], out)
        elif op is C.BRANCH:
            _expand(RNG.choice(av[1]), out)
        elif op is C.ANY:
            out.append(RNG.choice("abcdefghijklmnopqrstuvwxyz0123456789"))
        elif op is C.CATEGORY:
            out.append({C.CATEGORY_DIGIT: "7", C.CATEGORY_WORD: "k"}.get(av, ""))
        # anchors and assertions produce nothing


def from_regex(pattern, need_digit=False):
    from re import _parser
    tree = _parser.parse(pattern.replace(r"\z", r"\Z"))
    for _ in range(50):
        out = []
        _expand(tree, out)
        s = "".join(out)
        if not need_digit or re.search("[1-9]", s):
            return s
    return s


# -- a tiny evaluator for the Go expressions the test files build cases with ---------------------

TOKEN = re.compile(r'\s+|//[^\n]*|/\*.*?\*/|(?P<raw>`[^`]*`)|(?P<str>"(?:\\.|[^"\\])*")|'
                   r"(?P<chr>'(?:\\.|[^'\\])')|(?P<num>\d+)|(?P<name>[A-Za-z_][\w.]*)|"
                   r"(?P<op>\.\.\.|:=|[+(),{}\[\]=])", re.S)


def go_tokens(src):
    out = []
    for m in TOKEN.finditer(src):
        kind = m.lastgroup
        if kind:
            out.append((kind, m.group(kind)))
    return out


class Unsupported(Exception):
    pass


def go_string(tok):
    kind, text = tok
    if kind == "raw":
        return text[1:-1]
    return ast.literal_eval(text.replace("\\x", "\\x"))


GO_HELPERS = {
    "utils.Numeric": lambda n: f"[0-9]{{{n}}}",
    "utils.Hex": lambda n: f"[a-f0-9]{{{n}}}",
    "utils.AlphaNumeric": lambda n: f"[a-z0-9]{{{n}}}",
    "utils.AlphaNumericExtendedShort": lambda n: f"[a-z0-9_-]{{{n}}}",
    "utils.AlphaNumericExtended": lambda n: f"[a-z0-9=_\\-]{{{n}}}",
    "utils.AlphaNumericExtendedLong": lambda n: f"[a-z0-9\\/=_\\+\\-]{{{n}}}",
    "utils.Hex8_4_4_4_12": lambda: "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
}

# gitleaks' sample contexts: the same secret inside config files and code of several languages
SAMPLE_CONTEXTS = [
    '{i}Token="{s}"', "{i}Token = {s}", '{\n    "{i}_token": "{s}"\n}',
    '{"config.ini": "{I}_TOKEN={s}\\nBACKUP_ENABLED=true"}', "<{i}Token>\n    {s}\n</{i}Token>",
    "{i}_token: {s}", "{i}_token: '{s}'", 'string {i}Token = "{s}";', '{i}Token := "{s}"',
    "{i}Token = '{s}'", 'System.setProperty("{I}_TOKEN", "{s}")', '  "{i}Token" => "{s}"',
    '{i}_TOKEN := "{s}"', '{i}_TOKEN ?= "{s}"',
]


class Labelled(str):
    """A case text that knows which secrets it holds."""
    secrets = ()


def labelled(text, secrets):
    s = Labelled(text)
    s.secrets = tuple(secrets)
    return s


class GoEval:
    def __init__(self, env):
        self.env = env

    def parse(self, toks, i):
        """Evaluate an expression starting at toks[i]; returns (value, next index)."""
        value, i = self.term(toks, i)
        while i < len(toks) and toks[i] == ("op", "+"):
            rhs, i = self.term(toks, i + 1)
            secrets = getattr(value, "secrets", ()) + getattr(rhs, "secrets", ())
            value = labelled(str(value) + str(rhs), secrets) if secrets else str(value) + str(rhs)
        return value, i

    def args(self, toks, i):
        assert toks[i] == ("op", "(")
        i += 1
        out = []
        while toks[i] != ("op", ")"):
            v, i = self.parse(toks, i)
            if i < len(toks) and toks[i] == ("op", "..."):
                i += 1
            out.append(v)
            if toks[i] == ("op", ","):
                i += 1
        return out, i + 1

    def term(self, toks, i):
        kind, text = toks[i]
        if kind in ("raw", "str"):
            return go_string(toks[i]), i + 1
        if kind == "num":
            return text, i + 1
        if kind == "op" and text == "[":
            # []string{...}
            j = i
            while toks[j] != ("op", "{"):
                j += 1
            j += 1
            items = []
            while toks[j] != ("op", "}"):
                v, j = self.parse(toks, j)
                items.append(v)
                if toks[j] == ("op", ","):
                    j += 1
            return items, j + 1
        if kind == "name":
            if i + 1 < len(toks) and toks[i + 1] == ("op", "("):
                args, j = self.args(toks, i + 1)
                return self.call(text, args), j
            if text in self.env:
                return self.env[text], i + 1
            raise Unsupported(text)
        raise Unsupported(text)

    def call(self, name, args):
        if name in GO_HELPERS:
            return GO_HELPERS[name](*args)
        if name == "secrets.NewSecret":
            s = from_regex(args[0])
            return labelled(s, [s])
        if name == "newPlausibleSecret":
            s = from_regex(args[0], need_digit=True)
            return labelled(s, [s])
        if name == "utils.GenerateSampleSecret":
            ident, s = args
            return labelled(f'{ident}_api_token = "{s}"', [str(s)])
        if name == "utils.GenerateSampleSecrets":
            ident, s = args
            return [labelled(c.replace("{i}", ident).replace("{I}", ident.upper())
                             .replace("{s}", s), [str(s)]) for c in SAMPLE_CONTEXTS]
        if name == "append":
            out = list(args[0])
            for a in args[1:]:
                out.extend(a if isinstance(a, list) else [a])
            return out
        if name == "fmt.Sprintf":
            fmt, rest = args[0], list(args[1:])
            secrets = [x for a in rest for x in getattr(a, "secrets", ())]
            text = re.sub(r"%[sqv]", lambda m: str(rest.pop(0)) if rest else "", fmt)
            return labelled(text, secrets) if secrets else text
        if name == "strings.Repeat":
            return str(args[0]) * int(args[1])
        if name == "strings.ToUpper":
            return str(args[0]).upper()
        raise Unsupported(name)


def assignments(body, names_re=r"\w+"):
    """(name, token index of the expression) for `name := expr` and `name = expr` in a body."""
    toks = go_tokens(body)
    for i in range(len(toks) - 2):
        if toks[i][0] == "name" and toks[i + 1] in (("op", ":="), ("op", "=")) and \
                re.fullmatch(names_re, toks[i][1]):
            yield toks[i][1], toks, i + 2


# -- gitleaks -------------------------------------------------------------------------------------

def python_regex(go):
    go = go.replace(r"\z", r"\Z").replace("[[:alnum:]]", "[A-Za-z0-9]")
    go = re.sub(r"\(\?P?<(\w+)>", r"(?P<\1>", go)
    return go


def label_with_rule(text, rule):
    """The secret a gitleaks rule finds in a literal case: its secretGroup, else group 1, else the
    whole match."""
    try:
        rx = re.compile(python_regex(rule["regex"]))
    except (re.error, KeyError):
        return []
    out = []
    for m in rx.finditer(text):
        g = rule.get("secretGroup") or (1 if rx.groups else 0)
        try:
            val = m.group(g) or m.group(0)
        except IndexError:
            val = m.group(0)
        out.append(val)
    return out


def extract_gitleaks(repo):
    rules = {r["id"]: r for r in tomllib.loads(show(repo, "config/gitleaks.toml"))["rules"]}
    pos, neg, skipped = [], [], 0
    for path in files(repo, "cmd/generate/config/rules/", ".go"):
        src = show(repo, path)
        for fm in re.finditer(r"\nfunc (\w+)\(\) \*config\.Rule \{(.*?)\n\}", src, re.S):
            body = fm.group(2)
            rid = re.search(r'RuleID:\s*"([^"]+)"', body)
            if not rid:
                continue
            rid = rid.group(1)
            env = {}
            for name, toks, i in assignments(body):
                try:
                    value, _ = GoEval(env).parse(toks, i)
                except (Unsupported, IndexError, AssertionError, ValueError, SyntaxError,
                        TypeError, re.error):
                    if name in ("tps", "fps"):
                        skipped += 1
                    continue
                if name in ("tps", "fps"):
                    old = env.get(name, [])
                    value = value if isinstance(value, list) else [value]
                    env[name] = value if (old and value[:len(old)] == old) or not old else \
                        old + value
                else:
                    env[name] = value
            for text in env.get("tps", []):
                secrets = list(getattr(text, "secrets", ()))
                if not secrets and rid in rules:
                    secrets = label_with_rule(str(text), rules[rid])
                secrets = [s for s in dict.fromkeys(secrets) if s and s in str(text)]
                if not secrets:
                    skipped += 1
                    continue
                pos.append({"kind": rid, "text": str(text), "secrets": secrets, "path": path})
            for text in env.get("fps", []):
                neg.append({"kind": rid, "text": str(text), "path": path})
    return pos, neg, skipped


# -- trufflehog -----------------------------------------------------------------------------------

SECRET_VAR = re.compile(r"(?i)key|token|secret|pass|pattern|pat\b|cred|auth|pw|sig|private")
NOT_SECRET_VAR = re.compile(r"(?i)id$|sid|domain|url|user|email|host|endpoint|region|org|account"
                            r"|name|invalid|keyword|prefix|tenant|client(?!secret)")


def extract_trufflehog(repo):
    pos, neg, skipped = [], [], 0
    for path in files(repo, "pkg/detectors/", "_test.go"):
        if "integration" in path:
            continue
        src = show(repo, path)
        kind = path.split("/")[2]
        env = {}
        block = re.search(r"\n(?:var|const) \((.*?)\n\)", src, re.S)
        if block:
            for name, toks, i in assignments(block.group(1)):
                try:
                    env[name], _ = GoEval(env).parse(toks, i)
                except (Unsupported, IndexError, AssertionError, ValueError, SyntaxError):
                    pass
        for m in re.finditer(r"\n\s*(\w+)\s*:?=\s*(\"(?:\\.|[^\"\\\n])*\"|`[^`]*`)", src):
            try:
                env.setdefault(m.group(1), go_string(("raw" if m.group(2)[0] == "`" else "str",
                                                      m.group(2))))
            except (ValueError, SyntaxError):
                pass
        pattern_fn = re.search(r"func Test\w*_Pattern\(.*?\n\}", src, re.S)
        if not pattern_fn:
            continue
        body = pattern_fn.group(0)
        for case in re.finditer(r"\{\s*name:\s*(\"[^\"]*\"|`[^`]*`),\s*input:(.*?)\n\s*want:"
                                r"(.*?)\n\s*\},", body, re.S):
            name = go_string(("str" if case.group(1)[0] == '"' else "raw", case.group(1)))
            try:
                text, _ = GoEval(env).parse(go_tokens(case.group(2).strip().rstrip(",")), 0)
                want, _ = GoEval(env).parse(go_tokens(case.group(3).strip().rstrip(",")), 0)
            except (Unsupported, IndexError, AssertionError, ValueError, SyntaxError, KeyError):
                skipped += 1
                continue
            text = str(text)
            want = [str(w) for w in (want if isinstance(want, list) else [want])]
            if not want:
                neg.append({"kind": kind, "case": name, "text": text, "path": path})
                continue
            secrets = []
            for w in want:
                if w in text:
                    secrets.append(w)
                    continue
                parts = [v for k, v in env.items() if isinstance(v, str) and len(v) >= 8 and
                         v in w and v in text and SECRET_VAR.search(k) and
                         not NOT_SECRET_VAR.search(k)]
                secrets.extend(parts)
            secrets = list(dict.fromkeys(secrets))
            if not secrets:
                skipped += 1
                continue
            pos.append({"kind": kind, "case": name, "text": text, "secrets": secrets,
                        "path": path})
    return pos, neg, skipped


# -- detect-secrets -------------------------------------------------------------------------------

def extract_detect_secrets(repo):
    pos, neg, skipped = [], [], 0
    for path in files(repo, "tests/plugins/", "_test.py"):
        kind = os.path.basename(path)[:-len("_test.py")]
        src = show(repo, path)
        tree = ast.parse(src)
        env = {}
        # module constants: strings and lists of (text, secret) cases built with str.format
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                    isinstance(node.targets[0], ast.Name):
                try:
                    env[node.targets[0].id] = eval(compile(ast.Expression(node.value), path,
                                                           "eval"), {"__builtins__": {}}, env)
                except Exception:
                    pass
        for name, value in env.items():
            if name.endswith("TEST_CASES") and isinstance(value, list):
                for case in value:
                    if isinstance(case, tuple) and len(case) == 2 and isinstance(case[0], str):
                        text, secret = case
                        if secret is None:
                            neg.append({"kind": kind, "text": text, "path": path})
                        elif isinstance(secret, str) and secret in text:
                            pos.append({"kind": kind, "text": text, "secrets": [secret],
                                        "path": path})
        for dec in ast.walk(tree):
            if not (isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "parametrize"):
                continue
            try:
                names = ast.literal_eval(dec.args[0])
                cases = ast.literal_eval(dec.args[1])
            except (ValueError, SyntaxError, IndexError):
                skipped += 1
                continue
            names = [n.strip() for n in names.split(",")] if isinstance(names, str) else names
            if names[:2] not in (["payload", "should_flag"], ["line", "should_flag"]):
                continue
            for case in cases:
                text, flag = case[0], case[1]
                if not isinstance(text, str):
                    continue
                if flag:
                    secret = best_token(text)
                    if secret:
                        pos.append({"kind": kind, "text": text, "secrets": [secret],
                                    "path": path})
                else:
                    neg.append({"kind": kind, "text": text, "path": path})
    return pos, neg, skipped


def best_token(text):
    """The credential in a one-line positive case: its longest run of token characters."""
    runs = re.findall(r"[A-Za-z0-9+/=_\-.:]{8,}", text)
    return max(runs, key=len) if runs else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gitleaks")
    ap.add_argument("--trufflehog")
    ap.add_argument("--detect-secrets", dest="detect_secrets")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    for name, repo, fn, url in (
            ("gitleaks", args.gitleaks, extract_gitleaks, "https://github.com/gitleaks/gitleaks"),
            ("trufflehog", args.trufflehog, extract_trufflehog,
             "https://github.com/trufflesecurity/trufflehog"),
            ("detect_secrets", args.detect_secrets, extract_detect_secrets,
             "https://github.com/Yelp/detect-secrets")):
        if not repo:
            continue
        pos, neg, skipped = fn(repo)
        doc = {"source": url, "commit": head(repo), "positives": pos, "negatives": neg}
        with open(os.path.join(OUT, name + ".json"), "w") as fh:
            json.dump(doc, fh, indent=0, ensure_ascii=False)
            fh.write("\n")
        kinds = len({p["kind"] for p in pos})
        print(f"{name}: {len(pos)} positives of {kinds} kinds, {len(neg)} negatives, "
              f"{skipped} cases not evaluable", file=sys.stderr)


if __name__ == "__main__":
    main()
