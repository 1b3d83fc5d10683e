"""``python -m kerec.serve`` — the same as ``kerec serve``."""
from __future__ import annotations

import argparse
import sys

from kerec.data import KerecError
from kerec.serve.cli import configure, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kerec.serve", description="Serve kerec over HTTP.")
    configure(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KerecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled, after shutting down
        return 130


if __name__ == "__main__":
    sys.exit(main())
