"""Run by tests/llm/test_vllm_engine.py in a fresh interpreter: VLLMLLM's letter scores and greedy text for
PROMPTS, and its letter scores with the LoRA adapter given, written as JSON to the path given."""
from __future__ import annotations

import json
import os
import sys

PROMPTS = [
    [{"role": "user", "content": "Repeat exactly this letter: C"}],
    [{"role": "system", "content": "You answer with one letter."},
     {"role": "user", "content": "Candidates:\nA. Toy Story (1995)\nB. Heat (1995)\nC. Fargo (1996)\n"
                                 "The user loved Pulp Fiction. Which candidate next? One letter."}],
    [{"role": "user", "content": "Pick one of A, B, C, D. Answer with the letter only."}],
]


def main(out: str, adapter: str, embeds: str) -> None:
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engine core in this process
    from kerec.llm import VLLMLLM

    # On CPU this is the share of RAM reserved for the KV cache; 0.2 leaves room for the test session.
    # One engine with LoRA and prompt embeddings enabled (a start costs minutes); the base model is its
    # requests without the adapter.
    engine = VLLMLLM("default", adapter=adapter, dtype="float32", max_model_len=2048, seed=0,
                     gpu_memory_utilization=0.2, enable_prompt_embeds=True)
    result = {"lora_letter_logprobs": engine.letter_logprobs(PROMPTS, 4).tolist(), "on_cpu": engine.on_cpu}
    import torch

    rows = engine.letter_logprobs_embedded(torch.load(embeds), [4] * len(PROMPTS))
    result["embedded_letter_logprobs"] = [row.tolist() for row in rows]
    engine._lora = None
    result |= {"letter_logprobs": engine.letter_logprobs(PROMPTS, 4).tolist(),
               "greedy": engine.generate(PROMPTS[:2], max_new_tokens=12)}
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
