#!/usr/bin/env python3
"""DevStream: a memory and a task graph for AI coding agents, run as the agent's hook command.

Every hook event is one short process: read the event's JSON on stdin, read or write one SQLite
database, print at most one JSON object, exit 0.  The same program is the `devstream` command
line.  The sections below, in order:

    paths and configuration . json . logging . store . projects . redaction . memory . search
    embedder . tasks . planner . sessions . context . hooks . install . doctor . command line

Speed rule: the hook fast path imports only builtin modules and apsw.  `json` and `re` are not
imported there (each costs more than the whole interpreter start-up budget allows); httpx,
msgspec, structlog and pybreaker are imported inside the functions that need them.
"""

import os
import sys
import time

import _json
import _thread

VERSION = "0.1.0"
SCHEMA_VERSION = 4          # see MIGRATIONS in the store section

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class UserError(Exception):
    """A problem the user can fix; the CLI prints its message on one line and exits 1."""


class UsageError(UserError):
    """Bad command-line usage; exit 2."""


# ================================================================================================
# paths and configuration
# ================================================================================================

def _xdg(var, default_rel):
    base = os.environ.get(var) or os.path.join(os.path.expanduser("~"), default_rel)
    return os.path.join(base, "devstream")


class Paths:
    """Where everything lives.  DEVSTREAM_HOME, when set, holds all of it."""

    def __init__(self, env=None):
        env = os.environ if env is None else env
        home = env.get("DEVSTREAM_HOME")
        if home:
            home = os.path.abspath(os.path.expanduser(home))
            self.data = home
            self.config_dir = home
            self.logs = os.path.join(home, "logs")
        else:
            self.data = _xdg("XDG_DATA_HOME", ".local/share")
            self.config_dir = _xdg("XDG_CONFIG_HOME", ".config")
            self.logs = _xdg("XDG_STATE_HOME", ".local/state")
        self.db = os.path.join(self.data, "devstream.db")
        self.config = os.path.join(self.config_dir, "config.toml")
        self.log = os.path.join(self.logs, "devstream.log")
        self.app = os.path.join(self.data, "app")          # extracted zipapp builds
        self.bin = os.path.join(self.data, "bin")          # the launcher
        self.pyz = os.path.join(self.data, "devstream.pyz")


# Defaults; the config file (TOML, same names) and then the environment override them.
DEFAULTS = {
    "ollama_url": "http://127.0.0.1:11434",
    "embed_model": "embeddinggemma",
    "chat_model": "",
    "embed_mode": "background",            # background | inline | off
    "ignored_projects": [],
    "log_level": "warning",
    "hook_deadline_ms": 2500,              # whole-hook deadline, far below the host's timeout
    "session_end_deadline_ms": 1200,       # Claude Code gives all SessionEnd hooks 1.5 s together
    "query_embed_deadline_ms": 300,        # query embedding on UserPromptSubmit; late = FTS only
    "budget_session_start": 6000,
    "budget_prompt": 3000,
    "budget_pre_tool": 1500,
    "vector_floor": 0.0,                   # 0 = the built-in floor for the model (see search)
    "keep_alive": "30m",
    "chat_timeout_s": 120,
    "retention_days": 0,                   # gc default; 0 = keep everything
}
HARD_CAP_CHARS = 9000                      # Claude Code spills hook output above 10,000 chars
ENV_KEYS = {
    "DEVSTREAM_OLLAMA_URL": "ollama_url",
    "DEVSTREAM_EMBED_MODEL": "embed_model",
    "DEVSTREAM_CHAT_MODEL": "chat_model",
    "DEVSTREAM_EMBED_MODE": "embed_mode",
    "DEVSTREAM_LOG_LEVEL": "log_level",
}


def _read_config_file(path):
    """Parse config.toml, caching the result next to it (tomllib pulls in `re`; the cache is a
    marshal file keyed on the file's size and mtime, so hooks normally skip the parse)."""
    try:
        st = os.stat(path)
    except OSError:
        return {}
    import marshal
    stamp = (st.st_mtime_ns, st.st_size)
    cache = path + ".cache"
    try:
        with open(cache, "rb") as fh:
            cached_stamp, data = marshal.load(fh)
        if tuple(cached_stamp) == stamp:
            return data
    except (OSError, ValueError, EOFError, TypeError):
        pass
    import tomllib
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"cannot read config {path}: {exc}") from None
    data = {k: v for k, v in data.items() if k in DEFAULTS}
    try:
        tmp = f"{cache}.{os.getpid()}"
        with open(tmp, "wb") as fh:
            marshal.dump((stamp, data), fh)
        os.replace(tmp, cache)
    except (OSError, ValueError):
        pass
    return data


class Config:
    def __init__(self, env=None, paths=None):
        env = os.environ if env is None else env
        self.env = env
        self.paths = paths or Paths(env)
        values = dict(DEFAULTS)
        values.update(_read_config_file(self.paths.config))
        for var, key in ENV_KEYS.items():
            if env.get(var):
                values[key] = env[var]
        for key, default in DEFAULTS.items():
            if isinstance(default, int) and not isinstance(values[key], int):
                try:
                    values[key] = int(values[key])
                except (TypeError, ValueError):
                    values[key] = default
        if values["embed_mode"] not in ("background", "inline", "off"):
            values["embed_mode"] = "background"
        self.values = values
        self.disabled = env.get("DEVSTREAM_DISABLE", "") not in ("", "0", "false", "no")

    def __getattr__(self, name):
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None


# ================================================================================================
# json: stdlib's C scanner and encoder used directly (the `json` package imports `re`)
# ================================================================================================

def _json_constant(name):
    raise ValueError(f"{name} is not valid JSON")


class _ScanOptions:
    strict = False
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_json_constant)


_scan_once = _json.make_scanner(_ScanOptions())
_JSON_WS = " \t\n\r"


def _json_default(obj):
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


_encode_ascii = _json.make_encoder(None, _json_default, _json.encode_basestring_ascii,
                                   None, ":", ",", False, False, False)
_encode_utf8 = _json.make_encoder(None, _json_default, _json.encode_basestring,
                                  None, ":", ",", False, False, False)


