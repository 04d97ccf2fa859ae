-- DevStream schema version 8, after the migrations
-- migration_1_core, migration_2_tasks, migration_3_embeddings, migration_4_session_detail, migration_5_reindex_reserved_terms, migration_6_identity_and_secure_delete, migration_7_session_index_by_type, migration_8_term_counts
-- regenerate: DEVSTREAM_WRITE_SCHEMA=1 python -m pytest tests/test_schema.py

CREATE TABLE breaker(
        name TEXT PRIMARY KEY,
        state TEXT NOT NULL DEFAULT 'closed',
        fail_counter INTEGER NOT NULL DEFAULT 0,
        success_counter INTEGER NOT NULL DEFAULT 0,
        opened_at REAL);
CREATE TABLE embed_pending(
        memory_rowid INTEGER PRIMARY KEY);
CREATE TABLE embed_spaces(
        id INTEGER PRIMARY KEY,
        model TEXT NOT NULL,
        dim INTEGER NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE(model, dim));
CREATE TABLE injections(
        session_id TEXT NOT NULL,
        item TEXT NOT NULL,                 -- memory or task id, or a block name
        event TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY(session_id, item));
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
        content_hash TEXT NOT NULL, embed_space INTEGER,
        UNIQUE(project_id, content_hash));
CREATE VIRTUAL TABLE memories_fts USING fts5(
        content, terms, content='', contentless_delete=1,
        tokenize="unicode61 remove_diacritics 2 tokenchars '_'");
CREATE VIRTUAL TABLE memories_vocab USING fts5vocab(memories_fts, 'row');
CREATE TABLE projects(
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,           -- git common dir, directory, or DEVSTREAM_PROJECT
        root TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at REAL NOT NULL);
CREATE TABLE query_cache(
        key TEXT PRIMARY KEY,               -- space id + query hash
        vector BLOB NOT NULL,
        at REAL NOT NULL);
CREATE TABLE session_snapshots(
        session_id TEXT NOT NULL,
        at REAL NOT NULL,
        trigger TEXT,
        content TEXT NOT NULL);
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
        turns INTEGER NOT NULL DEFAULT 0, prompts INTEGER NOT NULL DEFAULT 0, tool_events INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0, compactions INTEGER NOT NULL DEFAULT 0, resumes INTEGER NOT NULL DEFAULT 0, summary_id TEXT, imported INTEGER NOT NULL DEFAULT 0);
CREATE TABLE state(
        key TEXT PRIMARY KEY,
        value TEXT);
CREATE TABLE task_deps(
        task_id TEXT NOT NULL,
        depends_on TEXT NOT NULL,
        PRIMARY KEY(task_id, depends_on)) WITHOUT ROWID;
CREATE TABLE task_events(
        task_id TEXT NOT NULL,
        at REAL NOT NULL,
        from_status TEXT,
        to_status TEXT NOT NULL,
        session_id TEXT,
        note TEXT);
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
CREATE TABLE term_counts(
        term TEXT PRIMARY KEY,              -- a term of the keyword index (redacted text)
        docs INTEGER NOT NULL,              -- memories holding it ...
        upto INTEGER NOT NULL               -- ... among those up to this rowid
    ) WITHOUT ROWID;
CREATE INDEX memories_path ON memories(project_id, path) WHERE path IS NOT NULL;
CREATE INDEX memories_recent ON memories(project_id, created_at);
CREATE INDEX memories_session ON memories(session_id, project_id, type, created_at, path);
CREATE INDEX memories_type ON memories(project_id, type, created_at);
CREATE INDEX session_snapshots_session ON session_snapshots(session_id, at);
CREATE INDEX sessions_project ON sessions(project_id, started_at);
CREATE INDEX task_deps_reverse ON task_deps(depends_on);
CREATE INDEX task_events_task ON task_events(task_id, at);
CREATE INDEX tasks_parent ON tasks(parent) WHERE parent IS NOT NULL;
CREATE INDEX tasks_ready ON tasks(project_id, status, priority, created_at);
