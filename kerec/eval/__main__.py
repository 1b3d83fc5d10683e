"""``python -m kerec.eval --config FILE``: the batch evaluation (same as ``kerec eval --config FILE``)."""
from __future__ import annotations

import argparse
import sys

from kerec.data import KerecError
from kerec.eval.cli import configure, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kerec.eval", description=__doc__)
    configure(parser)
    args = parser.parse_args(argv)
    from kerec.eval.command import command_line

    args.command_line = command_line("python -m kerec.eval", argv)
    try:
        return run(args)
    except KerecError as exc:
        print(f"kerec: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
