"""The ``kerec`` command line: only routes. Each stage package owns its commands in its own ``cli.py``
(``kerec.data.cli``, ``kerec.kg.cli``, ``kerec.gnn.cli``, ``kerec.api.cli``, ``kerec.finetune.cli``,
``kerec.eval.cli``, ``kerec.chat.cli``, ``kerec.serve.cli``); this module builds the parser from them and
turns kerec's errors into a message and exit status 2."""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from kerec import __version__
from kerec.api import cli as api_cli
from kerec.chat import cli as chat_cli
from kerec.data import cli as data_cli
from kerec.errors import KerecError
from kerec.eval import cli as eval_cli
from kerec.finetune import cli as finetune_cli
from kerec.gnn import cli as gnn_cli
from kerec.kg import cli as kg_cli
from kerec.serve import cli as serve_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kerec", description="Knowledge-enhanced LLM recommender.")
    parser.add_argument("--version", action="version", version=f"kerec {__version__}")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    kg_cli.add_quickstart_parser(top)
    data_cli.add_parsers(top)
    kg_cli.add_parsers(top)
    trainp = top.add_parser("train", help="train a stage").add_subparsers(dest="sub", required=True, metavar="SUB")
    gnn_cli.add_train_parser(trainp)
    api_cli.add_train_parser(trainp)
    evalparser = top.add_parser(
        "eval", help="batch evaluation: `--config FILE` for the whole report, or a stage (`retriever`)",
        description="Evaluate every stage over held-out users from one config (`kerec eval --config "
                    "eval/configs/quick.yaml`: report, tables and plots under eval/results/<name>/), "
                    "or one retriever checkpoint (`kerec eval retriever`).")
    eval_cli.configure(evalparser, required=False)
    evalparser.set_defaults(func=eval_cli.run)
    gnn_cli.add_eval_parser(evalparser.add_subparsers(dest="sub", required=False, metavar="SUB"))
    api_cli.add_parsers(top)  # recommend
    finetune_cli.add_parser(top).set_defaults(func=finetune_cli.run)
    chat_cli.add_parser(top).set_defaults(func=chat_cli.run)
    serve_cli.add_parser(top).set_defaults(func=serve_cli.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # The neo4j driver logs each retry as a warning; kerec reports the final outcome itself.
    logging.getLogger("neo4j").addHandler(logging.NullHandler())
    args = build_parser().parse_args(argv)
    try:
        rc = args.func(args)
    except KerecError as exc:
        print(f"kerec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
