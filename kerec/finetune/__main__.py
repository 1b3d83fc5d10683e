"""``python -m kerec.finetune --recipe finetune/cpu-tiny.yaml`` (also under ``accelerate launch -m``)."""
from __future__ import annotations

import argparse
import sys

from kerec.data import KerecError
from kerec.finetune.cli import configure, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kerec.finetune", description="Run a fine-tuning recipe.")
    configure(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KerecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
