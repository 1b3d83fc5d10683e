"""The ``kerec`` command line. Thin: parses arguments, calls the stages, prints results."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from kerec import __version__
import torch

from kerec.paths import default_checkpoint
from kerec.process import freeze_long_lived_objects
from kerec.data import FORMATS, Dataset, KerecError, leave_one_out, load_dataset, random_split, save_split
from kerec.kg import GraphStore, build_ckg, open_store
from kerec.kg.bolt import ENV_PASSWORD, ENV_USER
from kerec.gnn.checkpoint import Checkpoint
from kerec.gnn.distributed import init_from_env
from kerec.gnn.models import MODELS
from kerec.gnn.train import LOSSES, TrainConfig
from kerec.metrics import RankingResult
from kerec.gnn import (Prepared, RetrieverSpec, default_settings, evaluate_cold_start, evaluate_embeddings,
                             item_text_vectors, load_config, load_retriever, popularity, prepare,
                             prepare_from_checkpoint, train_retriever, make_checkpoint)

DEFAULT_SERVE_DIR = Path(os.environ.get("KEREC_HOME", Path.home() / ".cache" / "kerec")) / "arcadedb"


# ---- shared options -------------------------------------------------------------------------------
def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None, metavar="PATH",
                   help="dataset folder (RecBole atomic or KGAT files); default: embedded MovieLens-100k + Freebase KG")
    p.add_argument("--format", default="auto", choices=FORMATS, help="dataset format (default: auto-detect)")


def _add_store_args(p: argparse.ArgumentParser, default: str = "memory") -> None:
    p.add_argument("--uri", default=default,
                   help=f"graph store: 'memory' (in-process) or a bolt:// / neo4j:// URI (default: {default})")
    p.add_argument("--db-user", default=None, help=f"Bolt user (default: ${ENV_USER})")
    p.add_argument("--db-password", default=None, help=f"Bolt password (default: ${ENV_PASSWORD})")
    p.add_argument("--database", default=None, help="Bolt database name (default: the server's default)")


def _dataset(args: argparse.Namespace) -> Dataset:
    return load_dataset(args.data, format=args.format)


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


def _print_table(rows: Sequence[tuple[str, object]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value:,}" if isinstance(value, int) else f"  {key:<{width}}  {value}")


# ---- kerec data ... -----------------------------------------------------------------------------------
def cmd_data_info(args: argparse.Namespace) -> None:
    ds = _dataset(args)
    print(f"dataset {ds.name} ({ds.source})")
    _print_table(list(ds.describe().items()))
    attrs = ", ".join(f"{k}: {', '.join(v) or '-'}" for k, v in ds.attribute_fields.items())
    print(f"  attribute fields as KG facts: {attrs or '-'}")
    if ds.given_split is not None:
        print(f"  split shipped with the data: {ds.given_split.sizes()}")


def cmd_data_split(args: argparse.Namespace) -> None:
    ds = _dataset(args)
    if args.linked_only:
        ds = ds.with_linked_items_only()
    split = random_split(ds, tuple(args.ratios), seed=args.seed) if args.protocol == "random" else leave_one_out(ds)
    for path in save_split(split, ds, args.out):
        print(f"wrote {path}")
    print(f"{split.protocol}: {split.sizes()}")


# ---- kerec kg ... --------------------------------------------------------------------------------------
def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_kg_serve(args: argparse.Namespace) -> None:
    from kerec.kg.server import LocalBoltServer

    # SIGTERM (kill, service managers) must stop the Java server too, not orphan it: treat it as Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C too, explicitly: a process started by a parent that ignores SIGINT inherits the ignore,
    # and Python then installs no KeyboardInterrupt handler of its own.
    signal.signal(signal.SIGINT, _interrupt)
    password = args.password or os.environ.get(ENV_PASSWORD) or None
    server = LocalBoltServer(Path(args.dir), bolt_port=args.port, **({"password": password} if password else {}))
    with server:
        print(f"ArcadeDB Bolt server on {server.uri} (user {server.auth[0]}, password {server.auth[1]}, "
              f"database graph, data in {server.root})")
        print(f"  export {ENV_USER}={server.auth[0]} {ENV_PASSWORD}={server.auth[1]} KEREC_NEO4J_DATABASE=graph")
        if args.load:
            store = open_store(server.uri, auth=server.auth, database="graph")
            report = store.load(build_ckg(_dataset(args)))
            print(f"{report.action} {report.dataset} in {report.seconds:.1f} s")
            store.close()
        try:  # print inside the try: a signal may come as soon as the line is read
            print("press Ctrl-C to stop", flush=True)
            while server.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("stopping")


def cmd_kg_load(args: argparse.Namespace) -> None:
    ds = _dataset(args)
    with open_store(args.uri, auth=_auth(args), database=args.database) as store:
        report = store.load(build_ckg(ds), batch_size=args.batch_size, replace=args.replace)
        print(f"{report.action} {report.dataset} into {store.uri} in {report.seconds:.1f} s")
        _print_stats(store)


def _print_stats(store: GraphStore) -> None:
    stats = store.stats()
    print(f"graph store {store.uri}: dataset {stats.dataset}")
    _print_table([("users", stats.users), ("items", stats.items), ("entities", stats.entities),
                  ("interactions", stats.interactions), ("facts", stats.facts),
                  ("relations", len(stats.relations))])
    top = sorted(stats.relations.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
    print("  most frequent relations: " + ", ".join(f"{r} ({n:,})" for r, n in top))


def cmd_kg_stats(args: argparse.Namespace) -> None:
    with _store_with(args, _dataset(args)) as store:
        _print_stats(store)


def cmd_kg_show(args: argparse.Namespace) -> None:
    from kerec.kg.show import render, user_subgraph

    with _store_with(args, _dataset(args)) as store:
        sub = user_subgraph(store, args.user, args.items or None, max_hops=args.max_hops)
        print(f"wrote {render(sub, args.out)}")


# ---- kerec train / eval retriever ----------------------------------------------------------------------
def _add_split_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", default="random",
                   help="'random' (per-user 8:1:1, RecBole's protocol), 'loo' (leave-one-out by time), or a folder "
                        "with train.tsv/valid.tsv/test.tsv (default: random)")
    p.add_argument("--seed", type=int, default=2020, help="split and training seed (default: 2020)")
    p.add_argument("--all-items", action="store_true",
                   help="keep items without a KG link (default: only KG-linked items, as RecBole's KG models)")


def _retriever_spec(args: argparse.Namespace) -> tuple[RetrieverSpec, TrainConfig]:
    spec, config = load_config(args.config) if args.config else default_settings(args.model or "kerec")
    overrides = {"model": args.model, "embedding_dim": args.dim, "num_layers": args.layers, "kg_layers": args.kg_layers,
                 "item_head": args.item_head}
    spec = replace(spec, **{k: v for k, v in overrides.items() if v is not None})
    if args.no_kg:
        spec = replace(spec, use_kg=False)
    if args.no_text:
        spec = replace(spec, use_text=False)
    train_overrides = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "reg": args.reg,
                       "negatives": args.negatives, "loss": args.loss, "temperature": args.temperature,
                       "lambda_k": args.lambda_k, "lambda_a": args.lambda_a, "patience": args.patience, "seed": args.seed}
    config = replace(config, **{k: v for k, v in train_overrides.items() if v is not None})
    return spec, config


def cmd_train_retriever(args: argparse.Namespace) -> None:
    spec, config = _retriever_spec(args)
    if args.gnn_holdout_order != "random" and args.gnn_holdout is None:
        raise KerecError("--gnn-holdout-order chooses the pairs --gnn-holdout keeps: give --gnn-holdout FRACTION too")
    ctx = init_from_env()  # under `torchrun --nproc_per_node N`: data-parallel over N processes
    prepared = prepare(args.data, format=args.format, split=args.split, seed=args.seed, linked_only=not args.all_items,
                       cold_fraction=args.cold_start, gnn_holdout_fraction=args.gnn_holdout,
                       gnn_holdout_order=args.gnn_holdout_order)
    if ctx.is_main:
        print(f"dataset {prepared.dataset.name}: split {prepared.split.protocol} {prepared.split.sizes()}")
        if prepared.gnn_holdout is not None:
            print(f"gnn holdout: {len(prepared.gnn_holdout):,} training pairs kept from the GNN (still masked as seen)")
    out = Path(args.out) if args.out else default_checkpoint().parent
    if spec.model == "pop":
        print(popularity(prepared, "valid").table())
        return
    text = item_text_vectors(prepared.dataset) if spec.use_text and spec.model == "kerec" else None
    model, graph, state = train_retriever(prepared, spec, config, item_text=text, log_dir=str(out / "tensorboard"),
                                          dist_ctx=ctx)
    if not ctx.is_main:
        return
    ckpt = make_checkpoint(model, graph, prepared, spec, config, state).save(out / "retriever.pt")
    where = f"{ckpt.stat().st_size / 1e6:.1f} MB checkpoint: {ckpt}; TensorBoard logs: {out / 'tensorboard'}"
    if state.history:
        print(f"best validation epoch {state.best_epoch} of {len(state.history)} ({where})")
    else:
        print(f"fitted in closed form ({where})")
    head = state.post.get("item_head")
    if head:
        print(f"item head: λ {head['reg']:g}, weight {head['weight']:g} (chosen on validation {head['metric']}: "
              f"GNN alone {head['valid_gnn']:.4f}, fused {max(head['valid_fused'].values()):.4f})")
    model.eval()
    with torch.no_grad():
        valid = evaluate_embeddings(model(graph), prepared, "valid").metrics
    print("validation: " + ", ".join(f"{k} {v:.4f}" for k, v in valid.items() if k.split("@")[0] in ("recall", "ndcg")))


def cmd_train_fusion(args: argparse.Namespace) -> None:
    from kerec.api import Recommender
    from kerec.api.tuning import choose_fusion_weight, save_fusion_choice

    checkpoint = default_checkpoint() if args.checkpoint is None else Path(args.checkpoint)
    rec = Recommender.load(checkpoint, data=args.data, llm=args.llm)
    choice, sweep = choose_fusion_weight(rec, args.llm, users=args.users, seed=args.seed)
    print("validation ACC by weight: " + ", ".join(f"{w} {v:.3f}" for w, v in sweep.items()))
    save_fusion_choice(checkpoint, choice)
    print(f"fusion weight {choice.weight} for LLM {choice.llm!r} (valid ACC {choice.valid_acc:.3f} over "
          f"{choice.users} users) saved in {checkpoint}; `kerec recommend` with this LLM uses it")


def _print_cold_start(results: dict[str, RankingResult], prepared: Prepared) -> None:
    assert prepared.cold is not None
    print(f"cold-start slice: {prepared.cold.cold_items.size} items never seen in training, "
          f"{results['model'].num_users} users; ranking only those items from side information")
    for name, r in results.items():
        print(f"  {name:<10}  " + "  ".join(f"{k} {r.metrics[k]:.4f}" for k in ("recall@10", "recall@20", "ndcg@20")))


def cmd_eval_retriever(args: argparse.Namespace) -> None:
    if args.checkpoint is None and args.model != "pop":
        args.checkpoint = default_checkpoint()
        if not args.checkpoint.is_file():
            raise KerecError(f"no retriever checkpoint at {args.checkpoint}: run `kerec train retriever` first, "
                             "give --checkpoint, or --model pop for the popularity baseline")
    if args.checkpoint is None:
        prepared = prepare(args.data, format=args.format, split=args.split, seed=args.seed, linked_only=not args.all_items)
        result = popularity(prepared, args.part)
    else:
        ckpt = Checkpoint.load(args.checkpoint)
        prepared = prepare_from_checkpoint(ckpt, args.data, format=args.format)
        model, graph = load_retriever(ckpt, prepared)
        with torch.no_grad():
            result = evaluate_embeddings(model(graph), prepared, args.part)
        if prepared.cold is not None:
            _print_cold_start(evaluate_cold_start(model, graph, prepared), prepared)
    print(f"{args.part} split, full ranking over {int(prepared.allowed_items.sum()):,} items, "
          f"{result.num_users} users ({result.skipped_users} without {args.part} items skipped)")
    print(result.table())


# ---- kerec recommend ------------------------------------------------------------------------------------
def cmd_recommend(args: argparse.Namespace) -> None:
    from kerec.api import Recommender

    rec = Recommender.load(args.checkpoint, data=args.data, store=args.store, llm=None if args.llm == "none" else args.llm,
                           tuned=args.tuned, tuned_engine=args.tuned_engine)
    overrides = {"candidates": args.candidates, "fusion_weight": args.fusion_weight, "explanations": args.explanations}
    rec = rec.with_settings(**{k: v for k, v in overrides.items() if v is not None})
    freeze_long_lived_objects()
    results = rec.recommend_many(args.user, args.k, candidates=args.candidates_list, explain=not args.no_explain)
    if args.json:
        print(json.dumps({u: [r.to_dict() for r in recs] for u, recs in results.items()}, indent=2))
        return
    for user, recs in results.items():
        _print_recommendations(user, recs)
        if args.show:
            from kerec.kg.show import render, user_subgraph

            path = render(user_subgraph(rec.store, user, [r.item_id for r in recs[:5]]),
                          Path(args.show) / f"user-{user}-recommended.{args.image_format}")
            print(f"       picture of the history, linking KG nodes and the top 5: {path}")


def _print_recommendations(user: str, recs: Sequence[Any]) -> None:
    print(f"\nuser {user}: top {len(recs)}")
    for r in recs:
        llm = f"  llm {r.llm_logprob:6.2f}" if r.llm_logprob is not None else ""
        print(f"{r.rank:>3}. {r.title}  [item {r.item_id}]  score {r.score:+.2f}  gnn {r.gnn_score:.2f}{llm}")
        if r.explanation:
            for line in textwrap.wrap(f"{r.explanation} ({r.explanation_source})", 100):
                print(f"       {line}")
        for n in r.cited:
            print(f"       [{n}] {r.evidence[n - 1].text}  ({', '.join(r.evidence[n - 1].fact_ids)})")


# ---- kerec quickstart ------------------------------------------------------------------------------
def cmd_quickstart(args: argparse.Namespace) -> None:
    """The README's main job on the embedded default: data → graph store → statistics → a user's subgraph."""
    from kerec.kg.server import LocalBoltServer
    from kerec.kg.show import render, user_subgraph

    out = Path(args.out)
    ds = _dataset(args)
    print(f"[1/3] dataset {ds.name}")
    _print_table(list(ds.describe().items()))
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
        sub = user_subgraph(store, args.user)
        path = render(sub, out / f"user-{args.user}-subgraph.{args.image_format}")
        print(f"[3/3] user {args.user}: {len(sub.paths)} paths from {len(sub.history)} recent history items "
              f"to {len(sub.candidates)} candidates; picture: {path}")


# ---- parser ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kerec", description="Knowledge-enhanced LLM recommender.")
    parser.add_argument("--version", action="version", version=f"kerec {__version__}")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = top.add_parser("quickstart", help="load the default data into a graph store, print statistics, draw a subgraph",
                       description=cmd_quickstart.__doc__)
    _add_data_args(p)
    _add_store_args(p)
    p.set_defaults(func=cmd_quickstart)
    p.add_argument("--out", default="runs/quickstart", help="output folder (default: runs/quickstart)")
    p.add_argument("--user", default="1", help="user whose subgraph is drawn (default: 1)")
    p.add_argument("--image-format", default="png", choices=("png", "svg", "html"))
    p.add_argument("--replace", action="store_true", help="overwrite another dataset held by the store")
    p.epilog = "--uri local starts a throw-away ArcadeDB Bolt server for the run."

    data = top.add_parser("data", help="inspect datasets and make splits").add_subparsers(dest="sub", required=True, metavar="SUB")
    p = data.add_parser("info", help="print dataset counts", description="Print a dataset's counts.")
    _add_data_args(p)
    p.set_defaults(func=cmd_data_info)
    p = data.add_parser("split", help="make a deterministic split and write it as TSV",
                        description="Write train.tsv/valid.tsv/test.tsv (user_id, item_id) for other systems.")
    _add_data_args(p)
    p.add_argument("--protocol", choices=("random", "loo"), default="random",
                   help="random: per-user random split with --ratios (RecBole); loo: leave-one-out by time")
    p.add_argument("--ratios", type=float, nargs=3, default=(0.8, 0.1, 0.1), metavar=("TRAIN", "VALID", "TEST"))
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--linked-only", action="store_true", help="keep only interactions with KG-linked items")
    p.add_argument("--out", required=True, help="folder for the three TSV files")
    p.set_defaults(func=cmd_data_split)

    kg = top.add_parser("kg", help="graph store: serve, load, stats, show").add_subparsers(dest="sub", required=True, metavar="SUB")
    p = kg.add_parser("serve", help="run a local ArcadeDB Bolt server (foreground)",
                      description="Run ArcadeDB's Bolt server from the arcadedb-embedded wheel on 127.0.0.1.")
    p.add_argument("--dir", default=str(DEFAULT_SERVE_DIR), help=f"data folder (default: {DEFAULT_SERVE_DIR})")
    p.add_argument("--port", type=int, default=7687, help="Bolt port (default: 7687; 0 picks a free one)")
    p.add_argument("--password", default=None, help=f"root password (default: ${ENV_PASSWORD} or a random one)")
    p.add_argument("--load", action="store_true", help="load the dataset (--data) once the server is up")
    _add_data_args(p)
    p.set_defaults(func=cmd_kg_serve)
    p = kg.add_parser("load", help="load a dataset into a Bolt server", description="Load a dataset's collaborative KG.")
    _add_data_args(p)
    _add_store_args(p, default="bolt://127.0.0.1:7687")
    p.add_argument("--replace", action="store_true", help="overwrite another dataset held by the store")
    p.add_argument("--batch-size", type=int, default=10_000)
    p.set_defaults(func=cmd_kg_load)
    p = kg.add_parser("stats", help="print graph-store statistics", description="Print what a graph store holds.")
    _add_data_args(p)
    _add_store_args(p)
    p.set_defaults(func=cmd_kg_stats)
    p = kg.add_parser("show", help="draw a user's history, linking entities and candidates",
                      description="Draw a user's KG subgraph to .png, .svg or .html.")
    p.add_argument("--user", required=True, help="user id")
    p.add_argument("--items", nargs="*", default=None, help="candidate item ids (default: chosen from the KG)")
    p.add_argument("--max-hops", type=int, default=2, choices=(1, 2, 3))
    p.add_argument("--out", required=True, help="output file: .png, .svg or .html")
    _add_data_args(p)
    _add_store_args(p)
    p.set_defaults(func=cmd_kg_show)

    trainp = top.add_parser("train", help="train a stage").add_subparsers(dest="sub", required=True, metavar="SUB")
    p = trainp.add_parser("retriever", help="train the GNN retriever (or a baseline) with early stopping on validation",
                          description="Train a retriever: L = L_R + λ_K·L_K (TransE), selection on valid NDCG@10. "
                                      "kerec's defaults (chosen on validation): L_R a softmax over the whole catalogue "
                                      "(temperature 0.5), then the closed-form item–item head fused with its weight "
                                      "chosen on validation. Baselines train with BPR.")
    _add_data_args(p)
    _add_split_args(p)
    p.add_argument("--model", choices=MODELS + ("pop",), default=None, help="retriever (default: kerec)")
    p.add_argument("--config", default=None, help="YAML with 'model:' and 'train:' sections; flags override it")
    p.add_argument("--dim", type=int, default=None, help="embedding size (default 64)")
    p.add_argument("--layers", type=int, default=None, help="user–item propagation layers (default 2)")
    p.add_argument("--kg-layers", type=int, default=None, help="KG aggregation layers (default 1)")
    p.add_argument("--no-kg", action="store_true", help="ablation: no KG edges and no L_K")
    p.add_argument("--no-text", action="store_true", help="ablation: no item text features")
    p.add_argument("--item-head", action=argparse.BooleanOptionalAction, default=None,
                   help="fuse the closed-form item–item head (EASE) after training, weight chosen on validation "
                        "(kerec only; default on for kerec)")
    p.add_argument("--loss", choices=LOSSES, default=None, help="L_R (default for kerec: full; baselines: bpr)")
    defaults = default_settings()[1]  # help texts quote the defaults themselves, so they cannot drift
    for flag, kind, what in (("--temperature", float, "softmax temperature (losses softmax and full)"),
                             ("--epochs", int, "at most this many epochs"),
                             ("--batch-size", int, "interactions per step"),
                             ("--lr", float, "Adam learning rate"),
                             ("--reg", float, "L2 weight on layer-0 embeddings"),
                             ("--negatives", int, "negatives per positive (losses bpr and softmax)"),
                             ("--lambda-k", float, "weight of the KG loss L_K (0 = ablation without L_K)"),
                             ("--lambda-a", float, "weight of the graph–text alignment L_A"),
                             ("--patience", int, "validation checks without improvement before stopping")):
        default = getattr(defaults, flag[2:].replace("-", "_"))
        p.add_argument(flag, type=kind, default=None, help=f"{what} (default for kerec {default})")
    p.add_argument("--cold-start", type=float, default=None, metavar="FRACTION",
                   help="set this share of items aside with all their interactions; `kerec eval retriever` then "
                        "also ranks them from text and KG alone (e.g. 0.1)")
    p.add_argument("--gnn-holdout", type=float, default=None, metavar="FRACTION",
                   help="keep this share of each user's training pairs from the GNN (they stay masked as seen and "
                        "in the history), so `kerec finetune` with data.targets: gnn_holdout tunes the LLM on "
                        "targets the GNN never saw (stacking; e.g. 0.1)")
    p.add_argument("--gnn-holdout-order", choices=("random", "latest"), default="random",
                   help="which pairs --gnn-holdout keeps: a seeded random share, or each user's latest by timestamp "
                        "(with --split loo: then data.targets: gnn_holdout_next tunes on each user's next items)")
    p.add_argument("--out", default=None,
                   help="folder for retriever.pt and TensorBoard logs (default: $KEREC_HOME/retriever, where "
                        "`kerec recommend` looks; KEREC_HOME defaults to ~/.cache/kerec)")
    p.set_defaults(func=cmd_train_retriever)
    p = trainp.add_parser("fusion", help="choose the GNN + LLM fusion weight on validation and save it in the checkpoint",
                          description="Score validation users' 20 candidates (a held-out item + 19 never-seen items) "
                                      "with the GNN and the LLM, keep the fusion weight with the best ACC, and save it "
                                      "in the retriever checkpoint for that LLM; `kerec recommend`/`serve` with the "
                                      "same --llm use it (Settings.fusion_weight overrides).")
    _add_data_args(p)
    p.add_argument("--checkpoint", default=None, help="retriever.pt (default: $KEREC_HOME/retriever/retriever.pt)")
    p.add_argument("--llm", default="auto", help="LLM spec (kerec.llm.load_llm), saved with the weight (default: auto)")
    p.add_argument("--users", type=int, default=300, help="validation users sampled (0 = all; default 300)")
    p.add_argument("--seed", type=int, default=2020, help="sampling seed (default 2020)")
    p.set_defaults(func=cmd_train_fusion)

    from kerec.eval.cli import configure as configure_eval, run as run_eval

    evalparser = top.add_parser(
        "eval", help="batch evaluation: `--config FILE` for the whole report, or a stage (`retriever`)",
        description="Evaluate every stage over held-out users from one config (`kerec eval --config "
                    "eval/configs/quick.yaml`: report, tables and plots under eval/results/<name>/), "
                    "or one retriever checkpoint (`kerec eval retriever`).")
    configure_eval(evalparser, required=False)
    evalparser.set_defaults(func=run_eval)
    evalp = evalparser.add_subparsers(dest="sub", required=False, metavar="SUB")
    p = evalp.add_parser("retriever", help="full-ranking Recall/NDCG/Hit/MRR@10,20 of a trained retriever",
                         description="Evaluate a retriever checkpoint on its own split (test touched once).")
    _add_data_args(p)
    _add_split_args(p)
    p.add_argument("--checkpoint", default=None,
                   help="retriever.pt from `kerec train retriever` (default: the one it wrote under $KEREC_HOME/retriever)")
    p.add_argument("--model", choices=("pop",), default=None, help="evaluate the popularity baseline instead")
    p.add_argument("--part", choices=("valid", "test"), default="test")
    p.set_defaults(func=cmd_eval_retriever)

    p = top.add_parser("recommend", help="explained top-k recommendations for users (GNN → KG evidence → LLM)",
                       description="Recommend with a trained retriever, KG evidence and the LLM ranker; every "
                                   "explanation's citations are checked against the graph store.")
    p.add_argument("--user", action="append", required=True, help="user id (repeat for several users)")
    p.add_argument("-k", type=int, default=10, help="items per user (default 10)")
    p.add_argument("--checkpoint", default="default",
                   help="retriever.pt (default: the one `kerec train retriever` wrote under $KEREC_HOME/retriever)")
    p.add_argument("--data", default=None, help="dataset the retriever was trained on (default: the embedded ml-100k)")
    p.add_argument("--store", default=None, help="graph store URI holding that dataset (default: an in-process store)")
    p.add_argument("--llm", default="auto",
                   help="LLM spec: 'auto' (default+bf16 on a CPU with native bf16, else default), "
                        "'default' (SmolLM2-135M-Instruct, transformers on CPU, float32), 'default+bf16' (the same "
                        "in bfloat16: ~2x faster on CPUs with AVX512-BF16, same ranking), 'default+int8' (int8 weights: "
                        "~2.7x faster, ranking moved a little), 'transformers:<id or path>', 'vllm:<id>', "
                        "'openai:<url>#<model>', or 'none' (GNN ranking, templated explanations)")
    p.add_argument("--tuned", default=None, metavar="DIR",
                   help="a `kerec finetune` run or step folder: its LLM ranks with the graph soft prompt, and its GNN is "
                        "the retriever unless --checkpoint is given (explanations: --llm, e.g. default@DIR/step-N/adapter)")
    p.add_argument("--tuned-engine", choices=("transformers", "vllm"), default="transformers",
                   help="what runs the --tuned LLM: the joint model in transformers, or vLLM (LoRA adapter via "
                        "enable_lora, the graph soft prompt as prompt embeddings)")
    p.add_argument("--candidates", type=int, default=None, help="GNN candidates the LLM ranks (≤ 20, default 20)")
    p.add_argument("--candidates-list", nargs="+", default=None, metavar="ITEM", help="rank only these item ids")
    p.add_argument("--fusion-weight", type=float, default=None,
                   help="LLM share of the fused score, 0..1 (default: the weight saved beside the checkpoint, else 0)")
    p.add_argument("--no-explain", action="store_true", help="skip explanations")
    p.add_argument("--explanations", choices=("auto", "llm", "template"), default=None,
                   help="'llm': written by the LLM, citations checked, templated when they fail; 'template': built "
                        "from the GNN's top facts, no generation; 'auto' (default): 'llm' unless the LLM runs on "
                        "this CPU, where writing ten takes 14-20 s with the 135M model and most fail the check")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--show", default=None, metavar="DIR",
                   help="also draw each user's history, linking KG nodes and recommended items into DIR")
    p.add_argument("--image-format", choices=("png", "svg", "html"), default="png", help="picture format for --show")
    p.set_defaults(func=cmd_recommend)

    from kerec.finetune.cli import add_parser as add_finetune, run as run_finetune

    add_finetune(top).set_defaults(func=run_finetune)

    from kerec.chat.cli import add_parser as add_chat, run as run_chat
    from kerec.serve.cli import add_parser as add_serve, run as run_serve

    add_chat(top).set_defaults(func=run_chat)
    add_serve(top).set_defaults(func=run_serve)
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
