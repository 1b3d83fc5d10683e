"""Cold-item probe on validation only (issue 22): trained GNNs scoring pseudo-cold items from side information.

    PYTHONPATH=. python eval/cold_probe.py --out eval/results/knowledge/cold_probe.json [--epochs 60] [--kg-layers 2]
    PYTHONPATH=.:/path/to/pykeen python eval/cold_probe.py --out … --pykeen RotatE [--kge-epochs 100] [--only-kge]

The cold-start protocol's 10% cold items (seed 2020) are set aside and never read; 10% of the remaining items
(seed 7) are held out as pseudo-cold, their train and valid pairs the targets, ranked among themselves (as in
eval/knowledge_probes.py). kerec (text + KG) and kerec without KG train on the rest; each scoring variant is
a Recall@20 over the pseudo-cold items.

``--pykeen MODEL`` (TransE, RotatE, … any PyKEEN model name) adds entity embeddings pre-trained on the KG
alone (PyKEEN's sLCWA training loop on the training graph's forward facts, items being KG nodes, no
interactions) as item inputs: each item's embedding, L2-normalised, is appended to its text vector, so the
retriever learns its projection as it learns the text's. Two more systems: ``kerec-no-kg+kge`` (text + the
pre-trained KG view, no KG layer) and ``kerec+kge`` (both). ``--only-kge`` trains only those two.
PyKEEN is not one of kerec's dependencies: the probe imports it from wherever ``PYTHONPATH`` finds it.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from kerec.data import Split, cold_start_split
from kerec.gnn import Prepared, RetrieverSpec, item_text_vectors, prepare
from kerec.gnn.pipeline import load_config, train_retriever
from kerec.metrics import evaluate_full_ranking


def pseudo_cold(prepared: Prepared) -> tuple[Prepared, np.ndarray, np.ndarray]:
    ds = prepared.dataset
    cold = cold_start_split(prepared.split, ds.num_items, fraction=0.1, seed=2020)
    warm = Split(cold.warm.train, cold.warm.valid, np.zeros((0, 2), dtype=np.int64))
    inner = cold_start_split(warm, ds.num_items, fraction=0.1, seed=7)
    allowed = prepared.allowed_items.copy()
    allowed[cold.cold_items] = False
    allowed[inner.cold_items] = False
    return replace(prepared, split=inner.warm, allowed_items=allowed), inner.cold_items, inner.cold_pairs


def recall20(emb, n_users: int, n_items: int, only: torch.Tensor, target: np.ndarray) -> float:
    def score(u: torch.Tensor) -> torch.Tensor:
        return (emb.users[u] @ emb.items.T).masked_fill(~only, float("-inf"))
    return round(evaluate_full_ranking(score, num_users=n_users, num_items=n_items, target=target, exclude=[],
                                       ks=(20,)).metrics["recall@20"], 4)


def kg_embeddings(prepared: Prepared, model_name: str, dim: int, epochs: int) -> np.ndarray:
    """(I, d') — each item's KG embedding from a PyKEEN model trained on the KG alone, rows L2-normalised
    (complex embeddings as their real and imaginary parts)."""
    from pykeen.models import model_resolver
    from pykeen.training import SLCWATrainingLoop
    from pykeen.triples import TriplesFactory

    from kerec.gnn.graph import build_training_graph

    graph = build_training_graph(prepared.graph_kg, prepared.split.train)
    triples = graph.kg_triples.numpy()
    factory = TriplesFactory(mapped_triples=torch.from_numpy(triples), num_entities=graph.num_kg_nodes,
                             num_relations=graph.num_relations // 2,
                             entity_to_id={str(i): i for i in range(graph.num_kg_nodes)},
                             relation_to_id={str(r): r for r in range(graph.num_relations // 2)})
    model = model_resolver.make(model_name, triples_factory=factory, embedding_dim=dim, random_seed=2020)
    loop = SLCWATrainingLoop(model=model, triples_factory=factory, optimizer="adam",
                             optimizer_kwargs={"lr": 1e-3}, negative_sampler_kwargs={"num_negs_per_pos": 8})
    losses = loop.train(triples_factory=factory, num_epochs=epochs, batch_size=1024, use_tqdm=False)
    print(f"{model_name}: loss {losses[0]:.4f} -> {losses[-1]:.4f} over {epochs} epochs", flush=True)
    with torch.no_grad():
        z = model.entity_representations[0](indices=torch.arange(graph.num_items))
    if torch.is_complex(z):
        z = torch.view_as_real(z).flatten(1)
    return torch.nn.functional.normalize(z.float(), dim=1).numpy()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="eval/anchors/ml100k-recbole-split")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--out", required=True)
    ap.add_argument("--kg-layers", type=int, default=None, help="KG aggregation layers (default: the config's, 1)")
    ap.add_argument("--pykeen", default=None, help="PyKEEN model whose KG embeddings join the item inputs (module docstring)")
    ap.add_argument("--kge-epochs", type=int, default=100)
    ap.add_argument("--kge-dim", type=int, default=64)
    ap.add_argument("--only-kge", action="store_true", help="train only the systems with pre-trained KG embeddings")
    args = ap.parse_args()
    base = prepare(None, split=args.split)
    prepared, cold_items, targets = pseudo_cold(base)
    ds = prepared.dataset
    text = item_text_vectors(ds, progress=False)
    spec0, config0 = load_config("eval/configs/retriever-head.yaml")
    spec0 = replace(spec0, item_head=False, **({"kg_layers": args.kg_layers} if args.kg_layers is not None else {}))
    only = torch.zeros(ds.num_items, dtype=torch.bool)
    only[torch.from_numpy(cold_items)] = True
    trained_items = np.unique(prepared.split.train[:, 1])
    out: dict[str, object] = {"pseudo_cold_items": int(cold_items.size), "targets": int(len(targets))}
    systems = [] if args.only_kge else [("kerec", True, text), ("kerec-no-kg", False, text)]
    if args.pykeen:
        started = time.perf_counter()
        kge = kg_embeddings(prepared, args.pykeen, args.kge_dim, args.kge_epochs)
        out["kge"] = {"model": args.pykeen, "dim": args.kge_dim, "epochs": args.kge_epochs,
                      "seconds": round(time.perf_counter() - started)}
        print(out["kge"], flush=True)
        with_kge = np.concatenate([text, kge], axis=1).astype(np.float32)
        systems += [("kerec-no-kg+kge", False, with_kge), ("kerec+kge", True, with_kge)]
    for name, use_kg, features in systems:
        config = replace(config0, epochs=args.epochs, patience=10, seed=2020)
        started = time.perf_counter()
        model, graph, state = train_retriever(prepared, replace(spec0, use_kg=use_kg), config, item_text=features,
                                              progress=False)
        blind = copy.deepcopy(model)
        blind.forget_items(torch.from_numpy(cold_items))
        res: dict[str, object] = {"best_epoch": state.best_epoch, "epochs_run": len(state.history),
                                  "seconds": round(time.perf_counter() - started)}
        with torch.no_grad():
            res["forget ids"] = recall20(blind(graph), ds.num_users, ds.num_items, only, targets)
            if use_kg:
                # entities linked to no item the GNN learnt preferences for: zeroed, or set to the mean
                src, dst = graph.kg_edge_index
                is_trained = torch.zeros(graph.num_items + graph.num_entities, dtype=torch.bool)
                is_trained[torch.from_numpy(trained_items)] = True
                linked = torch.zeros_like(is_trained)
                linked[dst[(src < graph.num_items) & is_trained[src]]] = True
                untrained = ~linked[graph.num_items:][: graph.num_entities]
                res["untrained entities"] = int(untrained.sum())
                for how in ("zero", "mean"):
                    b2 = copy.deepcopy(blind)
                    w = b2.entity.weight.data
                    w[: graph.num_entities][untrained] = 0 if how == "zero" else w[: graph.num_entities][~untrained].mean(0)
                    res[f"forget ids + untrained entities {how}"] = recall20(b2(graph), ds.num_users, ds.num_items,
                                                                             only, targets)
        out[name] = res
        print(name, res, flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
