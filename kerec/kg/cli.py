"""``kerec kg …`` and ``kerec quickstart``: a local Bolt server, loading a dataset into a graph store, its
statistics and a user's subgraph picture; the store options every command shares."""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from kerec.data import Dataset
from kerec.errors import KerecError
from kerec.data.cli import add_data_args, dataset_of, print_table
from kerec.kg import GraphStore, build_ckg, open_store
from kerec.kg.bolt import ENV_PASSWORD, ENV_USER

DEFAULT_SERVE_DIR = Path(os.environ.get("KEREC_HOME", Path.home() / ".cache" / "kerec")) / "arcadedb"


def add_store_args(p: argparse.ArgumentParser, default: str = "memory") -> None:
    p.add_argument("--uri", default=default,
                   help=f"graph store: 'memory' (in-process) or a bolt:// / neo4j:// URI (default: {default})")
    p.add_argument("--db-user", default=None, help=f"Bolt user (default: ${ENV_USER})")
    p.add_argument("--db-password", default=None, help=f"Bolt password (default: ${ENV_PASSWORD})")
    p.add_argument("--database", default=None, help="Bolt database name (default: the server's default)")


def _auth(args: argparse.Namespace) -> tuple[str, str] | None:
    user = args.db_user or os.environ.get(ENV_USER)
    if user is None:
        return None
    return user, args.db_password or os.environ.get(ENV_PASSWORD, "")


def _store_with(args: argparse.Namespace, dataset: Dataset, *, replace: bool = False) -> GraphStore:
    """Open the store named by ``--uri``; the in-process one is filled with ``dataset`` first."""
    store = open_store(args.uri, auth=_auth(args), database=args.database)
    if args.uri.startswith("memory"):
        store.load(build_ckg(dataset), progress=False)
    elif replace:
        store.load(build_ckg(dataset), replace=True)
    return store


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_kg_serve(args: argparse.Namespace) -> int:
    from kerec.kg.server import LocalBoltServer

    password = _read_password(args.password_file) if args.password_file else os.environ.get(ENV_PASSWORD) or None
    # SIGTERM (kill, service managers) and SIGHUP (the terminal closed) must stop the Java server too, not
    # orphan it: treat them as Ctrl-C. Ctrl-C too, explicitly: a process started by a parent that ignores
    # SIGINT inherits the ignore, and Python then installs no KeyboardInterrupt handler of its own.
    # (SIGKILL cannot be caught: there the kernel stops Java, see kerec.kg.server.)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, _interrupt)
    server = LocalBoltServer(Path(args.dir), bolt_port=args.port, password=password)
    with server:
        user, secret = server.auth[0], shlex.quote(str(server.password_file))
        print(f"ArcadeDB Bolt server on {server.uri} (user {user}, password in {server.password_file}, "
              f"database graph, data in {server.root})")
        print(f"  export {ENV_USER}={user} {ENV_PASSWORD}=\"$(cat {secret})\" KEREC_NEO4J_DATABASE=graph")
        if args.load:
            store = open_store(server.uri, auth=server.auth, database="graph")
            report = store.load(build_ckg(dataset_of(args)))
            print(f"{report.action} {report.dataset} in {report.seconds:.1f} s")
            store.close()
        try:  # print inside the try: a signal may come as soon as the line is read
            print("press Ctrl-C to stop", flush=True)
            while server.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("stopping", flush=True)
            return 0
        code = server.returncode
    raise KerecError(f"the ArcadeDB server exited on its own (exit code {code}); the end of its log "
                     f"{server.log_file}:\n{server.log_tail()}")


def _read_password(path: str) -> str:
    try:
        password = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise KerecError(f"--password-file {path}: cannot be read ({exc.strerror})") from None
    if not password:
        raise KerecError(f"--password-file {path}: the file is empty")
    return password


def cmd_kg_load(args: argparse.Namespace) -> None:
    ds = dataset_of(args)
    with open_store(args.uri, auth=_auth(args), database=args.database) as store:
        report = store.load(build_ckg(ds), batch_size=args.batch_size, replace=args.replace)
        print(f"{report.action} {report.dataset} into {store.uri} in {report.seconds:.1f} s")
        _print_stats(store)


