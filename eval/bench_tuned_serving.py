"""Serving a tuned checkpoint: transformers (the joint model) vs vLLM (LoRA adapter + graph soft prompt as
prompt embeddings), in the three prompt modes the LLM stage compares.

    .venv/bin/python eval/bench_tuned_serving.py --run runs/finetune-cpu-tiny/step-20 --users 32

Tasks: the 20-candidate protocol with random negatives (``kerec.eval.candidates``) on test users of the
recipe's own split. Modes: ``text`` (facts as text, no soft tokens: vLLM's text-only mode), ``soft`` (graph
soft prompt, no facts as text), ``both``. Per engine and mode: seconds and prompts/s for the whole batch
(after one warm-up prompt; vLLM's engine start is reported apart), and agreement with transformers: the
largest letter log-probability difference and the share of prompts with the same top letter. vLLM runs
first in the process (its start-up must not meet bitsandbytes, which peft imports).
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
MODES = {"text": (False, True), "soft": (True, False), "both": (True, True)}  # soft prompt, facts as text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--run", default="runs/finetune-cpu-tiny/step-20", help="kerec finetune run or step folder")
    p.add_argument("--users", type=int, default=32, help="test users (one 20-candidate prompt each)")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--batch-size", type=int, default=8, help="prompts per transformers forward / vLLM call")
    p.add_argument("--threads", type=int, default=2, help="torch threads (vLLM CPU threads follow OMP)")
    p.add_argument("--out", default=str(ROOT / "eval" / "results" / "tuned_serving"))
    return p.parse_args(argv)


def timed_scores(ranker: Any, users: list[str], cands: list[list[str]], mode: str) -> tuple[np.ndarray, float]:
    soft, as_text = MODES[mode]
    facts = ranker.text_facts if as_text else 0
    ranker.letter_logprobs(users[:1], cands[:1], soft_prompt=soft, facts_in_prompt=facts)  # warm-up
    start = time.perf_counter()
    scores = ranker.letter_logprobs(users, cands, soft_prompt=soft, facts_in_prompt=facts)
    return scores, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    import torch

    torch.set_num_threads(args.threads)
    from kerec.eval import candidates as cp
    from kerec.finetune.scoring import TunedRanker

    started = time.perf_counter()
    served = TunedRanker.load(args.run, engine="vllm", batch_size=args.batch_size,
                              engine_kwargs={"max_model_len": 4096, "gpu_memory_utilization": 0.2, "seed": 0})
    load_vllm = time.perf_counter() - started
    started = time.perf_counter()
    local = TunedRanker.load(args.run, batch_size=args.batch_size)
    load_tf = time.perf_counter() - started
    prepared = local.builder.prepared
    users = cp.sample_users(prepared, "test", args.users, args.seed)
    tasks = cp.negative_tasks(prepared, "test", users, args.seed, 19)
    ds = prepared.dataset
    ext_users = [ds.users.external(t.user) for t in tasks]
    ext_cands = [[ds.items.external(int(i)) for i in t.items] for t in tasks]
    rows: list[dict[str, Any]] = []
    for mode in MODES:
        want, t_tf = timed_scores(local, ext_users, ext_cands, mode)
        got, t_vllm = timed_scores(served, ext_users, ext_cands, mode)
        same = float((want.argmax(1) == got.argmax(1)).mean())
        hit = lambda s: float(np.mean([int(t.items[int(np.argmax(r))]) in t.targets for t, r in zip(tasks, s)]))  # noqa: E731
        rows.append({"mode": mode, "prompts": len(tasks), "transformers_s": t_tf, "vllm_s": t_vllm,
                     "transformers_per_s": len(tasks) / t_tf, "vllm_per_s": len(tasks) / t_vllm,
                     "max_abs_diff": float(np.abs(want - got).max()), "same_top": same,
                     "acc_transformers": hit(want), "acc_vllm": hit(got)})
        print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    from kerec.eval.command import recorded_command

    result = {"command": recorded_command("python eval/bench_tuned_serving.py", argv),
              "run": args.run, "users": len(tasks), "seed": args.seed, "threads": args.threads,
              "load_seconds": {"vllm": load_vllm, "transformers": load_tf}, "rows": rows,
              "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "loadavg_end": load}}
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = ["# Serving a tuned checkpoint: transformers vs vLLM (LoRA + soft prompt as prompt embeddings)", "",
             f"Command: `{result['command']}`  ", f"Checkpoint `{args.run}`; {len(tasks)} test users, one "
             f"20-candidate prompt each (random negatives, seed {args.seed}); {args.threads} torch threads; "
             f"load average at the end {load[0]:.1f}. Start-up: vLLM engine + model {load_vllm:.0f} s, "
             f"transformers {load_tf:.0f} s.", "",
             "| mode | transformers prompts/s | vLLM prompts/s | max abs diff (log-prob) | same top letter | ACC transformers | ACC vLLM |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['transformers_per_s']:.2f} | {r['vllm_per_s']:.2f} | {r['max_abs_diff']:.2e} "
                     f"| {r['same_top']:.0%} | {r['acc_transformers']:.3f} | {r['acc_vllm']:.3f} |")
    lines += ["", "`text`: facts as text, no soft tokens (vLLM's text-only mode, the LoRA adapter alone); `soft`: "
              "graph soft prompt without facts as text; `both`: soft prompt and facts."]
    (out / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
