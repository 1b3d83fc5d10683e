"""``kerec train retriever`` and ``kerec eval retriever``: the GNN retriever stage's commands."""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from kerec.data import KerecError
from kerec.data.cli import add_data_args
from kerec.gnn import (Prepared, RetrieverSpec, default_settings, evaluate_cold_start, evaluate_embeddings,
                       item_text_vectors, load_config, load_retriever, make_checkpoint, popularity, prepare,
                       prepare_from_checkpoint, train_retriever)
from kerec.gnn.checkpoint import Checkpoint
from kerec.gnn.distributed import init_from_env
from kerec.gnn.models import MODELS
from kerec.gnn.train import LOSSES, TrainConfig
from kerec.metrics import RankingResult
from kerec.paths import default_checkpoint


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
    if args.social:
        spec = replace(spec, use_social=True)
    train_overrides = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "reg": args.reg,
                       "negatives": args.negatives, "inbatch_group": args.inbatch_group, "loss": args.loss,
                       "temperature": args.temperature,
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


def add_train_parser(trainp: argparse._SubParsersAction) -> None:
    """``kerec train retriever``."""
    p = trainp.add_parser("retriever", help="train the GNN retriever (or a baseline) with early stopping on validation",
                          description="Train a retriever: L = L_R + λ_K·L_K (TransE), selection on valid NDCG@10. "
                                      "kerec's defaults (chosen on validation): L_R a softmax over the whole catalogue "
                                      "(temperature 0.5), then the closed-form item–item head fused with its weight "
                                      "chosen on validation. Baselines train with BPR.")
    add_data_args(p)
    _add_split_args(p)
    p.add_argument("--model", choices=MODELS + ("pop",), default=None, help="retriever (default: kerec)")
    p.add_argument("--config", default=None, help="YAML with 'model:' and 'train:' sections; flags override it")
    p.add_argument("--dim", type=int, default=None, help="embedding size (default 64)")
    p.add_argument("--layers", type=int, default=None, help="user–item propagation layers (default 2)")
    p.add_argument("--kg-layers", type=int, default=None, help="KG aggregation layers (default 1)")
    p.add_argument("--no-kg", action="store_true", help="ablation: no KG edges and no L_K")
    p.add_argument("--no-text", action="store_true", help="ablation: no item text features")
    p.add_argument("--social", action="store_true",
                   help="kerec only: add the dataset's friend links (.net) to the user–item graph as user–user edges")
    p.add_argument("--item-head", action=argparse.BooleanOptionalAction, default=None,
                   help="fuse the closed-form item–item head (EASE) after training, weight chosen on validation "
                        "(kerec only; default on for kerec)")
    p.add_argument("--loss", choices=LOSSES, default=None, help="L_R (default for kerec: full; baselines: bpr)")
    defaults = default_settings()[1]  # help texts quote the defaults themselves, so they cannot drift
    for flag, kind, what in (("--temperature", float, "softmax temperature (losses softmax, full and inbatch)"),
                             ("--epochs", int, "at most this many epochs"),
                             ("--batch-size", int, "interactions per step"),
                             ("--lr", float, "Adam learning rate"),
                             ("--reg", float, "L2 weight on layer-0 embeddings"),
                             ("--negatives", int, "negatives per positive (losses bpr and softmax)"),
                             ("--inbatch-group", int, "loss inbatch: rows in groups of this many, each row's "
                                                      "negatives its group's positives, so a large batch costs "
                                                      "batch × group, not batch² (0 = the whole batch)"),
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


def add_eval_parser(evalp: argparse._SubParsersAction) -> None:
    """``kerec eval retriever``."""
    p = evalp.add_parser("retriever", help="full-ranking Recall/NDCG/Hit/MRR@10,20 of a trained retriever",
                         description="Evaluate a retriever checkpoint on its own split (test touched once).")
    add_data_args(p)
    _add_split_args(p)
    p.add_argument("--checkpoint", default=None,
                   help="retriever.pt from `kerec train retriever` (default: the one it wrote under $KEREC_HOME/retriever)")
    p.add_argument("--model", choices=("pop",), default=None, help="evaluate the popularity baseline instead")
    p.add_argument("--part", choices=("valid", "test"), default="test")
    p.set_defaults(func=cmd_eval_retriever)
