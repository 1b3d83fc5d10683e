"""The command a benchmark or an evaluation ran with, as its results record it (ready to paste into a shell)."""
from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence


def command_line(program: str, argv: Sequence[str] | None = None) -> str:
    """``program`` (e.g. ``"python eval/bench_decode.py"``) and ``argv`` (default: this process's arguments),
    each word quoted for a POSIX shell where it needs it."""
    return shlex.join([*shlex.split(program), *(sys.argv[1:] if argv is None else argv)])
