"""What one generated token costs the 135M LLM on this CPU: the floor under LLM-written explanations.

    .venv/bin/python eval/bench_decode.py

For each precision (float32, bfloat16, int8) and batch size (1 and 10: one explanation, or one per item
of ``recommend(user, 10)``), greedy generation from real explanation prompts (``prompts/explanation.yaml``
over a catalogue item and five facts) with exactly ``--tokens`` new tokens (``min_new_tokens`` =
``max_new_tokens``) and with one new token (the prefill); seconds per decode step = the difference
divided by ``tokens - 1``. Median of ``--repeats`` runs after one warm-up. Writes
``eval/results/decode/{results.json,README.md}``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPECS = ("default", "default+bf16", "default+int8")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--specs", nargs="+", default=list(SPECS), help="LLM specs (kerec.llm.load_llm)")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 10])
    p.add_argument("--tokens", type=int, default=41, help="new tokens per timed generation (≥ 2)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--out", default=str(ROOT / "eval" / "results" / "decode"))
    return p.parse_args(argv)


def prompts(n: int) -> list[list[dict[str, str]]]:
    """``n`` explanation prompts over real catalogue titles (items 1..n of the embedded ml-100k)."""
    from kerec.data import load_dataset
    from kerec.prompting import explanation_inputs, load_prompt

    data = load_dataset(None)
    prompt = load_prompt("explanation")
    titles = [data.item_title(i) for i in range(n + 5)]
    return [prompt.messages(**explanation_inputs(titles[i], [(str(j), f"{titles[i]} and {titles[i + j]} share an actor")
                                                             for j in range(1, 6)])) for i in range(n)]


def timed(llm: Any, chats: list[Any], tokens: int, repeats: int) -> tuple[float, int]:
    """Median seconds of a greedy generation of exactly ``tokens`` tokens, and the longest prompt's tokens."""
    import torch

    texts = [llm.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in chats]
    enc = llm.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    options = {"max_new_tokens": tokens, "min_new_tokens": tokens, "do_sample": False,
               "pad_token_id": llm.tokenizer.pad_token_id}
    runs = []
    with torch.inference_mode():
        llm.model.generate(**enc, **(options | {"max_new_tokens": 2, "min_new_tokens": 2}))
        for _ in range(repeats):
            start = time.perf_counter()
            llm.model.generate(**enc, **options)
            runs.append(time.perf_counter() - start)
    return statistics.median(runs), int(enc["attention_mask"].sum(-1).max())


def main(argv: list[str] | None = None) -> None:
    import torch

    from kerec.llm import load_llm

    args = parse_args(argv)
    if args.tokens < 2:
        raise SystemExit("--tokens must be at least 2")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    chats = prompts(max(args.batch_sizes))
    rows = []
    for spec in args.specs:
        llm = load_llm(spec)
        for bs in args.batch_sizes:
            full, longest = timed(llm, chats[:bs], args.tokens, args.repeats)
            prefill, _ = timed(llm, chats[:bs], 1, args.repeats)
            rows.append({"llm": spec, "batch": bs, "tokens": args.tokens, "seconds": full, "prefill_s": prefill,
                         "step_ms": 1000 * (full - prefill) / (args.tokens - 1), "prompt_tokens_max": longest})
            print(json.dumps(rows[-1]), flush=True)
    from kerec.eval.command import recorded_command

    meta = {"command": recorded_command("python eval/bench_decode.py", argv), "threads": args.threads,
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
            "load_average": os.getloadavg()}
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = ["# Cost of one generated token (explanation prompts)", "",
             f"Command: `{meta['command']}`; {meta['cores']} cores, {args.threads} torch threads, "
             f"torch {meta['torch']}; load average at the end {', '.join(f'{x:.1f}' for x in meta['load_average'])}.", "",
             f"| LLM | batch | prompt tokens (max) | prefill s | {args.tokens} tokens s | ms per decode step |", "|---|---|---|---|---|---|"]
    lines += [f"| `{r['llm']}` | {r['batch']} | {r['prompt_tokens_max']} | {r['prefill_s']:.2f} | {r['seconds']:.2f} | {r['step_ms']:.0f} |" for r in rows]
    (out / "README.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
