"""How Claude Code is run offline, and how its --debug-file says which hooks ran.

No pytest here: bench/agent.py runs the binary the same way.
"""


def claude_env(base, url):
    """The environment of a `claude -p` run against the stand-in at url."""
    return dict(base, ANTHROPIC_BASE_URL=url, ANTHROPIC_API_KEY="sk-ant-e2e-stand-in",
                CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_TELEMETRY="1",
                DISABLE_AUTOUPDATER="1", DISABLE_ERROR_REPORTING="1",
                # the permissionless mode refuses root unless told it is a sandbox
                IS_SANDBOX="1")


def claude_argv(claude, prompt, debug_path, *args):
    return [claude, "-p", prompt, *args, "--output-format", "stream-json", "--verbose",
            "--include-hook-events", "--debug-file", debug_path, "--dangerously-skip-permissions"]


def hook_lines(debug_text):
    """(event[:query], command, status, ms or None) of every command hook in a debug log.
    Claude Code 2.1.328 logs most as `Hooks: EVENT [COMMAND] finished with status N (Tms)`, and
    PreCompact and SessionEnd as `EVENT [COMMAND] completed with status N` (no time)."""
    out = []
    for line in debug_text.splitlines():
        marker = next((m for m in ("] finished with status ", "] completed with status ")
                       if m in line), None)
        if marker is None or "[DEBUG] " not in line:
            continue
        head, _, tail = line.partition(marker)
        head = head.split("[DEBUG] ", 1)[1]
        if head.startswith("Hooks: "):
            head = head[len("Hooks: "):]
        name, _, command = head.partition(" [")
        status = tail.split()[0]
        ms = None
        if tail.rstrip().endswith("ms)"):
            ms = float(tail.rstrip()[:-3].rsplit("(", 1)[1])
        out.append((name, command, int(status), ms))
    return out
