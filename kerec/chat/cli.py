"""``kerec chat``: a terminal conversation (wired into ``kerec.cli`` with :func:`add_parser` / :func:`run`).

Reads one message per line from stdin — typed, or piped (``printf 'something like Fargo\\nno horror\\n' |
kerec chat``) — and prints each reply. ``/reset`` starts over, ``/quit`` (or end of input) leaves.
``--llm`` defaults to ``none`` (templated replies): SmolLM2-135M on CPU takes seconds per reply and writes
weaker text than the template; pass ``--llm default`` (or any spec) to have the LLM write the replies,
which are then checked like explanations.
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any, TextIO

HELP = "Commands: /reset (start over), /quit (leave). Anything else is a message to the recommender."


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``chat`` command to an argparse ``subparsers`` object; returns its parser."""
    parser = subparsers.add_parser("chat", help="conversational recommendation in the terminal (stdin lines)",
                                   description="Talk to the recommender: one message per line on stdin.")
    configure(parser)
    return parser


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default="default",
                        help="retriever.pt (default: the one `kerec train retriever` wrote under $KEREC_HOME/retriever)")
    parser.add_argument("--data", default=None, help="dataset the retriever was trained on (default: the embedded ml-100k)")
    parser.add_argument("--store", default=None, help="graph store URI holding that dataset (default: an in-process store)")
    parser.add_argument("--llm", default="none",
                        help="LLM that writes the replies: 'none' (default: templated replies, instant), 'default' "
                             "(SmolLM2-135M-Instruct on CPU, seconds per reply) or any `kerec recommend --llm` spec")
    parser.add_argument("--user", default=None, help="a known user id whose history joins the conversation")
    parser.add_argument("-k", type=int, default=5, help="picks per reply (1 to 20, default 5)")
    parser.add_argument("--json", action="store_true", help="print each reply as one JSON line")


def run(args: argparse.Namespace, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    from kerec.api import Recommender, checkpoint_path
    from kerec.chat.engine import MAX_K, ChatEngine
    from kerec.chat.errors import ChatError
    from kerec.gnn.checkpoint import Checkpoint

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    # A bad -k or --user fails here, from the checkpoint's id lists, before any model loads.
    if not 1 <= args.k <= MAX_K:
        raise ChatError(f"-k must be between 1 and {MAX_K}, got {args.k}")
    Checkpoint.load(checkpoint_path(args.checkpoint)).check_request(users=[args.user] if args.user else ())
    rec = Recommender.load(args.checkpoint, data=args.data, store=args.store,
                           llm=None if args.llm == "none" else args.llm)
    engine = ChatEngine(rec, k=args.k)
    interactive = stdin.isatty()
    if interactive:
        print(f"kerec chat — {HELP}", file=stdout)
    session = "cli"
    while True:
        if interactive:
            print("you> ", end="", file=stdout, flush=True)
        line = stdin.readline()
        if not line:
            break
        message = line.rstrip("\n")
        command = message.strip().lower()
        if command in ("/quit", "/exit"):
            break
        if command == "/help":
            print(HELP, file=stdout)
            continue
        if command == "/reset":
            engine.reset(session)
            print(json.dumps({"reset": True}) if args.json else "(conversation reset)", file=stdout)
            continue
        if not command:
            continue
        reply = engine.chat(session, message, user=args.user)
        if args.json:
            print(json.dumps(reply.to_dict(), ensure_ascii=False), file=stdout, flush=True)
        else:
            _print_reply(reply, stdout)
    return 0


def _print_reply(reply: Any, out: TextIO) -> None:
    for line in reply.text.splitlines():
        print("\n".join(textwrap.wrap(line, 110, subsequent_indent="   ")) or "", file=out)
    if reply.recommendations:
        ids = ", ".join(f"{r.title} [item {r.item_id}]" for r in reply.recommendations)
        print(f"   items: {ids}", file=out)
    if reply.references and reply.text_source != "template":
        for ref in reply.references:
            print(f"   [{ref.n}] {ref.evidence.text}  ({', '.join(ref.evidence.fact_ids)})", file=out)
    print(file=out, flush=True)
