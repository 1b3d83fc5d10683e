"""Seconds per training step of kerec's retriever on one dataset, and the epoch they add up to.

    python eval/bench_train_step.py --data DIR [--batch-sizes 4096 16384] [--out eval/results/train_step]

A step is what an epoch pays ``ceil(training pairs / batch)`` times: the forward pass over the whole graph
(KG aggregation, LightGCN propagation), L_R (the in-batch softmax with logQ correction: the loss that scales
to any catalogue) + L_reg + λ_K·L_K, the backward pass and Adam. Each configuration runs ``--repeats`` steps
after a warm-up step; the forward, backward and optimiser seconds are their means. ``--torch-backward``
adds the same steps with torch's own backward of the sparse products (which transposes the CSR matrix on
every call), the path kerec used before :func:`kerec.gnn.graph.propagate`. The data is split per user 8:1:1
(seed 2020); text input is off (its encoding is a stage of its own in eval/bench_scale.py). Writes
``results.json`` and ``table.md`` under ``--out`` with the command, the commit and whether the tree was clean.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from kerec.eval.command import code_state, recorded_command


def measure(graph: object, batch: int, repeats: int, *, torch_backward: bool) -> dict[str, float]:
    import kerec.gnn.models as models
    from kerec.gnn.distributed import Objective
    from kerec.gnn.models import KnowledgeRetriever
    from kerec.gnn.train import TrainConfig, item_log_share, ranking_loss

    config = TrainConfig(loss="inbatch", temperature=0.5, batch_size=batch)
    torch.manual_seed(0)
    model = KnowledgeRetriever(num_users=graph.num_users, num_items=graph.num_items, num_entities=graph.num_entities,
                               num_relations=graph.num_relations)
    objective = Objective(model, ranking_loss(config, None, item_log_share(graph.train_pairs, graph.num_items)))
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(0)
    ours = models.propagate
    if torch_backward:  # the path before kerec.gnn.graph.propagate: torch differentiates a @ x itself
        models.propagate = lambda a, a_t, x: a @ x
    times = []
    try:
        for _ in range(repeats + 1):
            rows = graph.train_pairs[torch.randint(0, len(graph.train_pairs), (batch,), generator=gen)]
            pick = torch.randint(0, len(graph.kg_triples), (config.kg_batch_size,), generator=gen)
            corrupt = torch.randint(0, graph.num_kg_nodes, (len(pick),), generator=gen)
            t0 = time.perf_counter()
            loss_r, loss_reg, loss_k, _, _ = objective(graph, rows[:, 0], rows[:, 1], torch.zeros(batch, 0, dtype=torch.long),
                                                       graph.kg_triples[pick], corrupt)
            loss = loss_r + config.reg * loss_reg + config.lambda_k * loss_k
            t1 = time.perf_counter()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            t2 = time.perf_counter()
            optimiser.step()
            times.append((t1 - t0, t2 - t1, time.perf_counter() - t2))
    finally:
        models.propagate = ours
    fwd, bwd, adam = np.mean(times[1:], axis=0)
    return {"forward": float(fwd), "backward": float(bwd), "adam": float(adam), "step": float(fwd + bwd + adam)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="dataset folder (RecBole atomic files, e.g. from kerec data synth)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[4096])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--torch-backward", action="store_true", help="also time torch's own sparse backward")
    p.add_argument("--out", default="eval/results/train_step")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from kerec.data import load_dataset, random_split
    from kerec.gnn import Prepared, RetrieverSpec
    from kerec.gnn.pipeline import build_graph
    from kerec.kg.ckg import ckg_tensors

    command = recorded_command("python eval/bench_train_step.py", argv)
    t0 = time.perf_counter()
    ds = load_dataset(args.data)
    split = random_split(ds, seed=2020)
    prepared = Prepared(ds, split, ckg_tensors(ds), np.ones(ds.num_items, dtype=bool))
    graph = build_graph(prepared, RetrieverSpec(use_text=False), None)
    setup = time.perf_counter() - t0
    rows = []
    for batch in args.batch_sizes:
        for torch_backward in ((False, True) if args.torch_backward else (False,)):
            r = measure(graph, batch, args.repeats, torch_backward=torch_backward)
            steps = -(-len(split.train) // batch)
            rows.append({"batch": batch, "sparse_backward": "torch's own" if torch_backward else "kerec (transpose once)",
                         **r, "steps_per_epoch": steps, "epoch_seconds": r["step"] * steps})
            print(rows[-1], flush=True)
    sizes = {"users": ds.num_users, "items": ds.num_items, "interactions": len(ds.interactions.pairs()),
             "train_pairs": len(split.train), "kg_triples": int(graph.kg_triples.shape[0])}
    result = {"command": command, "code": code_state(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), torch threads {args.threads}",
              "sizes": sizes, "setup_seconds": setup, "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    lines = [f"# Seconds per training step ({result['machine']})", "", f"`{command}`, {result['date']}.", "",
             "Data: " + ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in sizes.items())
             + f"; reading, KG export and graph building took {setup:.0f} s. Loss: in-batch softmax with logQ "
             "correction; means of the steps after a warm-up.", "",
             "| batch | sparse backward | forward s | backward s | Adam s | step s | steps/epoch | epoch (projected) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['batch']:,} | {r['sparse_backward']} | {r['forward']:.2f} | {r['backward']:.2f} "
                     f"| {r['adam']:.2f} | {r['step']:.2f} | {r['steps_per_epoch']:,} | {r['epoch_seconds']:,.0f} s ({r['epoch_seconds'] / 60:.1f} min) |")
    (out / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
