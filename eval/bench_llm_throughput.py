"""LLM throughput on real ranking prompts: transformers vs vLLM, the same prompts, side by side.

    .venv/bin/python eval/bench_llm_throughput.py --checkpoint runs/bench-retriever/retriever.pt --users 64

The prompts are the 20-candidate ranking prompts that ``recommend`` sends for the first ``--users`` users.
Each backend scores them in one call (``letter_logprobs``; the backends batch internally), after one
warm-up prompt; vLLM's engine start (kernel compilation on first use) is reported apart. The top letters
of both backends are compared.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--users", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backends", nargs="+", default=["transformers", "vllm"], choices=["transformers", "vllm"])
    p.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "llm_throughput")
    args = p.parse_args(argv)
    import torch

    from kerec.api import Recommender

    torch.set_num_threads(args.threads)
    rec = Recommender.load(args.checkpoint, llm=None)
    users = list(rec.dataset.users.ids)[: args.users]
    prompts = rec.ranking_prompts(users)
    rows, tops = [], {}
    for backend in args.backends:
        t0 = time.perf_counter()
        if backend == "transformers":
            from kerec.llm import TransformersLLM

            llm = TransformersLLM(batch_size=8, progress=False)
        else:
            from kerec.llm import VLLMLLM

            llm = VLLMLLM("default", dtype="float32", max_model_len=4096, seed=0, gpu_memory_utilization=0.3)
        start = time.perf_counter() - t0
        llm.letter_logprobs(prompts[:1], 20)  # warm-up
        t0 = time.perf_counter()
        out = llm.letter_logprobs(prompts, 20)
        seconds = time.perf_counter() - t0
        tops[backend] = out.argmax(axis=1)
        rows.append({"backend": backend, "model": llm.name, "start_seconds": start, "prompts": len(prompts),
                     "seconds": seconds, "prompts_per_second": len(prompts) / seconds})
        del llm
    agree = float(np.mean(tops["transformers"] == tops["vllm"])) if len(tops) == 2 else None
    args.out.mkdir(parents=True, exist_ok=True)
    from kerec.eval.command import recorded_command

    lines = ["# LLM throughput on 20-candidate ranking prompts", "",
             f"`{recorded_command('python eval/bench_llm_throughput.py', argv)}`; "
             f"{args.threads} torch threads; {len(prompts)} prompts of the first {len(users)} users.", "",
             "| backend | model | engine start s | prompts | s | prompts/s |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['model']} | {r['start_seconds']:.1f} | {r['prompts']} | "
                     f"{r['seconds']:.1f} | {r['prompts_per_second']:.2f} |")
    if agree is not None:
        lines += ["", f"Same top letter on {agree:.0%} of the prompts."]
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    (args.out / "table.json").write_text(json.dumps({"rows": rows, "top_letter_agreement": agree}, indent=2) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
