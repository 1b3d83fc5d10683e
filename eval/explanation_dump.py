"""Write every test user's top-k recommendations with their templated explanations and evidence as JSON
lines, using only kerec's public API (``Recommender.load``, ``recommend_many``, ``Recommendation.to_dict``),
so that the same script runs against older kerec code: ``eval/bench_explanation_quality.py`` runs it once
with this tree's code and once with a past commit's (PYTHONPATH), then measures both the same way.

    python eval/explanation_dump.py --checkpoint runs/ret-explain/retriever.pt --out /tmp/after.jsonl
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from kerec.api import Recommender


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="retriever.pt (kerec train retriever --out)")
    p.add_argument("--out", required=True, type=Path, help="JSON lines file to write, one user per line")
    p.add_argument("-k", type=int, default=10, help="items per user (default 10)")
    p.add_argument("--users", type=int, default=0, help="only the first N test users (default: all)")
    p.add_argument("--batch", type=int, default=64, help="users per recommend_many call (default 64)")
    args = p.parse_args()
    torch.set_num_threads(1)
    rec = Recommender.load(args.checkpoint, llm=None)
    test = rec.prepared.split.test
    users = [rec.dataset.users.external(int(u)) for u in sorted(set(test[:, 0].tolist()))]
    if args.users:
        users = users[: args.users]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with args.out.open("w", encoding="utf-8") as out:
        for lo in range(0, len(users), args.batch):
            batch = users[lo: lo + args.batch]
            for user, recs in rec.recommend_many(batch, args.k).items():
                out.write(json.dumps({"user": user, "recommendations": [r.to_dict() for r in recs]}) + "\n")
    seconds = time.perf_counter() - start
    print(json.dumps({"users": len(users), "seconds": round(seconds, 1), "settings": repr(rec.settings)}))


if __name__ == "__main__":
    main()
