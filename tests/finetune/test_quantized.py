"""The QLoRA path of gpu-qlora.yaml, constructed on CPU: nf4 weights via bitsandbytes, prepare_model_for_kbit_training,
LoRA, one optimiser step (bitsandbytes runs 4-bit on CPU here, slowly: the model is tiny)."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from kerec.finetune import setup
from kerec.finetune.batches import collate, encode
from kerec.finetune.recipe import load_recipe

from .conftest import tiny_recipe

pytestmark = pytest.mark.slow
RECIPES = Path(__file__).resolve().parents[2] / "finetune"


def test_nf4_model_loads_and_takes_a_step(synth_dir: Path, tiny_llm: Path, tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes")
    torch.set_num_threads(1)
    # gpu-qlora.yaml's soft prompt (prefix placement, candidate tokens with relevance and letter slots) and
    # gradient checkpointing, on the tiny model; float32 as bf16 is not what is under test on CPU.
    gpu = load_recipe(RECIPES / "gpu-qlora.yaml")
    soft = {**asdict(gpu.soft_prompt), "hidden_dim": 32, "graph_tokens": 2}
    recipe = tiny_recipe(synth_dir, tiny_llm, tmp_path, soft_prompt=soft,
                         llm={"quantization": "nf4", "dtype": "float32",
                              "gradient_checkpointing": gpu.llm.gradient_checkpointing})
    assert recipe.soft_prompt.relevance and recipe.soft_prompt.letter_slots
    prepared, gnn, graph, _ = setup.retriever(recipe, progress=False)
    samples = setup.samples(recipe, prepared, gnn, graph, None, progress=False)[:2]
    base = setup.load_llm(recipe, "cpu")
    linear = base.model.model.layers[0].self_attn.q_proj
    assert type(linear).__name__ == "Linear4bit" and linear.weight.quant_type == "nf4"
    model = setup.joint_model(recipe, base.model, gnn)
    lora = {n: p for n, p in model.llm.named_parameters() if "lora_B" in n}
    assert lora and all(p.requires_grad for p in lora.values())
    before = {n: p.detach().clone() for n, p in lora.items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = collate([encode(base.tokenizer, s) for s in samples], base.tokenizer.pad_token_id)
    l_llm, _, _ = model(graph, batch)
    assert torch.isfinite(l_llm)
    l_llm.backward()
    optimizer.step()
    assert any(not torch.equal(before[n], p) for n, p in lora.items())
