"""Fixtures for fine-tuning tests: the planted-genre synthetic dataset and a tiny random Llama model that
uses SmolLM2's tokenizer and chat template (built locally, nothing downloaded)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kerec.finetune.recipe import Recipe
from kerec.kg import MemoryStore, build_ckg
from kerec.gnn import Prepared, prepare

from ..gnn.synthetic import write_synthetic


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="session")
def synth(synth_dir: Path) -> Prepared:
    return prepare(str(synth_dir), split="random", seed=1)


@pytest.fixture(scope="session")
def synth_store(synth: Prepared) -> MemoryStore:
    store = MemoryStore()
    store.load(build_ckg(synth.dataset), progress=False)
    return store


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 64-wide random Llama with SmolLM2's tokenizer, saved as a model folder."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from kerec.llm import default_model_dir

    tokenizer = AutoTokenizer.from_pretrained(default_model_dir())
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
                         # std 0.02 embeddings cap a 64-wide tied head at logits ~1.3 (norm weights frozen):
                         # the loss could not fall. At 0.3 the answer tokens can be learnt.
                         initializer_range=0.3)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# The compact LLaRA-style prompt with inline soft tokens (finetune/cpu-tiny.yaml's shape), as tiny_recipe sections.
COMPACT = {"data": {"prompt": "ranking-compact", "candidate_titles": False, "history_in_prompt": 2},
           "soft_prompt": {"placement": "inline"}}


def tiny_recipe(synth_dir: Path, model_dir: Path, out: Path, **sections: dict) -> Recipe:
    raw: dict = {
        "dataset": {"path": str(synth_dir), "split": "random", "split_seed": 1},
        "retriever": {"embedding_dim": 16, "pretrain_epochs": 0},
        "data": {"ranking_samples": 24, "explanation_samples": 4, "candidates": 8, "seed": 3},
        "llm": {"model": str(model_dir), "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
                "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]},
        "soft_prompt": {"graph_tokens": 2, "hidden_dim": 32},
        "train": {"max_steps": 30, "batch_size": 4, "grad_accum": 1, "lr": 2e-2, "graph_lr": 1e-2, "warmup_steps": 0,
                  "max_length": 1024, "save_every": 1000, "log_every": 5, "bpr_batch_size": 128, "kg_batch_size": 64},
        "out": str(out),
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values} if isinstance(values, dict) else values
    return Recipe.from_dict(raw)
