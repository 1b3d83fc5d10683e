"""The recorded command line: quoted so that pasting it into a shell runs the same command."""
from __future__ import annotations

import shlex
import sys

import pytest

from kerec.eval.command import command_line


def test_words_that_need_quotes_get_them_and_the_program_stays_as_written() -> None:
    line = command_line("OMP_NUM_THREADS=1 python eval/bench_x.py", ["--out", "runs/a b", "--llm", "default@x;y"])
    assert line == "OMP_NUM_THREADS=1 python eval/bench_x.py --out 'runs/a b' --llm 'default@x;y'"
    assert shlex.split(line)[-4:] == ["--out", "runs/a b", "--llm", "default@x;y"]


def test_without_argv_it_takes_this_process_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["kerec", "eval", "--config", "my config.yaml"])
    assert command_line("kerec") == "kerec eval --config 'my config.yaml'"
    assert command_line("kerec", []) == "kerec"
