"""``kerec serve`` (wired into ``kerec.cli`` with :func:`add_parser` / :func:`run`) and ``python -m kerec.serve``:
load the recommender once, then serve the HTTP API and the chat page with uvicorn."""
from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` command to an argparse ``subparsers`` object; returns its parser."""
    parser = subparsers.add_parser(
        "serve", help="HTTP API, OpenAI-compatible chat and a web chat page",
        description="Serve recommendations over HTTP: POST /recommend, POST /chat, GET /items/{id}, "
                    "POST /v1/chat/completions, GET /health, GET /ready, the chat page at / and the "
                    "OpenAPI schema at /openapi.json.")
    configure(parser)
    return parser


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; the API has no authentication, so keep "
                             "it on loopback or behind a proxy that adds it)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--checkpoint", default="default",
                        help="retriever.pt (default: the one `kerec train retriever` wrote under $KEREC_HOME/retriever)")
    parser.add_argument("--data", default=None, help="dataset the retriever was trained on (default: the embedded ml-100k)")
    parser.add_argument("--store", default=None,
                        help="graph store URI holding that dataset (default: an in-process store; Bolt credentials "
                             "from $KEREC_NEO4J_USER / $KEREC_NEO4J_PASSWORD)")
    parser.add_argument("--llm", default="auto",
                        help="LLM spec as for `kerec recommend` ('auto', 'default', 'transformers:<id>', 'vllm:<id>', "
                             "'openai:<url>#<model>'), or 'none' for GNN ranking with templated explanations")
    parser.add_argument("--workers", type=int, default=2,
                        help="requests computed at once, in threads of one process (default 2). One process keeps "
                             "every chat session in one place and the model in memory once.")
    parser.add_argument("--k", type=int, default=5, help="items per chat reply (1 to 20, default 5)")
    parser.add_argument("--max-sessions", type=int, default=1000,
                        help="chat conversations kept in memory (default 1000); beyond, the least recently used is "
                             "dropped, and its next turn says so (the reply's 'dropped' field)")
    parser.add_argument("--max-sessions-per-client", type=int, default=100,
                        help="chat conversations one client address may keep (default 100); a client opening one "
                             "more drops its own least recently used, never another client's. Behind a proxy "
                             "every client has the proxy's address: raise it there")
    parser.add_argument("--allowed-hosts", default=None, metavar="NAMES",
                        help="comma-separated Host header names answered (any port), '*' for any. Default: on a "
                             "loopback address only localhost, 127.0.0.1 and ::1 (so a page of another site cannot "
                             "reach the API by DNS rebinding); on other addresses no check")
    parser.add_argument("--body-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="a request body must arrive within this (default 10): a client announcing more than "
                             "it sends gets 408 and the connection is closed")
    parser.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))


def url_of(host: str, port: int) -> str:
    try:
        bracketed = f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        bracketed = host
    return f"http://{bracketed}:{port}/"


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from kerec.process import freeze_long_lived_objects

    from kerec.api import Recommender
    from kerec.chat import ChatEngine
    from kerec.chat.engine import MAX_K
    from kerec.serve.app import create_app
    from kerec.serve.config import ServeConfig

    hosts = tuple(h.strip() for h in args.allowed_hosts.split(",")) if args.allowed_hosts else None
    config = ServeConfig(workers=args.workers, body_timeout_s=args.body_timeout,
                         allowed_hosts=hosts)  # checks they are positive / non-empty
    if not 0 < args.port < 65536:
        print(f"kerec serve: --port must be 1..65535, got {args.port}", file=sys.stderr)
        return 2
    # Bad numbers fail here, not after the models have loaded.
    for flag, value, most in (("--k", args.k, MAX_K), ("--max-sessions", args.max_sessions, None),
                              ("--max-sessions-per-client", args.max_sessions_per_client, None)):
        if value < 1 or (most is not None and value > most):
            print(f"kerec serve: {flag} must be " + (f"between 1 and {most}" if most else "positive") + f", got {value}",
                  file=sys.stderr)
            return 2
    print(f"loading the recommender ({args.checkpoint}, llm {args.llm}) …", flush=True)
    rec = Recommender.load(args.checkpoint, data=args.data, store=args.store,
                           llm=None if args.llm == "none" else args.llm)
    engine = ChatEngine(rec, k=args.k, max_sessions=args.max_sessions,
                        max_sessions_per_client=args.max_sessions_per_client)
    app = create_app(rec, chat_engine=engine, config=config)
    freeze_long_lived_objects()
    url = url_of(args.host, args.port)
    print(f"kerec serving {rec.dataset.name} on {url} (chat page), API schema at {url}openapi.json; Ctrl-C stops",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0
