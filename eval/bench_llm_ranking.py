"""The LLM stage measured: 20-candidate ranking (GNN alone, LLM alone, fused), grounding of explanations,
and latency of ``recommend(user, 10)``.

    .venv/bin/kerec train retriever --split eval/anchors/ml100k-recbole-split \
        --config eval/configs/retriever.yaml --out runs/bench-retriever
    .venv/bin/python eval/bench_llm_ranking.py --checkpoint runs/bench-retriever/retriever.pt

Protocol (LLaRA / K-RagRec): per held-out user, one held-out item (drawn with the seed) plus 19 items the
user never interacted with, shuffled, lettered A–T; the history the prompts show is the training split
only. ACC = HR@1, Recall@3/5 = HR@3/5 (one target); ValidRatio = share of answers that are one of the
candidates (by construction of letter scoring; the free-text answer of greedy decoding is reported
beside it). The realistic variant ranks the GNN's own top-20 (seen items masked): a hit is any of the
user's held-out items. The fusion weight is chosen on the validation split (ACC, ties to the smaller
weight; :mod:`kerec.fusion`) and reported; the test split is scored once. The benchmark writes no serving
setting: ``kerec train fusion`` chooses and saves the weight serving uses.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from kerec import fusion

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="retriever.pt from `kerec train retriever`")
    p.add_argument("--llm", default="default", help="LLM spec (kerec.llm.load_llm)")
    p.add_argument("--users", type=int, default=0, help="held-out users per split (0 = all)")
    p.add_argument("--explain-users", type=int, default=100, help="test users whose top-10 is explained")
    p.add_argument("--latency-users", type=int, default=20, help="users timed through recommend(user, 10)")
    p.add_argument("--free-text-users", type=int, default=50, help="test users whose greedy free-text answer is parsed")
    p.add_argument("--batch", type=int, default=8, help="prompts per LLM call")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "llm_ranking")
    return p.parse_args(argv)


def held_out(rec: Any, part: str) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for u, i in rec.prepared.split.part(part):
        out.setdefault(int(u), []).append(int(i))
    return out


def sample_tasks(rec: Any, part: str, n_users: int, rng: np.random.Generator) -> list[tuple[str, list[str], str]]:
    """(user, 20 shuffled candidates, target) per held-out user."""
    split, ds = rec.prepared.split, rec.dataset
    seen: dict[int, set[int]] = {}
    for p in ("train", "valid", "test"):
        for u, i in split.part(p):
            seen.setdefault(int(u), set()).add(int(i))
    allowed = np.flatnonzero(rec.prepared.allowed_items)
    users = sorted(held_out(rec, part).items())
    if n_users:
        users = [users[j] for j in sorted(rng.choice(len(users), size=min(n_users, len(users)), replace=False))]
    tasks = []
    for u, items in users:
        target = int(rng.choice(items))
        pool = np.setdiff1d(allowed, np.fromiter(seen[u], dtype=np.int64))
        cands = [target, *map(int, rng.choice(pool, size=19, replace=False))]
        rng.shuffle(cands)
        tasks.append((ds.users.external(u), [ds.items.external(i) for i in cands], ds.items.external(target)))
    return tasks


def score_tasks(rec: Any, tasks: list[tuple[str, list[str], Any]], batch: int, label: str) -> list[Any]:
    from tqdm.auto import tqdm

    out = []
    for start in tqdm(range(0, len(tasks), batch), desc=label, unit="batch"):
        chunk = tasks[start:start + batch]
        out.extend(rec.score_candidates([t[0] for t in chunk], [t[1] for t in chunk]))
    return out


def metrics(scored: list[Any], targets: list[set[str]], weight: float) -> dict[str, float]:
    acc, r3, r5, valid = [], [], [], []
    for s, t in zip(scored, targets):
        fused = fusion.fuse(s.gnn, s.llm, weight)
        order = [s.items[j] for j in np.argsort(-fused, kind="stable")]
        valid.append(order[0] in s.items)
        acc.append(order[0] in t)
        r3.append(bool(set(order[:3]) & t))
        r5.append(bool(set(order[:5]) & t))
    return {"acc": float(np.mean(acc)), "recall@3": float(np.mean(r3)), "recall@5": float(np.mean(r5)),
            "valid_ratio": float(np.mean(valid)), "users": len(scored)}


def free_text_valid_ratio(rec: Any, tasks: list[tuple[str, list[str], Any]], batch: int) -> float:
    """Greedy decoding of the same prompts: the share whose answer starts with one of the candidates'
    letters — what parsing free text would have had to live with."""
    from kerec.prompting import LETTERS, load_prompt, ranking_inputs

    prompt, valid = load_prompt("ranking"), []
    for start in range(0, len(tasks), batch):
        chunk = tasks[start:start + batch]
        msgs = []
        for user, cands, _ in chunk:
            hist = rec.history(user)[-rec.settings.history_in_prompt:]  # oldest first
            titles = [rec.dataset.item_title(rec.dataset.items.index(h)) for h in hist]
            msgs.append(prompt.messages(**ranking_inputs(titles, [rec.dataset.item_title(rec.dataset.items.index(c))
                                                                  for c in cands], [])))
        for text in rec.llm.generate(msgs, max_new_tokens=3):
            first = text.strip()[:1]
            valid.append(bool(first) and first in LETTERS[:20] and (len(text.strip()) == 1 or not text.strip()[1].isalpha()))
    return float(np.mean(valid))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from kerec.api import Recommender, Settings
    from kerec.explain import check
    from kerec.process import freeze_long_lived_objects

    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    rec = Recommender.load(args.checkpoint, llm=args.llm, settings=Settings(history="train", explanations="llm"))
    freeze_long_lived_objects()
    from kerec.eval.command import recorded_command

    results: dict[str, Any] = {"checkpoint": args.checkpoint, "llm": rec.llm.name, "settings": asdict(rec.settings),
                               "command": recorded_command("python eval/bench_llm_ranking.py", argv),
                               "machine": {"platform": platform.platform(), "threads": torch.get_num_threads(),
                                           "torch": torch.__version__}}

    # 1. Fusion weight on validation (random-negatives protocol).
    valid_tasks = sample_tasks(rec, "valid", args.users, rng)
    valid_scored = score_tasks(rec, valid_tasks, args.batch, "valid: 20 candidates")
    valid_targets = [{t[2]} for t in valid_tasks]
    sweep = {w: metrics(valid_scored, valid_targets, w) for w in fusion.WEIGHTS}
    best_w, _ = fusion.choose_weight([s.gnn for s in valid_scored], [s.llm for s in valid_scored],
                                     lambda rows: metrics([replace(s, gnn=r, llm=None) for s, r in zip(valid_scored, rows)],
                                                          valid_targets, 0.0)["acc"])
    results["valid_sweep"] = {str(w): m for w, m in sweep.items()}
    results["fusion_weight"] = best_w

    # 2. Test, once: random negatives, and the GNN's own top-20.
    test_tasks = sample_tasks(rec, "test", args.users, rng)
    test_scored = score_tasks(rec, test_tasks, args.batch, "test: 20 candidates")
    test_targets = [{t[2]} for t in test_tasks]
    table = {"random negatives": {name: metrics(test_scored, test_targets, w)
                                  for name, w in (("GNN alone", 0.0), ("LLM alone", 1.0), (f"fused (w={best_w})", best_w))}}
    test_held = held_out(rec, "test")
    known = held_out(rec, "train")
    for u, items in held_out(rec, "valid").items():
        known.setdefault(u, []).extend(items)
    top_tasks = []
    for user, _, _ in test_tasks:
        u = rec.dataset.users.index(user)
        mask = rec.prepared.allowed_items.copy()
        mask[known.get(u, [])] = False  # train and valid items are not candidates for the test
        top = np.argsort(-np.where(mask, rec.gnn_scores(user), -np.inf), kind="stable")[:20]
        top_tasks.append((user, [rec.dataset.items.external(int(i)) for i in rng.permutation(top)],
                          {rec.dataset.items.external(i) for i in test_held[u]}))
    top_scored = score_tasks(rec, top_tasks, args.batch, "test: GNN top-20")
    table["GNN top-20"] = {name: metrics(top_scored, [t[2] for t in top_tasks], w)
                           for name, w in (("GNN alone", 0.0), ("LLM alone", 1.0), (f"fused (w={best_w})", best_w))}
    table["random negatives"]["random"] = {"acc": 0.05, "recall@3": 0.15, "recall@5": 0.25, "valid_ratio": 1.0,
                                           "users": len(test_tasks)}
    results["test"] = table
    results["free_text_users"] = min(args.free_text_users, len(test_tasks))
    results["free_text_valid_ratio"] = free_text_valid_ratio(rec, test_tasks[: args.free_text_users], args.batch)

    # 3. Grounding of explanations (top-10 of test users), and the fallback rate.
    rec = rec.with_settings(fusion_weight=best_w)
    users = [t[0] for t in test_tasks[: args.explain_users]]
    sources: dict[str, int] = {}
    cited = grounded = 0
    for start in range(0, len(users), args.batch):
        for user, recs in rec.recommend_many(users[start:start + args.batch], 10).items():
            history = set(rec.history(user))
            for r in recs:
                sources[r.explanation_source] = sources.get(r.explanation_source, 0) + 1
                numbers, reason = check(r.explanation, r.evidence, rec.store, history, r.item_id) if r.evidence else ((), None)
                facts = rec.store.facts(list(r.cited_facts))
                cited += len(r.cited_facts)
                grounded += sum(1 for f in r.cited_facts if f in facts) if reason is None else 0
    total = sum(sources.values())
    results["grounding"] = {"explanations": total, "sources": sources,
                            "cited_facts": cited, "grounded_share": grounded / cited if cited else None,
                            "fallback_share": (sources.get("template", 0)) / total if total else None}

    # 4. Latency of recommend(user, 10): without the LLM, and with it and explanations.
    lat_users = [t[0] for t in test_tasks[: args.latency_users]]
    results["latency_ms"] = {}
    for name, timed in (("without LLM (GNN + KG evidence + templated explanations)", rec.with_llm(None)),
                        ("with the LLM ranking and explanations", rec)):
        times = []
        for user in lat_users:
            t0 = time.perf_counter()
            timed.recommend(user, 10)
            times.append((time.perf_counter() - t0) * 1000)
        results["latency_ms"][name] = {"p50": float(np.percentile(times, 50)), "p95": float(np.percentile(times, 95)),
                                       "users": len(times)}
    results["wall_seconds"] = time.perf_counter() - started

    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "report.md").write_text(report(results))
    print(report(results))
    return 0


def report(r: dict[str, Any]) -> str:
    lines = ["# LLM stage: 20-candidate ranking, grounding, latency", "",
             f"LLM `{r['llm']}`; checkpoint `{r['checkpoint']}`; made by `{r['command']}`; "
             f"{r['machine']['platform']}, {r['machine']['threads']} torch threads; {r['wall_seconds'] / 60:.1f} min.", "",
             f"Fusion weight chosen on validation (ACC): **{r['fusion_weight']}**.", ""]
    for variant, rows in r["test"].items():
        lines += [f"## Test, {variant}", "", "| system | ACC | Recall@3 | Recall@5 | ValidRatio | users |", "|---|---|---|---|---|---|"]
        for name, m in rows.items():
            lines.append(f"| {name} | {m['acc']:.4f} | {m['recall@3']:.4f} | {m['recall@5']:.4f} | {m['valid_ratio']:.2f} | {m['users']} |")
        lines.append("")
    lines += [f"Free-text answers (greedy decoding of the same prompts without facts, {r['free_text_users']} test users): "
              f"ValidRatio {r['free_text_valid_ratio']:.2f} — letter scoring makes it 1.00 by construction.", "",
              "## Validation sweep of the fusion weight (ACC)", "",
              " · ".join(f"w={w}: {m['acc']:.4f}" for w, m in r["valid_sweep"].items()), "",
              "## Grounding", ""]
    g = r["grounding"]
    share = f"{g['grounded_share']:.4f}" if g["grounded_share"] is not None else "n/a"
    lines += [f"{g['explanations']} explanations; cited facts {g['cited_facts']}, grounded share {share}; "
              f"sources {g['sources']}; templated fallback share {g['fallback_share']:.4f}.", "",
              "## Latency of recommend(user, 10)", "", "| path | p50 ms | p95 ms | users |", "|---|---|---|---|"]
    for name, m in r["latency_ms"].items():
        lines.append(f"| {name} | {m['p50']:.0f} | {m['p95']:.0f} | {m['users']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
