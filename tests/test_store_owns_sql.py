"""The store section owns the schema: no SQL outside it.  devstream.py is parsed; every string
literal outside the store section that reads like SQL at its start (a statement keyword, or a
clause that continues one), and every call of a connection's execute/one/all/scalar outside it,
fails this test with its line."""
import ast
import os
import re

import devstream

SOURCE = os.path.join(os.path.dirname(devstream.__file__), "devstream.py")

STATEMENT = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|PRAGMA|WITH|"
                       r"BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|VACUUM|ANALYZE|ATTACH|"
                       r"DETACH|EXPLAIN)\b[\s(*]")
CLAUSE = re.compile(r"\s*(FROM|WHERE|JOIN|LEFT JOIN|ORDER BY|GROUP BY|LIMIT|VALUES|SET|AND|OR"
                    r"|ON CONFLICT)\s+\S")
QUERY_METHODS = {"execute", "executemany", "one", "all", "scalar"}


def store_section(lines):
    """(first, last) line numbers of the section headed `# store: ...`."""
    first = next(i for i, line in enumerate(lines, 1) if line.startswith("# store: "))
    for i in range(first + 1, len(lines)):
        if lines[i - 1].startswith("# ====") and lines[i].startswith("# ") and \
                not lines[i].startswith("# ===="):
            return first, i - 1
    raise AssertionError("the store section has no end")


def looks_like_sql(text):
    return bool(STATEMENT.match(text) or (CLAUSE.match(text) and re.search(r"[?=]|\w\.\w", text)))


def sql_outside_store(source):
    """[(line, what)] for every SQL literal and query call outside the store section."""
    lines = source.splitlines()
    first, last = store_section(lines)
    found = []
    for node in ast.walk(ast.parse(source)):
        if first <= getattr(node, "lineno", first) <= last:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                looks_like_sql(node.value):
            found.append((node.lineno, node.value[:70]))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in QUERY_METHODS and node.args and \
                not isinstance(node.func.value, ast.Constant):
            found.append((node.lineno, ast.unparse(node)[:70]))
    return sorted(set(found))


def test_no_sql_outside_the_store_section():
    with open(SOURCE, encoding="utf-8") as fh:
        source = fh.read()
    found = sql_outside_store(source)
    assert not found, "SQL outside the store section (move it into a function there):\n" + \
        "\n".join(f"  devstream.py:{n}: {what!r}" for n, what in found)


def test_the_check_finds_sql_added_outside_the_store():
    """The check can fail: the same source with one query added to another section is caught,
    and the store section itself is still allowed its SQL."""
    with open(SOURCE, encoding="utf-8") as fh:
        source = fh.read()
    lines = source.splitlines()
    first, last = store_section(lines)
    tasks = next(i for i, line in enumerate(lines) if line.startswith("# tasks: "))
    before = {n for n, _ in sql_outside_store(source)}
    for bad in ('n = store.scalar("SELECT count(*) FROM tasks")',
                'q = "DELETE FROM tasks WHERE id=?"',
                'q = f"UPDATE {table} SET x=1"',
                'q = " AND t.project_id = ?"',
                'rows = conn.all(QUERY, (1,))'):
        changed = "\n".join(lines[:tasks + 2] + [bad] + lines[tasks + 2:])
        found = {n for n, _ in sql_outside_store(changed)}
        assert found == {n + (n > tasks + 2) for n in before} | {tasks + 3}, (bad, found)
    inside = "\n".join(lines[:last - 1] + ['q = "SELECT 1 FROM tasks"'] + lines[last - 1:])
    assert {n for n, _ in sql_outside_store(inside)} == {n + 1 for n in before}


def test_prose_is_not_mistaken_for_sql():
    for text in ("Select a model", "set the key", "WHERE the file lives", "Update available",
                 "create it with `devstream install`", "and then", "OR", "FROM"):
        assert not looks_like_sql(text), text