def _print_stats(store: GraphStore) -> bool:
    """Print what ``store`` holds; False when it holds a load that did not finish (said first, plainly)."""
    info, stats = store.info(), store.stats()
    problem = info.incomplete() if info is not None else None
    if problem:
        print(f"graph store {store.uri} {problem}", file=sys.stderr)
    print(f"graph store {store.uri}: dataset {stats.dataset}" + (" (INCOMPLETE: partial counts)" if problem else ""))
    print_table([("users", stats.users), ("items", stats.items), ("entities", stats.entities),
                  ("interactions", stats.interactions), ("facts", stats.facts),
                  ("relations", len(stats.relations))])
    top = sorted(stats.relations.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
    print("  most frequent relations: " + ", ".join(f"{r} ({n:,})" for r, n in top))
    return problem is None


def cmd_kg_stats(args: argparse.Namespace) -> int:
    with _store_with(args, dataset_of(args)) as store:
        return 0 if _print_stats(store) else 1


def cmd_kg_show(args: argparse.Namespace) -> None:
    from kerec.kg.show import render, user_subgraph

    ds = dataset_of(args)
    with _store_with(args, ds) as store:
        sub = user_subgraph(store, args.user, args.items or None, max_hops=args.max_hops, popularity=_chosen(ds))
        print(f"wrote {render(sub, args.out)}")


def _chosen(ds: Dataset) -> dict[str, float]:
    """Item id → interactions: labels of unnamed KG nodes name their best-known films."""
    counts = Counter(ds.interactions.item.tolist())
    return {ds.items.external(i): float(n) for i, n in counts.items()}


def cmd_quickstart(args: argparse.Namespace) -> None:
    """The README's main job on the embedded default: data → graph store → statistics → a user's subgraph."""
    from kerec.kg.server import LocalBoltServer
    from kerec.kg.show import render, user_subgraph

    out = Path(args.out)
    ds = dataset_of(args)
    print(f"[1/3] dataset {ds.name}")
    print_table(list(ds.describe().items()))
    with ExitStack() as stack:
        uri, auth, database = args.uri, _auth(args), args.database
        if uri == "local":
            root = stack.enter_context(tempfile.TemporaryDirectory(prefix="kerec-arcadedb-"))
            server = stack.enter_context(LocalBoltServer(Path(root)))
            uri, auth, database = server.uri, server.auth, "graph"
            print(f"started a local ArcadeDB Bolt server on {uri}")
        store = stack.enter_context(open_store(uri, auth=auth, database=database))
        report = store.load(build_ckg(ds), replace=args.replace)
        print(f"[2/3] {report.action} into {store.uri} in {report.seconds:.1f} s")
        _print_stats(store)
        sub = user_subgraph(store, args.user, popularity=_chosen(ds))
        path = render(sub, out / f"user-{args.user}-subgraph.{args.image_format}")
        print(f"[3/3] user {args.user}: {len(sub.paths)} paths from {len(sub.history)} recent history items "
              f"to {len(sub.candidates)} candidates; picture: {path}")


def add_quickstart_parser(top: argparse._SubParsersAction) -> None:
    """``kerec quickstart``."""
    p = top.add_parser("quickstart", help="load the default data into a graph store, print statistics, draw a subgraph",
                       description=cmd_quickstart.__doc__)
    add_data_args(p)
    add_store_args(p)
    p.set_defaults(func=cmd_quickstart)
    p.add_argument("--out", default="runs/quickstart", help="output folder (default: runs/quickstart)")
    p.add_argument("--user", default="1", help="user whose subgraph is drawn (default: 1)")
    p.add_argument("--image-format", default="png", choices=("png", "svg", "html"))
    p.add_argument("--replace", action="store_true", help="overwrite another dataset held by the store")
    p.epilog = "--uri local starts a throw-away ArcadeDB Bolt server for the run."


def add_parsers(top: argparse._SubParsersAction) -> None:
    """``kerec kg serve|load|stats|show``."""
    kg = top.add_parser("kg", help="graph store: serve, load, stats, show").add_subparsers(dest="sub", required=True, metavar="SUB")
    p = kg.add_parser("serve", help="run a local ArcadeDB Bolt server (foreground)",
                      description="Run ArcadeDB's Bolt server from the arcadedb-embedded wheel on 127.0.0.1. The root "
                                  "password is kept in DIR/root-password (mode 600; a later run on the same folder "
                                  "reuses it), never printed nor put on a command line. The server stops whenever "
                                  "this command stops (Ctrl-C, SIGTERM, SIGHUP, an error; on Linux even SIGKILL); "
                                  "if the server dies on its own, this command says so with the end of its log and "
                                  "exits with status 2.")
    p.add_argument("--dir", default=str(DEFAULT_SERVE_DIR), help=f"data folder (default: {DEFAULT_SERVE_DIR})")
    p.add_argument("--port", type=int, default=7687, help="Bolt port (default: 7687; 0 picks a free one)")
    p.add_argument("--password-file", default=None,
                   help=f"file holding the root password (default: ${ENV_PASSWORD}, else the one stored in "
                        "DIR/root-password, else a random one); a file, not the password itself, so that it "
                        "does not show in `ps`")
    p.add_argument("--load", action="store_true", help="load the dataset (--data) once the server is up")
    add_data_args(p)
    p.set_defaults(func=cmd_kg_serve)
    p = kg.add_parser("load", help="load a dataset into a Bolt server", description="Load a dataset's collaborative KG.")
    add_data_args(p)
    add_store_args(p, default="bolt://127.0.0.1:7687")
    p.add_argument("--replace", action="store_true", help="overwrite another dataset held by the store")
    p.add_argument("--batch-size", type=int, default=10_000)
    p.set_defaults(func=cmd_kg_load)
    p = kg.add_parser("stats", help="print graph-store statistics",
                      description="Print what a graph store holds. A store whose load did not finish is "
                                  "reported as INCOMPLETE (on stderr, and exit status 1): run `kerec kg load` again.")
    add_data_args(p)
    add_store_args(p)
    p.set_defaults(func=cmd_kg_stats)
    p = kg.add_parser("show", help="draw a user's history, linking entities and candidates",
                      description="Draw a user's KG subgraph to .png, .svg or .html.")
    p.add_argument("--user", required=True, help="user id")
    p.add_argument("--items", nargs="*", default=None, help="candidate item ids (default: chosen from the KG)")
    p.add_argument("--max-hops", type=int, default=2, choices=(1, 2, 3))
    p.add_argument("--out", required=True, help="output file: .png, .svg or .html")
    add_data_args(p)
    add_store_args(p)
    p.set_defaults(func=cmd_kg_show)
