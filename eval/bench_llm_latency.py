"""Latency of ``recommend(user, 10)`` per configuration and stage, and what int8 / bf16 change in the ranking.

    .venv/bin/python eval/bench_llm_latency.py --checkpoint runs/bench-retriever/retriever.pt

Configurations: no LLM (GNN ranking, templated explanations); the 135M LLM in float32, in int8
(``default+int8``) and in bfloat16 (``default+bf16``), each with templated explanations (the LLM ranks) and with LLM-written explanations
(the LLM ranks and writes; citations checked, templated on failure), and ``default/auto`` (the default
``Settings``: templated here, where the LLM generates on this CPU). Stages: ``plan`` (GNN scores of the
catalogue, top-20, KG evidence from the graph store scored by the GNN), ``rank`` (the LLM's letter
probabilities), ``explain``. Each configuration warms up on one user first; users are the first
``--users`` of the test split, in order. Agreement: top letter and Spearman correlation of the letter
log-probabilities, float32 vs each other precision, on the same ranking prompts.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SPECS = ("none", "default", "default+int8", "default+bf16")
CONFIGS = (("none", "template"), ("default", "template"), ("default+int8", "template"), ("default+bf16", "template"),
           ("default", "llm"), ("default+int8", "llm"), ("default+bf16", "llm"), ("default", "auto"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", default="default", help="retriever.pt (default: $KEREC_HOME/retriever)")
    p.add_argument("--users", type=int, default=30, help="users timed per configuration with templated explanations")
    p.add_argument("--explain-users", type=int, default=5, help="users timed with LLM-written explanations "
                   "('llm', and 'auto' where it resolves to 'llm': an LLM off this CPU)")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--configs", nargs="+", default=[f"{spec}/{exp}" for spec, exp in CONFIGS],
                   help="configurations to time, as LLM/explanations (template, llm, or auto: Settings' default)")
    p.add_argument("--out", default=str(ROOT / "eval" / "results" / "llm_latency"))
    return p.parse_args(argv)


def timed(obj: Any, name: str, clock: dict[str, float]) -> None:
    """Wrap ``obj.name`` so that its seconds add up in ``clock[name]``."""
    inner = getattr(obj, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            clock[name] = clock.get(name, 0.0) + time.perf_counter() - start
    setattr(obj, name, wrapper)


def measure(rec: Any, users: list[str]) -> dict[str, Any]:
    clock: dict[str, float] = {}
    timed(rec, "_plan", clock)
    timed(rec, "_explain", clock)
    if rec.llm is not None:
        timed(rec.llm, "letter_logprobs", clock)
    rec.recommend(users[0], 10)  # warm-up: first calls build caches
    rows = []
    for user in users:
        clock.clear()
        start = time.perf_counter()
        recs = rec.recommend(user, 10)
        total = time.perf_counter() - start
        rows.append({"user": user, "total": total, "plan": clock.get("_plan", 0.0),
                     "rank": clock.get("letter_logprobs", 0.0), "explain": clock.get("_explain", 0.0),
                     "sources": [r.explanation_source for r in recs]})
    out: dict[str, Any] = {"users": len(rows), "rows": rows}
    for stage in ("total", "plan", "rank", "explain"):
        values = [r[stage] for r in rows]
        out[stage] = {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95))}
    sources = [s for r in rows for s in r["sources"]]
    out["template_share"] = sources.count("template") / len(sources)
    return out


def agreement(fp32: Any, other: Any, prompts: list[Any]) -> dict[str, float]:
    from scipy.stats import spearmanr

    a, b = fp32.letter_logprobs(prompts, 20), other.letter_logprobs(prompts, 20)
    rho = [spearmanr(x, y).statistic for x, y in zip(a, b)]
    return {"prompts": len(prompts), "top_letter_same": float(np.mean(a.argmax(1) == b.argmax(1))),
            "spearman_mean": float(np.mean(rho))}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    valid = {f"{spec}/{exp}" for spec in SPECS for exp in ("template", "llm", "auto")}
    unknown = sorted(set(args.configs) - valid)
    if unknown:
        raise SystemExit(f"unknown configuration(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    import torch

    torch.set_num_threads(args.threads)
    from kerec.api import Recommender
    from kerec.llm import load_llm
    from kerec.process import freeze_long_lived_objects

    base = Recommender.load(args.checkpoint, llm=None)
    freeze_long_lived_objects()  # as `kerec recommend` and `kerec serve` do once loaded
    test_users = sorted({base.dataset.users.external(int(u)) for u, _ in base.prepared.split.test}, key=int)
    users = test_users[: args.users]
    specs = {c.split("/")[0] for c in args.configs} - {"none"}
    llms = {spec: load_llm(spec, progress=False) for spec in sorted(specs)}
    agree = {}
    if "default" in llms and len(llms) > 1:
        prompts = base.ranking_prompts(users)
        agree = {spec: agreement(llms["default"], llm, prompts) for spec, llm in llms.items() if spec != "default"}
    from kerec.eval.command import recorded_command

    command = recorded_command("python eval/bench_llm_latency.py", argv)
    results: dict[str, Any] = {}
    for spec, explanations in (c.split("/") for c in args.configs):
        rec = base.with_llm(None if spec == "none" else llms[spec]).with_settings(explanations=explanations)
        chosen = users[: args.explain_users] if rec.writes_explanations else users
        key = f"{spec} / {explanations} explanations"
        print(f"{key}: {len(chosen)} users", file=sys.stderr, flush=True)
        results[key] = measure(rec, chosen)
        for llm in llms.values():  # undo the timing wrappers
            llm.__dict__.pop("letter_logprobs", None)
        write(Path(args.out), command, args, results, agree)  # after each configuration: a long run keeps its results
    return 0


def write(out: Path, command: str, args: argparse.Namespace, results: dict[str, Any], agree: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    import torch

    machine = {"cpus": os.cpu_count(), "threads": args.threads, "platform": platform.platform(),
               "torch": torch.__version__, "load_average_at_end": os.getloadavg()}
    (out / "results.json").write_text(json.dumps({"results": results, "agreement": agree, "machine": machine},
                                                 indent=2), encoding="utf-8")
    lines = ["# Latency of `recommend(user, 10)` by configuration and stage", "",
             f"Command: `{command}`  ", f"Machine: {machine['cpus']} cores, {args.threads} torch threads, "
             f"torch {machine['torch']}; load average at the end {', '.join(f'{x:.1f}' for x in machine['load_average_at_end'])}.", "",
             "| LLM | explanations | users | total p50 | total p95 | plan p50 | rank p50 | explain p50 | templated |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key, r in results.items():
        spec, _, explanations = key.partition(" / ")
        lines.append(f"| {spec} | {explanations.split()[0]} | {r['users']} | {r['total']['p50']:.3f} s | "
                     f"{r['total']['p95']:.3f} s | {r['plan']['p50'] * 1000:.0f} ms | {r['rank']['p50']:.2f} s | "
                     f"{r['explain']['p50']:.2f} s | {r['template_share']:.0%} |")
    for spec, a in agree.items():
        lines += ["", f"float32 vs {spec} on the same {a['prompts']} ranking prompts (20 letters): same top letter "
                  f"{a['top_letter_same']:.0%}, mean Spearman correlation of the letter log-probabilities "
                  f"{a['spearman_mean']:.3f}."]
    lines.append("")
    (out / "table.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
