"""What a tuned LLM's letter scores follow: their per-user correlation with the tuned GNN's score and with
the recency feature (mean cosine to the user's m most recent training items), and the ACC of each alone, on
sampled validation users (19 random negatives; the test split is not touched).

    .venv/bin/python eval/letter_correlation.py runs/finetune-sequential-loo --users 120 --recency 5
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from kerec.eval import candidates as cp
from kerec.data.history import training_histories
from kerec.finetune.scoring import TunedRanker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a `kerec finetune` run or step folder")
    parser.add_argument("--users", type=int, default=120, help="validation users sampled (default 120)")
    parser.add_argument("--recency", type=int, default=5, help="most recent training items compared (default 5)")
    parser.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args()
    ranker = TunedRanker.load(args.checkpoint)
    prepared = ranker.builder.prepared
    tasks = cp.negative_tasks(prepared, "valid", cp.sample_users(prepared, "valid", args.users, args.seed), args.seed, 19)
    users, items = prepared.dataset.users, prepared.dataset.items
    ext_users = [users.external(t.user) for t in tasks]
    ext_items = [[items.external(int(i)) for i in t.items] for t in tasks]
    letters, gnn = ranker.letter_logprobs(ext_users, ext_items), ranker.gnn_scores(ext_users, ext_items)
    with torch.no_grad():
        recency = cp.recency_scores(ranker.model.gnn(ranker.graph).items, tasks, training_histories(prepared.dataset, prepared.split.train), args.recency)
    r_rec, r_gnn, hits = [], [], {"LLM letters": 0, "tuned GNN": 0, "recency": 0}
    for n, (t, rec) in enumerate(zip(tasks, recency)):
        c = len(t.items)
        llm, z = letters[n][:c], gnn[n][:c]
        r_rec.append(np.corrcoef(llm, rec)[0, 1])
        r_gnn.append(np.corrcoef(llm, z)[0, 1])
        for name, s in (("LLM letters", llm), ("tuned GNN", z), ("recency", rec)):
            hits[name] += int(t.items[int(np.argmax(s))]) in t.targets
    print(f"{len(tasks)} validation users: mean per-user r(letters, recency) {np.nanmean(r_rec):+.3f}, "
          f"r(letters, tuned GNN) {np.nanmean(r_gnn):+.3f}")
    print("ACC alone: " + ", ".join(f"{k} {v / len(tasks):.3f}" for k, v in hits.items()))


if __name__ == "__main__":
    main()
