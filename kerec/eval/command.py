"""The command a benchmark or an evaluation ran with, as its results record it (ready to paste into a shell)."""
from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def command_line(program: str, argv: Sequence[str] | None = None) -> str:
    """``program`` (e.g. ``"python eval/bench_decode.py"``) and ``argv`` (default: this process's arguments),
    each word quoted for a POSIX shell where it needs it."""
    return shlex.join([*shlex.split(program), *(sys.argv[1:] if argv is None else argv)])


def code_state(root: str | Path | None = None) -> dict[str, Any]:
    """The code a result was made from: ``commit`` (short hash of HEAD), ``dirty`` (whether tracked files
    differ from it or untracked ones exist) and ``changed`` (up to 20 of those paths), read from git in
    ``root`` (default: the current folder). Outside a git checkout every field is None: a report says the
    code is unknown rather than guessing."""
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10,
                                  check=True).stdout
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "--short", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=normal")
    if commit is None or status is None:
        return {"commit": None, "dirty": None, "changed": None}
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    return {"commit": commit.strip() or None, "dirty": bool(changed), "changed": changed[:20]}


def describe_code(state: dict[str, Any]) -> str:
    """One line for a report: "commit abc1234 (clean tree)" or "... with uncommitted changes: a, b"."""
    if state.get("commit") is None:
        return "commit unknown (not a git checkout)"
    if not state.get("dirty"):
        return f"commit {state['commit']} (clean tree)"
    shown = ", ".join(state.get("changed") or [])
    return f"commit {state['commit']} **with uncommitted changes** ({shown}): not reproducible from the commit alone"


def recorded_command(program: str, argv: Sequence[str] | None = None) -> str:
    """:func:`command_line` followed by a shell comment naming the code it ran (``# code: commit abc1234 (clean
    tree)``), read from git when called: what every benchmark's table records, so a result says whether it
    came from committed code. Pasted into a shell, the comment is ignored."""
    state = code_state()
    if state["commit"] is None:
        code = "commit unknown (not a git checkout)"
    elif state["dirty"]:
        code = f"commit {state['commit']} WITH UNCOMMITTED CHANGES ({', '.join(state['changed'] or [])})"
    else:
        code = f"commit {state['commit']} (clean tree)"
    return f"{command_line(program, argv)}  # code: {code}"
