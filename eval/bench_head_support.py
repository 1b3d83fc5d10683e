"""The item–item head over a support of popular items against the head over every item, on validation.

    python eval/bench_head_support.py --data DIR [--supports 1000 2000 5000] [--out eval/results/head_support]

Trains kerec's retriever once on ``--data`` (per-user 8:1:1 split, seed 2020; text off, full softmax at
temperature 0.5, at most ``--epochs`` epochs with patience 5), then fits the head (λ and the fusion weight
chosen on validation NDCG@10, as ``kerec train retriever`` does) over every item and over the ``--supports``
most popular items: what :mod:`kerec.gnn.item_head` does above ``MAX_ITEMS`` items, measured on a catalogue
small enough for the full head to exist. Writes ``results.json`` and ``table.md`` under ``--out`` with the
command, the commit and whether the tree was clean. The test split is not read.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from kerec.eval.command import recorded_command


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="dataset folder, or \"default\" for the embedded ml-100k")
    p.add_argument("--supports", type=int, nargs="+", default=[1000, 2000, 5000])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--out", default="eval/results/head_support")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from kerec.gnn import RetrieverSpec, prepare
    from kerec.gnn.item_head import ItemHead
    from kerec.gnn.pipeline import fit_item_head, train_retriever
    from kerec.gnn.train import TrainConfig

    command = recorded_command("python eval/bench_head_support.py", argv)
    prepared = prepare(None if args.data == "default" else args.data, seed=2020, linked_only=False)
    ds = prepared.dataset
    spec = RetrieverSpec(item_head=True, use_text=False)
    config = TrainConfig(loss="full", temperature=0.5, epochs=args.epochs, patience=5, seed=2020)
    t0 = time.perf_counter()
    model, graph, state = train_retriever(prepared, spec, config, progress=False)
    trained = {"best_epoch": state.best_epoch, "epochs_run": len(state.history), "seconds": time.perf_counter() - t0,
               "stopped_by": "patience" if len(state.history) < args.epochs else "epoch cap"}
    rows = [{"support": ds.num_items, **_row(state.post["item_head"])}]
    for size in sorted(s for s in args.supports if s < ds.num_items):
        model.head = ItemHead(num_items=ds.num_items, max_items=size)
        rows.append({"support": size, **_row(fit_item_head(model, graph, prepared))})
        print(rows[-1], flush=True)
    result = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "sizes": {"users": ds.num_users, "items": ds.num_items, "train_pairs": len(prepared.split.train)},
              "training": trained, "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    lines = ["# The item–item head over the most popular items (validation NDCG@10)", "", f"`{command}`, {result['date']}.", "",
             f"{ds.num_users:,} users, {ds.num_items:,} items, {len(prepared.split.train):,} training pairs; kerec's GNN "
             f"best epoch {trained['best_epoch']} of {trained['epochs_run']} ({trained['stopped_by']}).", "",
             "| head over | share of training pairs | λ | head alone | GNN alone | fused | weight | fit s |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['support']:,} items | {r['pair_share']:.1%} | {r['reg']:g} | {r['alone']:.4f} | {r['gnn']:.4f} "
                     f"| {r['fused']:.4f} | {r['weight']:g} | {r['seconds']:.1f} |")
    (out / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def _row(search: dict[str, object]) -> dict[str, object]:
    support = search.get("support") or {}
    return {"reg": search["reg"], "weight": search["weight"], "gnn": search["valid_gnn"],
            "alone": max(search["valid_head_alone"].values()), "fused": max(search["valid_fused"].values()),
            "pair_share": support.get("pair_share", 1.0), "seconds": search["seconds"]}


if __name__ == "__main__":
    main()