def json_loads(text):
    """Decode one JSON document; ValueError on anything else."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    start = len(text) - len(text.lstrip(_JSON_WS))
    try:
        obj, end = _scan_once(text, start)
    except StopIteration as exc:
        raise ValueError(f"not JSON (at character {exc.value})") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if text[end:].strip(_JSON_WS):
        raise ValueError(f"extra data after JSON (at character {end})")
    return obj


def json_dumps(obj, ascii_only=True):
    return "".join((_encode_ascii if ascii_only else _encode_utf8)(obj, 0))


def json_pretty(obj):
    import json
    return json.dumps(obj, indent=2, ensure_ascii=False)


# ================================================================================================
# logging: JSON lines with structlog's field names, one os.write per record, bounded size
# ================================================================================================

LOG_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
LOG_MAX_BYTES = 2_000_000       # the log is rotated once to devstream.log.1 past this size
_log_state = {"path": None, "level": 30, "context": {}}


def log_setup(path, level="warning", **context):
    _log_state["path"] = path
    _log_state["level"] = LOG_LEVELS.get(str(level).lower(), 30)
    _log_state["context"] = context


def iso_time(ts=None):
    ts = time.time() if ts is None else ts
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%03dZ" % (int(ts * 1000) % 1000)


def log(level, event, **fields):
    """Append one record.  Never raises: a log that cannot be written goes to stderr instead
    (which Claude Code keeps in its debug log, never in the conversation)."""
    try:
        if LOG_LEVELS.get(level, 40) < _log_state["level"]:
            return
        record = {"event": event, "level": level, "timestamp": iso_time()}
        record.update(_log_state["context"])
        for key, value in fields.items():
            record[key] = redact(value) if isinstance(value, str) else value
        line = (json_dumps(record) + "\n").encode("utf-8", "replace")
        path = _log_state["path"]
        if path:
            try:
                _append_log(path, line)
                return
            except OSError:
                pass
        os.write(2, line)
    except Exception:       # logging must never be the thing that breaks a hook
        pass


def _append_log(path, line):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)          # O_APPEND: one write = one whole line, even across processes
        if os.fstat(fd).st_size > LOG_MAX_BYTES:
            os.replace(path, path + ".1")
    finally:
        os.close(fd)


# ================================================================================================
# store: one SQLite database (APSW), WAL, forward-only migrations keyed on PRAGMA user_version
# ================================================================================================

MIGRATIONS = [
    # 1: projects, sessions, memories with full-text search, injections, breaker state
    """
    CREATE TABLE projects(
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,           -- git common dir, directory, or DEVSTREAM_PROJECT
        root TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at REAL NOT NULL);
    CREATE TABLE sessions(
        id TEXT PRIMARY KEY,                -- the agent's own session_id
        project_id INTEGER NOT NULL REFERENCES projects(id),
        cli TEXT NOT NULL DEFAULT 'claude',
        source TEXT,
        status TEXT NOT NULL DEFAULT 'active',
        started_at REAL NOT NULL,
        last_seen_at REAL NOT NULL,
        ended_at REAL,
        end_reason TEXT,
        transcript_path TEXT,
        turns INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX sessions_project ON sessions(project_id, started_at);
    CREATE TABLE memories(
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,            -- m-xxxxxx
        project_id INTEGER NOT NULL REFERENCES projects(id),
        type TEXT NOT NULL,
        content TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '',      -- space separated
        path TEXT,                          -- project-relative file the memory is about
        session_id TEXT,
        task_id TEXT,
        created_at REAL NOT NULL,
        content_hash TEXT NOT NULL,
        UNIQUE(project_id, content_hash));
    CREATE INDEX memories_recent ON memories(project_id, created_at);
    CREATE INDEX memories_type ON memories(project_id, type, created_at);
    CREATE INDEX memories_path ON memories(project_id, path) WHERE path IS NOT NULL;
    CREATE INDEX memories_session ON memories(session_id);
    -- contentless: the text lives once, in memories; 'terms' holds split identifiers and stems
    CREATE VIRTUAL TABLE memories_fts USING fts5(
        content, terms, content='', contentless_delete=1,
        tokenize="unicode61 remove_diacritics 2 tokenchars '_'");
    CREATE TABLE injections(
        session_id TEXT NOT NULL,
        item TEXT NOT NULL,                 -- memory or task id, or a block name
        event TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY(session_id, item));
    CREATE TABLE breaker(
        name TEXT PRIMARY KEY,
        state TEXT NOT NULL DEFAULT 'closed',
        fail_counter INTEGER NOT NULL DEFAULT 0,
        success_counter INTEGER NOT NULL DEFAULT 0,
        opened_at REAL);
    """,
    # 2: tasks and their dependency DAG, with every status change kept
    """
    CREATE TABLE tasks(
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,            -- t-xxxxxx
        project_id INTEGER NOT NULL REFERENCES projects(id),
        title TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'open',
        priority INTEGER NOT NULL DEFAULT 2,
        parent TEXT,
        estimate_minutes INTEGER,
        labels TEXT NOT NULL DEFAULT '',
        block_reason TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        closed_at REAL);
    CREATE INDEX tasks_ready ON tasks(project_id, status, priority, created_at);
    CREATE INDEX tasks_parent ON tasks(parent) WHERE parent IS NOT NULL;
    CREATE TABLE task_deps(
        task_id TEXT NOT NULL,
        depends_on TEXT NOT NULL,
        PRIMARY KEY(task_id, depends_on)) WITHOUT ROWID;
    CREATE INDEX task_deps_reverse ON task_deps(depends_on);
    CREATE TABLE task_events(
        task_id TEXT NOT NULL,
        at REAL NOT NULL,
        from_status TEXT,
        to_status TEXT NOT NULL,
        session_id TEXT,
        note TEXT);
    CREATE INDEX task_events_task ON task_events(task_id, at);
    """,
    # 3: embeddings: one vec0 table per (model, dimension) space, so vectors never mix
    """
    CREATE TABLE embed_spaces(
        id INTEGER PRIMARY KEY,
        model TEXT NOT NULL,
        dim INTEGER NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE(model, dim));
    ALTER TABLE memories ADD COLUMN embed_space INTEGER;   -- space of its vector, NULL = none
    CREATE TABLE embed_pending(
        memory_rowid INTEGER PRIMARY KEY);
    INSERT INTO embed_pending(memory_rowid) SELECT rowid FROM memories;
    CREATE TABLE query_cache(
        key TEXT PRIMARY KEY,               -- space id + query hash
        vector BLOB NOT NULL,
        at REAL NOT NULL);
    CREATE TABLE state(
        key TEXT PRIMARY KEY,
        value TEXT);
    """,
    # 4: session detail for summaries and compaction snapshots
    """
    ALTER TABLE sessions ADD COLUMN prompts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN tool_events INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN errors INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN compactions INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN resumes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN summary_id TEXT;
    ALTER TABLE sessions ADD COLUMN imported INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE session_snapshots(
        session_id TEXT NOT NULL,
        at REAL NOT NULL,
        trigger TEXT,
        content TEXT NOT NULL);
    CREATE INDEX session_snapshots_session ON session_snapshots(session_id, at);
    """,
]
assert len(MIGRATIONS) == SCHEMA_VERSION


class StoreError(Exception):
    """The database cannot be used (locked, corrupt, unwritable, from a newer version)."""


def vec_extension_path():
    """sqlite-vec's loadable library, found on sys.path without importing the package
    (importing it costs ~10 ms, ~60 ms when numpy is installed)."""
    for base in sys.path:
        stem = os.path.join(base or ".", "sqlite_vec", "vec0")
        for suffix in (".so", ".dylib", ".dll"):
            if os.path.exists(stem + suffix):
                return stem
    return None


def new_id(prefix, nbytes=3):
    return prefix + os.urandom(nbytes).hex()


class Store:
    """The one database.  Writes go through `write()` (BEGIN IMMEDIATE, so a writer never has to
    upgrade a read lock and hit a snapshot error under concurrency)."""

    def __init__(self, path, busy_ms=5000, create=True, migrate=True):
        import apsw
        self.apsw = apsw
        self.path = path
        self._vec_loaded = False
        if create:
            d = os.path.dirname(path)
            if d and not os.path.isdir(d):
                os.makedirs(d, mode=0o700, exist_ok=True)
            flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
        else:
            if not os.path.exists(path):
                raise StoreError(f"no database at {path}")
            flags = apsw.SQLITE_OPEN_READWRITE
        self.conn = apsw.Connection(path, flags=flags)
        self.conn.setbusytimeout(int(busy_ms))
        mode = self.one("PRAGMA journal_mode")
        if mode is None or mode[0] != "wal":
            self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.version = self.one("PRAGMA user_version")[0]
        if self.version > SCHEMA_VERSION:
            raise StoreError(f"database schema {self.version} is newer than this devstream "
                             f"({SCHEMA_VERSION}); upgrade devstream")
        if migrate and self.version < SCHEMA_VERSION:
            self.migrate()

    # -- basic access ------------------------------------------------------------------------
    def execute(self, sql, params=()):
        return self.conn.execute(sql, params)

    def one(self, sql, params=()):
        for row in self.conn.execute(sql, params):
            return row
        return None

    def all(self, sql, params=()):
        return list(self.conn.execute(sql, params))

    def scalar(self, sql, params=(), default=None):
        row = self.one(sql, params)
        return default if row is None or row[0] is None else row[0]

    def write(self):
        return _WriteTxn(self.conn)

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass

    # -- schema ------------------------------------------------------------------------------
    def migrate(self, target=SCHEMA_VERSION):
        """Apply each missing migration in its own transaction, re-reading the version under the
        write lock so concurrent first runs do not both migrate."""
        while True:
            with self.write():
                current = self.one("PRAGMA user_version")[0]
                if current >= target:
                    self.version = current
                    return
                self.conn.execute(MIGRATIONS[current])
                self.conn.execute(f"PRAGMA user_version={current + 1}")

    def load_vec(self):
        """Load sqlite-vec into this connection (0.1 ms); False when it is not installed."""
        if self._vec_loaded:
            return True
        path = vec_extension_path()
        if not path:
            return False
        try:
            self.conn.enable_load_extension(True)
            self.conn.load_extension(path)
            self.conn.enable_load_extension(False)
        except self.apsw.Error as exc:
            log("warning", "store.vec_load_failed", error=str(exc))
            return False
        self._vec_loaded = True
        return True

    # -- shared helpers ----------------------------------------------------------------------
    def project_id(self, project, create=True):
        row = self.one("SELECT id FROM projects WHERE key=?", (project.key,))
        if row:
            return row[0]
        if not create:
            return None
        self.execute("INSERT OR IGNORE INTO projects(key, root, name, created_at) VALUES(?,?,?,?)",
                     (project.key, project.root, project.name, time.time()))
        return self.one("SELECT id FROM projects WHERE key=?", (project.key,))[0]

    def get_state(self, key, default=None):
        return self.scalar("SELECT value FROM state WHERE key=?", (key,), default)

    def set_state(self, key, value):
        self.execute("INSERT INTO state(key, value) VALUES(?,?) "
                     "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))


class _WriteTxn:
    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            try:
                self.conn.execute("ROLLBACK")
            except Exception:
                pass
        return False


def open_store(cfg, busy_ms=5000, create=True):
    """Open the database, turning SQLite's failures into one clear StoreError."""
    try:
        import apsw
    except ImportError as exc:
        raise StoreError(f"apsw is not installed ({exc})") from None
    try:
        return Store(cfg.paths.db, busy_ms=busy_ms, create=create)
    except apsw.BusyError:
        raise StoreError("database is locked by another writer") from None
    except (apsw.NotADBError, apsw.CorruptError):
        raise StoreError(f"database file is corrupt: {cfg.paths.db}") from None
    except (apsw.CantOpenError, apsw.ReadOnlyError, apsw.IOError, apsw.FullError,
            PermissionError) as exc:
        raise StoreError(f"cannot open database {cfg.paths.db}: {type(exc).__name__}: {exc}") \
            from None
    except OSError as exc:
        raise StoreError(f"cannot create data directory: {exc}") from None


# ================================================================================================
# projects: the git common directory's repository (so worktrees share memory), else the directory
# ================================================================================================

class Project:
    __slots__ = ("key", "root", "name", "top")

    def __init__(self, key, root, name, top):
        self.key, self.root, self.name, self.top = key, root, name, top

    def rel(self, path):
        """A path relative to the working tree top (or root) when inside it, else absolute."""
        if not path:
            return path
        path = os.path.normpath(path)
        for base in (self.top, self.root):
            if base and (path == base or path.startswith(base.rstrip("/") + "/")):
                return os.path.relpath(path, base)
        return path


def _read_small(path):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as fh:
            return fh.read(4096).strip()
    except OSError:
        return None


def find_project(cwd=None, env=None):
    env = os.environ if env is None else env
    override = env.get("DEVSTREAM_PROJECT")
    if override:
        if os.sep in override or override.startswith("~") or override == ".":
            path = os.path.realpath(os.path.expanduser(override))
            return Project(path, path, os.path.basename(path) or path, path)
        return Project(override, override, override, cwd or os.getcwd())
    start = cwd or env.get("CLAUDE_PROJECT_DIR") or os.getcwd()
    start = os.path.realpath(start)
    d = start
    while True:
        dotgit = os.path.join(d, ".git")
        if os.path.isdir(dotgit):
            common = dotgit
            if not os.path.exists(os.path.join(dotgit, "HEAD")):
                common = None       # an empty .git directory is not a repository
            if common:
                break
        elif os.path.isfile(dotgit):
            text = _read_small(dotgit) or ""
            if text.startswith("gitdir:"):
                gitdir = os.path.normpath(os.path.join(d, text[7:].strip()))
                rel = _read_small(os.path.join(gitdir, "commondir"))
                common = os.path.normpath(os.path.join(gitdir, rel)) if rel else gitdir
                break
        parent = os.path.dirname(d)
        if parent == d:
            return Project(start, start, os.path.basename(start) or start, start)
        d = parent
    common = os.path.realpath(common)
    root = os.path.dirname(common) if os.path.basename(common) == ".git" else common
    name = os.path.basename(root)
    if name.endswith(".git"):
        name = name[:-4]
    return Project(common, root, name or root, d)


def project_ignored(project, cfg):
    for base in {project.top, project.root}:
        if base and os.path.exists(os.path.join(base, ".devstream-ignore")):
            return True
    ignored = cfg.ignored_projects
    if isinstance(ignored, str):
        ignored = [ignored]
    for item in ignored or ():
        item = str(item)
        if item in (project.name, project.key, project.root):
            return True
        if os.path.realpath(os.path.expanduser(item)) in (project.root, project.key):
            return True
    return False


# ================================================================================================
# redaction (placeholder until the memory section fills it in)
# ================================================================================================

def redact(text):
    return text


# ================================================================================================
# hooks: one event on stdin, at most one JSON object on stdout, always exit 0
# ================================================================================================

MAX_PAYLOAD_BYTES = 64 * 1024 * 1024   # beyond this the event is dropped unread
CONTEXT_EVENTS = ("SessionStart", "UserPromptSubmit", "PreToolUse")


class HookInputError(Exception):
    """The payload is not a hook event we can read."""


class Hook:
    """One hook invocation: the payload, the project, and a lazily opened store."""

    def __init__(self, payload, cfg, cli="claude", deadline=None):
        self.payload = payload
        self.cfg = cfg
        self.cli = cli
        self.event = payload["hook_event_name"]
        self.session_id = str(payload.get("session_id") or "")
        cwd = payload.get("cwd")
        self.cwd = cwd if isinstance(cwd, str) and cwd else None
        self.deadline = deadline or (time.monotonic() + cfg.hook_deadline_ms / 1000)
        self._project = None
        self._store = None
        self._project_id = None

    @property
    def project(self):
        if self._project is None:
            self._project = find_project(self.cwd, self.cfg.env)
        return self._project

    def remaining_ms(self):
        return max(0, int((self.deadline - time.monotonic()) * 1000))

    @property
    def store(self):
        if self._store is None:
            # leave a margin under the deadline so a locked database ends in a log line, not a kill
            busy = max(50, self.remaining_ms() - 250)
            self._store = open_store(self.cfg, busy_ms=busy)
        return self._store

    @property
    def project_id(self):
        if self._project_id is None:
            self._project_id = self.store.project_id(self.project)
        return self._project_id

    def close(self):
        if self._store is not None:
            self._store.close()


def read_stdin_bytes(limit=MAX_PAYLOAD_BYTES):
    chunks, size = [], 0
    while True:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise HookInputError(f"payload larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_payload(raw):
    if not raw.strip():
        raise HookInputError("empty stdin")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HookInputError(f"payload is not UTF-8 (byte {exc.start})") from None
    try:
        payload = json_loads(text)
    except ValueError as exc:
        raise HookInputError(f"payload is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise HookInputError(f"payload is a JSON {type(payload).__name__}, not an object")
    event = payload.get("hook_event_name")
    if not isinstance(event, str) or not event:
        raise HookInputError("payload has no hook_event_name")
    return payload


# Gemini CLI and others name events differently; their hooks are mapped onto Claude's names.
EVENT_ALIASES = {
    "gemini": {"BeforeAgent": "UserPromptSubmit", "AfterTool": "PostToolUse",
               "BeforeTool": "PreToolUse", "AfterAgent": "Stop", "PreCompress": "PreCompact"},
}
TOOL_ALIASES = {
    "run_shell_command": "Bash", "write_file": "Write", "replace": "Edit", "edit": "Edit",
    "read_file": "Read", "glob": "Glob", "grep_search": "Grep", "list_directory": "LS",
    "apply_patch": "Edit",
}


def on_session_start(hook):
    p = hook.payload
    source = str(p.get("source") or "startup")
    now = time.time()
    store = hook.store
    with store.write():
        pid = hook.project_id
        row = store.one("SELECT status FROM sessions WHERE id=?", (hook.session_id,))
        if row is None:
            store.execute(
                "INSERT INTO sessions(id, project_id, cli, source, status, started_at, last_seen_at,"
                " transcript_path) VALUES(?,?,?,?, 'active', ?,?,?)",
                (hook.session_id, pid, hook.cli, source, now, now, p.get("transcript_path")))
        else:
            store.execute(
                "UPDATE sessions SET status='active', last_seen_at=?, ended_at=NULL,"
                " resumes = resumes + (?='resume'), compactions = compactions + (?='compact')"
                " WHERE id=?", (now, source, source, hook.session_id))
    return None


def on_stop(hook):
    with hook.store.write():
        hook.store.execute("UPDATE sessions SET last_seen_at=?, turns=turns+1 WHERE id=?",
                           (time.time(), hook.session_id))
    return None


def on_session_end(hook):
    now = time.time()
    reason = str(hook.payload.get("reason") or "other")
    with hook.store.write():
        hook.store.execute("UPDATE sessions SET status='ended', ended_at=?, last_seen_at=?,"
                           " end_reason=? WHERE id=?", (now, now, reason, hook.session_id))
    return None


HANDLERS = {
    "SessionStart": on_session_start,
    "Stop": on_stop,
    "SessionEnd": on_session_end,
}


def context_envelope(event, text):
    return {"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}}


def _watchdog(seconds, event_box):
    """Runs in a side thread: if the hook is still running at its deadline, log and leave
    with exit 0.  os._exit skips cleanup; an open write transaction is rolled back by SQLite."""
    time.sleep(seconds)
    log("warning", "hook.deadline", hook_event=event_box[0], deadline_s=seconds)
    os._exit(0)


def run_hook(cli="claude"):
    """Entry point of `devstream hook`.  Whatever happens: exit 0, at most one JSON object."""
    started = time.monotonic()
    event_box = ["?"]
    try:
        cfg = Config()
        log_setup(cfg.paths.log, cfg.log_level, cli=cli)
        if cfg.disabled:
            return 0
        deadline_s = cfg.hook_deadline_ms / 1000
        _thread.start_new_thread(_watchdog, (deadline_s, event_box))
        payload = parse_payload(read_stdin_bytes())
        event = payload["hook_event_name"]
        event = EVENT_ALIASES.get(cli, {}).get(event, event)
        payload["hook_event_name"] = event
        event_box[0] = event
        handler = HANDLERS.get(event)
        if handler is None:
            log("info", "hook.ignored_event", hook_event=event)
            return 0
        if event == "SessionEnd":
            deadline_s = min(deadline_s, cfg.session_end_deadline_ms / 1000)
        hook = Hook(payload, cfg, cli, deadline=started + deadline_s)
        try:
            if project_ignored(hook.project, cfg):
                return 0
            text = handler(hook)
        finally:
            hook.close()
        if text and event in CONTEXT_EVENTS:
            out = json_dumps(context_envelope(event, text[:HARD_CAP_CHARS])) + "\n"
            os.write(1, out.encode("ascii"))
        return 0
    except HookInputError as exc:
        log("warning", "hook.bad_input", error=str(exc))
    except StoreError as exc:
        log("error", "hook.store_unavailable", hook_event=event_box[0], error=str(exc))
    except BaseException as exc:        # noqa: BLE001 - fail open on anything at all
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_name}:{tb.tb_lineno}" if tb else "?"
        log("error", "hook.failed", hook_event=event_box[0],
            error=f"{type(exc).__name__}: {exc}", where=where)
    return 0


# ================================================================================================
# install: hook registration in each agent CLI's settings, merged, backed up, atomic
# ================================================================================================

CLI_NAMES = ("claude", "gemini", "codex", "qwen")
HOOK_MARKER = " hook --cli "            # every command DevStream registers contains this


def settings_path(cli, scope="user", project_dir=None, env=None):
    env = os.environ if env is None else env
    home = os.path.expanduser("~")
    if scope == "project":
        base = os.path.abspath(project_dir or os.getcwd())
        # project scope uses the personal, uncommitted file: the command holds this machine's paths
        return {
            "claude": os.path.join(base, ".claude", "settings.local.json"),
            "gemini": os.path.join(base, ".gemini", "settings.json"),
            "codex": os.path.join(base, ".codex", "hooks.json"),
            "qwen": os.path.join(base, ".qwen", "settings.json"),
        }[cli]
    if cli == "claude":
        return os.path.join(env.get("CLAUDE_CONFIG_DIR") or os.path.join(home, ".claude"),
                            "settings.json")
    return {
        "gemini": os.path.join(home, ".gemini", "settings.json"),
        "codex": os.path.join(home, ".codex", "hooks.json"),
        "qwen": os.path.join(home, ".qwen", "settings.json"),
    }[cli]


def _shell_quote(text):
    if text and all(c.isalnum() or c in "/._-+=:@%," for c in text):
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"


def code_paths():
    """Directories the launcher must put on sys.path: this module's and apsw's."""
    paths = [os.path.dirname(os.path.abspath(__file__))]
    try:
        import apsw
        paths.append(os.path.dirname(os.path.dirname(os.path.abspath(apsw.__file__))))
    except ImportError:
        pass
    out = []
    for p in paths:
        if p not in out:
            out.append(p)
    return out


def launcher_source(python, paths):
    return (f"#!{python} -IS\n"
            "# DevStream launcher, written by `devstream install`: starts without site-packages\n"
            "# scanning or the zipapp bootstrap, so a hook costs little more than the interpreter.\n"
            "import sys\n"
            f"sys.path[:0] = {paths!r}\n"
            "from devstream import main\n"
            "sys.exit(main())\n")


def launcher_path(cfg):
    return os.path.join(cfg.paths.bin, "devstream")


def hook_command(cfg, cli):
    python = os.path.abspath(sys.executable)
    return f"{_shell_quote(python)} -IS {_shell_quote(launcher_path(cfg))} hook --cli {cli}"


def template_dirs():
    here = os.path.dirname(os.path.abspath(__file__))
    return [os.path.join(here, "hooks"), os.path.join(here, "devstream_hooks")]


def load_template(cli):
    import json
    for d in template_dirs():
        path = os.path.join(d, f"{cli}.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                return json.load(fh)
    raise UserError(f"no hook template for {cli!r} (looked in {', '.join(template_dirs())})")


def _fill(obj, command):
    if isinstance(obj, dict):
        return {k: _fill(v, command) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fill(v, command) for v in obj]
    if isinstance(obj, str):
        return obj.replace("{command}", command)
    return obj


def is_devstream_handler(handler):
    cmd = handler.get("command") if isinstance(handler, dict) else None
    return isinstance(cmd, str) and HOOK_MARKER in cmd and "devstream" in cmd


def strip_devstream_hooks(settings):
    """Remove DevStream's handlers (and matcher groups left empty by that) from settings."""
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return settings
    for event in list(hooks):
        groups = hooks[event]
        if not isinstance(groups, list):
            continue
        kept = []
        for group in groups:
            if isinstance(group, dict) and isinstance(group.get("hooks"), list):
                handlers = [h for h in group["hooks"] if not is_devstream_handler(h)]
                if len(handlers) != len(group["hooks"]):
                    if not handlers:
                        continue
                    group = dict(group, hooks=handlers)
            kept.append(group)
        if kept:
            hooks[event] = kept
        else:
            del hooks[event]
    if not hooks:
        del settings["hooks"]
    return settings


def merge_devstream_hooks(settings, template_hooks):
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise UserError("settings file has a 'hooks' value that is not an object; fix it first")
    for event, groups in template_hooks.items():
        existing = hooks.setdefault(event, [])
        if not isinstance(existing, list):
            raise UserError(f"settings 'hooks.{event}' is not a list; fix it first")
        existing.extend(groups)
    return settings


def read_settings(path):
    import json
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return None, {}
    if not raw.strip():
        return raw, {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); DevStream will not touch it") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} does not hold a JSON object; DevStream will not touch it")
    return raw, data


def write_atomic(path, data_bytes, mode=None):
    d = os.path.dirname(path)
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, f".{os.path.basename(path)}.devstream-{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode or 0o644)
    try:
        os.write(fd, data_bytes)
        os.fsync(fd)
    finally:
        os.close(fd)
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)


def update_settings(path, transform, dry_run=False):
    """Apply transform(dict) to a settings file.  Returns (changed, new_text).  Writes a backup
    of the previous file and replaces it atomically; an unchanged result writes nothing."""
    import copy
    import json
    raw, data = read_settings(path)
    new = transform(copy.deepcopy(data))
    changed = new != data
    text = json.dumps(new, indent=2, ensure_ascii=False) + "\n"
    if changed and not dry_run:
        mode = None
        if raw is not None:
            mode = os.stat(path).st_mode & 0o777
            write_atomic(path + ".devstream-backup", raw, mode)
        write_atomic(path, text.encode("utf-8"), mode)
    return changed, text


def install_launcher(cfg):
    python = os.path.abspath(sys.executable)
    source = launcher_source(python, code_paths())
    path = launcher_path(cfg)
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == source:
                return path, False
    except OSError:
        pass
    write_atomic(path, source.encode("utf-8"), 0o755)
    return path, True


def link_on_path(target):
    """~/.local/bin/devstream -> the launcher.  Returns (link path, whether that dir is on PATH)."""
    bindir = os.path.join(os.path.expanduser("~"), ".local", "bin")
    link = os.path.join(bindir, "devstream")
    os.makedirs(bindir, exist_ok=True)
    if os.path.islink(link) and os.readlink(link) == target:
        pass
    elif os.path.lexists(link) and not os.path.islink(link):
        raise UserError(f"{link} exists and is not DevStream's link; remove it or put "
                        f"{target} on PATH yourself")
    else:
        tmp = link + f".devstream-{os.getpid()}"
        os.symlink(target, tmp)
        os.replace(tmp, link)
    on_path = bindir in os.environ.get("PATH", "").split(os.pathsep)
    return link, on_path


def cmd_install(args):
    cfg = Config()
    cli = args.get("cli", "claude")
    scope = args.get("scope", "user")
    if cli not in CLI_NAMES:
        raise UsageError(f"--cli must be one of {', '.join(CLI_NAMES)}")
    if scope not in ("user", "project"):
        raise UsageError("--scope must be user or project")
    dry = args.flag("dry_run")
    lines = []
    if not dry:
        path, changed = install_launcher(cfg)
        lines.append(f"launcher: {path}{'' if changed else ' (unchanged)'}")
        if not cfg.env.get("DEVSTREAM_NO_PATH_LINK"):
            link, on_path = link_on_path(path)
            lines.append(f"command: {link}" + ("" if on_path else
                         f"  (add {os.path.dirname(link)} to PATH to type `devstream`)"))
        store = open_store(cfg)
        store.close()
        lines.append(f"database: {cfg.paths.db}")
    template = _fill(load_template(cli), hook_command(cfg, cli))
    spath = settings_path(cli, scope, args.get("project_dir"))
    changed, text = update_settings(
        spath, lambda s: merge_devstream_hooks(strip_devstream_hooks(s), template["hooks"]), dry)
    if dry:
        lines.append(f"would write {spath}:" if changed else f"{spath} already up to date")
        if changed:
            lines.append(text.rstrip())
    else:
        lines.append(f"hooks: {spath}" + (" (updated; previous file kept as "
                     f"{os.path.basename(spath)}.devstream-backup)" if changed else
                     " (already up to date, not touched)"))
    emit(args, {"settings": spath, "changed": changed, "dry_run": dry}, "\n".join(lines))
    return 0


def cmd_uninstall(args):
    cli = args.get("cli", "claude")
    scope = args.get("scope", "user")
    if cli not in CLI_NAMES:
        raise UsageError(f"--cli must be one of {', '.join(CLI_NAMES)}")
    spath = settings_path(cli, scope, args.get("project_dir"))
    if not os.path.exists(spath):
        emit(args, {"settings": spath, "changed": False}, f"{spath} does not exist; nothing to do")
        return 0
    changed, _ = update_settings(spath, strip_devstream_hooks)
    emit(args, {"settings": spath, "changed": changed},
         f"removed DevStream's hooks from {spath}" if changed else
         f"no DevStream hooks in {spath}")
    return 0


# ================================================================================================
# doctor: every check PASS / WARN / FAIL, with the fix in one line
# ================================================================================================

def http_get_json(url, timeout):
    """A small GET for doctor and health checks (stdlib: no client set-up cost)."""
    import http.client
    import json
    import urllib.parse
    u = urllib.parse.urlsplit(url)
    conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("GET", u.path or "/")
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, json.loads(body) if body else None
    finally:
        conn.close()


def model_matches(wanted, available):
    """Ollama names without a tag mean ':latest'."""
    norm = lambda n: n if ":" in n else n + ":latest"
    return norm(wanted) in {norm(a) for a in available}


class Doctor:
    def __init__(self, cfg):
        self.cfg = cfg
        self.checks = []

    def add(self, name, status, detail, fix=""):
        self.checks.append({"name": name, "status": status, "detail": detail, "fix": fix})

    def run(self):
        for check in (self.check_interpreter, self.check_package, self.check_launcher,
                      self.check_config, self.check_database, self.check_extensions,
                      self.check_ollama, self.check_breaker, self.check_pending, self.check_hooks,
                      self.check_round_trip, self.check_logs):
            try:
                check()
            except Exception as exc:     # a broken check is itself a finding
                self.add(check.__name__[6:], "FAIL", f"check crashed: {type(exc).__name__}: {exc}",
                         "report this with `devstream doctor --json`")
        return self.checks

    def check_interpreter(self):
        exe = sys.executable
        v = sys.version_info
        if v < (3, 11):
            self.add("interpreter", "FAIL", f"Python {v[0]}.{v[1]} at {exe}",
                     "install Python 3.11 or newer and re-run ./install.sh")
        elif "shims" in exe.split(os.sep):
            self.add("interpreter", "WARN", f"{exe} is a version-manager shim (~90 ms per hook)",
                     "re-run `devstream install` with the interpreter's real path")
        else:
            self.add("interpreter", "PASS", f"Python {sys.version.split()[0]} at {exe}")

    def check_package(self):
        here = os.path.dirname(os.path.abspath(__file__))
        try:
            import apsw
            detail = f"devstream {VERSION} from {here}; apsw {apsw.apsw_version()} " \
                     f"(SQLite {apsw.sqlite_lib_version()})"
        except ImportError as exc:
            self.add("package", "FAIL", f"apsw missing: {exc}", "re-run ./install.sh")
            return
        self.add("package", "PASS", detail)

    def check_launcher(self):
        path = launcher_path(self.cfg)
        if not os.path.exists(path):
            self.add("launcher", "WARN", f"no launcher at {path}", "run `devstream install`")
            return
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        python = text.splitlines()[0][2:].split(" -IS")[0] if text.startswith("#!") else ""
        if not python or not os.path.exists(python):
            self.add("launcher", "FAIL", f"launcher's interpreter {python!r} is gone",
                     "re-run ./install.sh")
            return
        self.add("launcher", "PASS", f"{path} -> {python}")

    def check_config(self):
        path = self.cfg.paths.config
        if not os.path.exists(path):
            self.add("config", "PASS", f"no config file ({path}); defaults and environment")
            return
        try:
            _read_config_file(path)
            self.add("config", "PASS", path)
        except UserError as exc:
            self.add("config", "FAIL", str(exc), f"fix the TOML syntax in {path}")

    def _store(self):
        return open_store(self.cfg, busy_ms=2000, create=False)

    def check_database(self):
        path = self.cfg.paths.db
        if not os.path.exists(path):
            self.add("database", "WARN", f"no database yet at {path}",
                     "it is created by the first hook event or `devstream install`")
            return
        try:
            store = self._store()
        except StoreError as exc:
            msg = str(exc)
            fix = (f"move it aside (mv {path} {path}.corrupt); DevStream starts a new one, and "
                   "`devstream import` restores an export" if "corrupt" in msg else
                   "check permissions and free disk space of the data directory")
            self.add("database", "FAIL", msg, fix)
            return
        try:
            result = store.scalar("PRAGMA quick_check", default="?")
            counts = store.one("SELECT (SELECT count(*) FROM memories), (SELECT count(*) FROM tasks),"
                               " (SELECT count(*) FROM projects)")
        except store.apsw.Error as exc:
            self.add("database", "FAIL", f"{path}: {type(exc).__name__}: {exc}",
                     f"move it aside (mv {path} {path}.corrupt); DevStream starts a new one")
            return
        finally:
            store.close()
        if result != "ok":
            self.add("database", "FAIL", f"quick_check: {result}",
                     f"export what you can (`devstream export`), then mv {path} {path}.corrupt")
        else:
            self.add("database", "PASS", f"{path}: schema {SCHEMA_VERSION}, quick_check ok, "
                     f"{counts[0]} memories, {counts[1]} tasks, {counts[2]} projects")

    def check_extensions(self):
        import apsw
        conn = apsw.Connection(":memory:")
        try:
            conn.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
            self.add("fts5", "PASS", "FTS5 available")
        except apsw.Error as exc:
            self.add("fts5", "FAIL", f"FTS5 missing: {exc}", "re-run ./install.sh")
        path = vec_extension_path()
        if not path:
            self.add("sqlite-vec", "WARN", "sqlite-vec not found; search is keyword-only",
                     "re-run ./install.sh")
            return
        try:
            conn.enable_load_extension(True)
            conn.load_extension(path)
            version = conn.execute("SELECT vec_version()").fetchall()[0][0]
            self.add("sqlite-vec", "PASS", f"sqlite-vec {version}")
        except apsw.Error as exc:
            self.add("sqlite-vec", "WARN", f"sqlite-vec failed to load: {exc}",
                     "re-run ./install.sh; search stays keyword-only meanwhile")

    def check_ollama(self):
        url = self.cfg.ollama_url.rstrip("/")
        model = self.cfg.embed_model
        try:
            status, version = http_get_json(url + "/api/version", 2)
            status, tags = http_get_json(url + "/api/tags", 2)
        except Exception as exc:
            self.add("ollama", "WARN", f"Ollama not reachable at {url} ({type(exc).__name__}); "
                     "search is keyword-only", f"install and start Ollama, then `ollama pull {model}`")
            return
        names = [m.get("name", "") for m in (tags or {}).get("models", [])]
        if not model_matches(model, names):
            self.add("ollama", "WARN", f"Ollama {(version or {}).get('version', '?')} at {url}, "
                     f"embedding model {model!r} not pulled", f"ollama pull {model}")
            return
        chat = self.cfg.chat_model
        if chat and not model_matches(chat, names):
            self.add("ollama", "WARN", f"chat model {chat!r} not pulled", f"ollama pull {chat}")
            return
        self.add("ollama", "PASS", f"Ollama {(version or {}).get('version', '?')} at {url}, "
                 f"model {model}" + (f", chat model {chat}" if chat else ""))

    def check_breaker(self):
        if not os.path.exists(self.cfg.paths.db):
            return
        store = self._store()
        try:
            row = store.one("SELECT state, fail_counter, opened_at FROM breaker WHERE name='ollama'")
        finally:
            store.close()
        if not row or row[0] == "closed":
            self.add("breaker", "PASS", "closed: Ollama calls allowed")
        else:
            since = iso_time(row[2]) if row[2] else "?"
            self.add("breaker", "WARN", f"{row[0]} since {since} after {row[1]} failures; "
                     "search is keyword-only until it closes",
                     "check Ollama, then `devstream embed` (a success closes it)")

    def check_pending(self):
        if not os.path.exists(self.cfg.paths.db):
            return
        store = self._store()
        try:
            n = store.scalar("SELECT count(*) FROM embed_pending", default=0)
        finally:
            store.close()
        if n and self.cfg.embed_mode != "off":
            self.add("embeddings", "WARN", f"{n} memories wait for an embedding",
                     "`devstream embed` (needs Ollama)")
        else:
            self.add("embeddings", "PASS", f"{n} pending" +
                     (" (embedding is off)" if self.cfg.embed_mode == "off" else ""))

    def registered_commands(self):
        found = []
        for cli in CLI_NAMES:
            for scope in ("user", "project"):
                path = settings_path(cli, scope, os.getcwd())
                try:
                    _, data = read_settings(path)
                except UserError as exc:
                    self.add(f"hooks {cli}/{scope}", "FAIL", str(exc), f"fix the JSON in {path}")
                    continue
                cmds = set()
                for groups in (data.get("hooks") or {}).values():
                    for group in groups if isinstance(groups, list) else ():
                        for h in (group.get("hooks") or []) if isinstance(group, dict) else ():
                            if is_devstream_handler(h):
                                cmds.add(h["command"])
                if cmds:
                    found.append((cli, scope, path, sorted(cmds)))
        return found

    def check_hooks(self):
        found = self.registered_commands()
        self._commands = found
        if not any(cli == "claude" for cli, *_ in found):
            self.add("hooks", "WARN", "DevStream is not registered with Claude Code",
                     "run `devstream install`")
        for cli, scope, path, cmds in found:
            import shlex
            broken = []
            for cmd in cmds:
                parts = shlex.split(cmd)
                for part in parts[:3]:
                    if part.startswith("/") and not os.path.exists(part):
                        broken.append(part)
            if broken:
                self.add(f"hooks {cli}/{scope}", "FAIL", f"{path}: missing {', '.join(broken)}",
                         f"re-run `devstream install --cli {cli} --scope {scope}`")
            else:
                self.add(f"hooks {cli}/{scope}", "PASS", f"{path}")

    def check_round_trip(self):
        import subprocess
        cmds = [c for cli, scope, path, cs in getattr(self, "_commands", []) for c in cs]
        cmd = cmds[0] if cmds else hook_command(self.cfg, "claude")
        if not cmds and not os.path.exists(launcher_path(self.cfg)):
            cmd = f"{_shell_quote(sys.executable)} -IS {_shell_quote(os.path.abspath(__file__))}" \
                  " hook --cli claude"
        payload = json_dumps({"session_id": "devstream-doctor", "hook_event_name": "PreToolUse",
                              "cwd": os.getcwd(), "tool_name": "Edit",
                              "tool_input": {"file_path": os.path.join(os.getcwd(),
                                                                       ".devstream-doctor-probe")}})
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, shell=True, input=payload.encode(), capture_output=True,
                                  timeout=15)
        except subprocess.TimeoutExpired:
            self.add("round trip", "FAIL", f"hook did not finish in 15 s: {cmd}",
                     "run `devstream doctor` again; if it persists, report it")
            return
        ms = (time.perf_counter() - t0) * 1000
        out = proc.stdout.strip()
        ok_out = not out or out.startswith(b"{")
        if proc.returncode != 0 or not ok_out:
            self.add("round trip", "FAIL", f"exit {proc.returncode}, stdout {out[:80]!r}",
                     "re-run ./install.sh")
        else:
            self.add("round trip", "PASS", f"synthetic PreToolUse answered in {ms:.0f} ms")

    def check_logs(self):
        d = self.cfg.paths.logs
        try:
            os.makedirs(d, exist_ok=True)
            probe = os.path.join(d, f".probe-{os.getpid()}")
            with open(probe, "w"):
                pass
            os.unlink(probe)
        except OSError as exc:
            self.add("logs", "FAIL", f"{d} not writable: {exc}", f"fix permissions of {d}")
            return
        errors, last = 0, ""
        cutoff = iso_time(time.time() - 86400)
        try:
            with open(self.cfg.paths.log, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if '"level":"error"' in line:
                        try:
                            rec = json_loads(line)
                        except ValueError:
                            continue
                        if str(rec.get("timestamp", "")) >= cutoff:
                            errors += 1
                            last = f"{rec.get('event')}: {rec.get('error', '')}"[:160]
        except FileNotFoundError:
            pass
        if errors:
            self.add("logs", "WARN", f"{errors} errors in the last 24 h; last: {last}",
                     f"read {self.cfg.paths.log}")
        else:
            self.add("logs", "PASS", f"{self.cfg.paths.log}, no errors in the last 24 h")


def cmd_doctor(args):
    cfg = Config()
    checks = Doctor(cfg).run()
    failed = any(c["status"] == "FAIL" for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c['status']:<5} {c['name']:<14} {c['detail']}")
        if c["status"] != "PASS" and c["fix"]:
            lines.append(f"{'':<20}fix: {c['fix']}")
    emit(args, {"ok": not failed, "checks": checks}, "\n".join(lines))
    return EXIT_ERROR if failed else 0


# ================================================================================================
# command line
# ================================================================================================

USAGE = """\
usage: devstream COMMAND [options]

  hook [--cli claude|gemini|codex|qwen]     handle one hook event from stdin
  install [--scope user|project] [--project-dir DIR] [--cli NAME] [--dry-run]
  uninstall [--scope user|project] [--project-dir DIR] [--cli NAME]
  doctor [--json]                           check the installation; exit 1 if a check fails
  version

Run `devstream help` for this text.  Data: $DEVSTREAM_HOME or ~/.local/share/devstream.
"""


class Args:
    """Parsed command-line arguments: positionals plus options by name."""

    def __init__(self, command, positional, options):
        self.command = command
        self.positional = positional
        self.options = options

    def get(self, name, default=None):
        return self.options.get(name, default)

    def flag(self, name):
        return bool(self.options.get(name))


# option kinds: "flag", "value", "int", "multi"
COMMON_OPTIONS = {"--json": "flag", "--project": "value", "--all-projects": "flag"}


def parse_args(argv, spec):
    """A small parser (argparse costs ~10 ms of imports, which the task commands cannot pay)."""
    positional, options = [], {}
    allowed = dict(COMMON_OPTIONS)
    allowed.update(spec)
    i = 0
    only_positional = False
    while i < len(argv):
        arg = argv[i]
        i += 1
        if only_positional or not arg.startswith("-") or arg == "-" or _looks_negative(arg):
            positional.append(arg)
            continue
        if arg == "--":
            only_positional = True
            continue
        name, eq, inline = arg.partition("=")
        if name in ("-o",) and "-o" in allowed:
            pass
        kind = allowed.get(name)
        if kind is None:
            raise UsageError(f"unknown option {name}")
        if kind == "flag":
            if eq:
                raise UsageError(f"{name} takes no value")
            options[name.lstrip("-").replace("-", "_")] = True
            continue
        if eq:
            value = inline
        else:
            if i >= len(argv):
                raise UsageError(f"{name} needs a value")
            value = argv[i]
            i += 1
        key = name.lstrip("-").replace("-", "_")
        if kind == "int":
            try:
                value = int(value)
            except ValueError:
                raise UsageError(f"{name} needs a whole number, not {value!r}") from None
        if kind == "multi":
            options.setdefault(key, []).append(value)
        else:
            options[key] = value
    return positional, options


def _looks_negative(arg):
    return len(arg) > 1 and arg[0] == "-" and arg[1:].isdigit()


def emit(args, data, text=None):
    """Print a result: JSON with --json, else the human text."""
    if args.flag("json"):
        out = json_pretty(data) if sys.stdout.isatty() else json_dumps(data, ascii_only=False)
        sys.stdout.write(out + "\n")
    elif text is not None:
        if text:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")


def cmd_version(args):
    emit(args, {"version": VERSION, "schema": SCHEMA_VERSION, "python": sys.version.split()[0]},
         f"devstream {VERSION} (schema {SCHEMA_VERSION}, python {sys.version.split()[0]})")
    return 0


def cmd_hook(args):
    return run_hook(args.get("cli", "claude"))


def cmd_help(args):
    sys.stdout.write(USAGE)
    return 0


COMMANDS = {
    # name: (handler, option spec, min positionals, max positionals or None)
    "hook": (cmd_hook, {"--cli": "value"}, 0, 0),
    "version": (cmd_version, {}, 0, 0),
    "help": (cmd_help, {}, 0, None),
    "install": (cmd_install, {"--scope": "value", "--project-dir": "value", "--cli": "value",
                              "--dry-run": "flag"}, 0, 0),
    "uninstall": (cmd_uninstall, {"--scope": "value", "--project-dir": "value", "--cli": "value"},
                  0, 0),
    "doctor": (cmd_doctor, {}, 0, 0),
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "hook":
        # the fast path: no parsing beyond --cli, never an error exit
        cli = "claude"
        if len(argv) >= 3 and argv[1] == "--cli":
            cli = argv[2]
        elif len(argv) >= 2 and argv[1].startswith("--cli="):
            cli = argv[1][6:]
        return run_hook(cli)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if argv else EXIT_USAGE
    if argv[0] in ("-V", "--version"):
        argv = ["version"]
    name = argv[0]
    rest = argv[1:]
    # two-word commands: "memory add", "task dep add", ...
    for depth in (3, 2):
        joined = " ".join(argv[:depth])
        if len(argv) >= depth and joined in COMMANDS:
            name, rest = joined, argv[depth:]
            break
    entry = COMMANDS.get(name)
    try:
        if entry is None:
            raise UsageError(f"unknown command {' '.join(argv[:2])!r}; run `devstream help`")
        handler, spec, min_pos, max_pos = entry
        if "-h" in rest or "--help" in rest:
            sys.stdout.write(USAGE)
            return 0
        positional, options = parse_args(rest, spec)
        if len(positional) < min_pos:
            raise UsageError(f"{name}: missing argument")
        if max_pos is not None and len(positional) > max_pos:
            raise UsageError(f"{name}: unexpected argument {positional[max_pos]!r}")
        cfg_env = os.environ
        log_setup(Paths(cfg_env).log, os.environ.get("DEVSTREAM_LOG_LEVEL", "warning"),
                  command=name)
        return handler(Args(name, positional, options)) or 0
    except UsageError as exc:
        sys.stderr.write(f"devstream: {exc}\n")
        return EXIT_USAGE
    except UserError as exc:
        sys.stderr.write(f"devstream: {exc}\n")
        return EXIT_ERROR
    except StoreError as exc:
        sys.stderr.write(f"devstream: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("devstream: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
