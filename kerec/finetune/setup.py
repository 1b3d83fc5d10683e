"""Assembling what a recipe describes: data and split, the GNN, the instruction samples, the LLM.

Shared by training (:mod:`kerec.finetune.train`) and scoring (:mod:`kerec.finetune.scoring`), so a tuned
checkpoint is rebuilt exactly as it was trained.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from kerec.data import Dataset
from kerec.finetune.data import InstructionBuilder, InstructionSample
from kerec.finetune.errors import RecipeError
from kerec.finetune.graph_features import require_knowledge_retriever
from kerec.finetune.model import JointModel, wrap_llm
from kerec.finetune.recipe import Recipe
from kerec.finetune.soft_prompt import GraphSoftPrompt, embedding_rms
from kerec.gnn.checkpoint import Checkpoint
from kerec.gnn.graph import TrainingGraph
from kerec.gnn.models import KnowledgeRetriever, build_model
from kerec.gnn.train import TrainConfig, TrainState
from kerec.gnn import (Prepared, RetrieverSpec, build_graph, load_retriever, make_checkpoint, prepare,
                       prepare_from_checkpoint, train_retriever)
from kerec.kg import CKGTensors, GraphStore, MemoryStore, build_ckg
from kerec.paths import default_checkpoint


def retriever(recipe: Recipe, *, progress: bool = True) -> tuple[Prepared, KnowledgeRetriever, TrainingGraph, Checkpoint]:
    """The GNN to tune, its data and a retriever checkpoint template (its dataset, split and args):
    from ``retriever.checkpoint``, or a fresh kerec retriever pretrained for ``pretrain_epochs``."""
    sec = recipe.retriever
    if sec.checkpoint is not None:
        path = default_checkpoint() if sec.checkpoint == "default" else Path(sec.checkpoint)
        ckpt = Checkpoint.load(path)
        return from_retriever_checkpoint(ckpt, recipe.dataset.folder)
    ds = recipe.dataset
    prepared = prepare(ds.folder, format=ds.format, split=ds.split, seed=ds.split_seed, linked_only=ds.linked_only)
    spec = RetrieverSpec(model="kerec", embedding_dim=sec.embedding_dim, num_layers=sec.num_layers,
                         kg_layers=sec.kg_layers, use_text=False)
    config = TrainConfig(epochs=max(sec.pretrain_epochs, 1), lr=sec.pretrain_lr, patience=max(sec.pretrain_epochs, 1),
                         seed=recipe.train.seed, lambda_k=0.1)
    if sec.pretrain_epochs > 0:
        model, graph, state = train_retriever(prepared, spec, config, progress=progress)
    else:
        graph = build_graph(prepared, spec, None)
        torch.manual_seed(recipe.train.seed)
        model = build_model("kerec", graph, embedding_dim=spec.embedding_dim, num_layers=spec.num_layers,
                            kg_layers=spec.kg_layers, use_text=False)
        state = TrainState(model, config)
    ckpt = make_checkpoint(model, graph, prepared, spec, config, state)
    return prepared, require_knowledge_retriever(model), graph, ckpt


def from_retriever_checkpoint(ckpt: Checkpoint, data: str | Dataset | None, *, kg: CKGTensors | None = None,
                              ) -> tuple[Prepared, KnowledgeRetriever, TrainingGraph, Checkpoint]:
    """The retriever of ``ckpt`` on its data (a folder, or the dataset already loaded; ``kg``: its KG tensors
    when already exported), in training mode."""
    prepared = prepare_from_checkpoint(ckpt, data, kg=kg)
    model, graph = load_retriever(ckpt, prepared)
    model.train()
    return prepared, require_knowledge_retriever(model), graph, ckpt


def store_for(prepared: Prepared) -> MemoryStore:
    store = MemoryStore()
    store.load(build_ckg(prepared.dataset), progress=False)
    return store


def builder(recipe: Recipe, prepared: Prepared, model: KnowledgeRetriever, graph: TrainingGraph, *,
            store: GraphStore | None = None) -> InstructionBuilder:
    """The recipe's instruction builder: training samples and :class:`~kerec.finetune.scoring.TunedRanker`'s
    prompts both come from it, so inference renders the prompt training did. ``store``: the dataset's KG
    already in a store (else loaded here)."""
    return InstructionBuilder(prepared, store if store is not None else store_for(prepared), recipe.data,
                              model=model, graph=graph, profile_tokens=recipe.soft_prompt.graph_tokens)


def samples(recipe: Recipe, prepared: Prepared, model: KnowledgeRetriever, graph: TrainingGraph, cache: Path | None,
            *, progress: bool = True) -> list[InstructionSample]:
    """The recipe's instruction samples; with ``cache`` (a JSONL file), read from it when present (resume)
    and written to it after building."""
    if cache is not None and cache.is_file():
        rows = [json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines() if line]
        return [InstructionSample(**{**r, "history": tuple(r["history"]), "items": tuple(r["items"]),
                                     "facts": tuple(tuple(f) for f in r["facts"]), "cited": tuple(r["cited"])})
                for r in rows]
    built = builder(recipe, prepared, model, graph).build(progress=progress)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text("".join(json.dumps(s.to_dict()) + "\n" for s in built), encoding="utf-8")
    return built


def load_llm(recipe: Recipe, device: str) -> Any:
    """The base LLM (a :class:`kerec.llm.TransformersLLM`; ``.model``/``.tokenizer``), its context checked
    against ``train.max_length``."""
    from kerec.llm import TransformersLLM

    llm = TransformersLLM(recipe.llm.model, device=device, dtype=recipe.llm.dtype,
                          quantization=recipe.llm.quantization, progress=False)
    context = getattr(llm.model.config, "max_position_embeddings", None)
    if context is not None and recipe.train.max_length > context:
        raise RecipeError(f"train.max_length {recipe.train.max_length} exceeds {llm.name}'s context of {context} tokens")
    if context is not None and recipe.soft_tokens >= context:
        raise RecipeError(f"soft_prompt: {recipe.soft_tokens} soft tokens exceed {llm.name}'s context of {context}")
    return llm


def joint_model(recipe: Recipe, base: Any, gnn: KnowledgeRetriever, tokenizer: Any = None) -> JointModel:
    """Wrap ``base`` (the transformers model) for training and attach the projector and the GNN.
    ``tokenizer``: needed for ``soft_prompt.letter_slots`` (the slots start as the letters' embeddings) and
    to train with ``train.residual`` (the letters' token ids); a model about to load trained projector
    weights and score needs none."""
    sec = recipe.llm
    llm = wrap_llm(base, adapter=sec.adapter, quantized=sec.quantization is not None, lora_r=sec.lora_r,
                   lora_alpha=sec.lora_alpha, lora_dropout=sec.lora_dropout, target_modules=sec.target_modules,
                   gradient_checkpointing=sec.gradient_checkpointing)
    projector = None
    if recipe.soft_prompt.enabled:
        init = letter_embeddings(base, tokenizer, recipe.data.candidates) \
            if recipe.soft_prompt.letter_slots and tokenizer is not None else None
        projector = GraphSoftPrompt(**projector_args(recipe, gnn, base), slot_init=init)
    letters = letter_ids(tokenizer, recipe.data.candidates) if tokenizer is not None else None
    return JointModel(llm=llm, gnn=gnn, projector=projector, placement=recipe.soft_prompt.placement,
                      residual=recipe.train.residual, letter_ids=letters)


def projector_args(recipe: Recipe, gnn: KnowledgeRetriever, base: Any) -> dict[str, Any]:
    sp = recipe.soft_prompt
    return {"graph_dim": gnn.user.embedding_dim, "llm_dim": int(base.config.hidden_size),
            "graph_tokens": sp.graph_tokens, "candidate_tokens": sp.candidate_tokens,
            "max_candidates": recipe.data.candidates, "hidden_dim": sp.hidden_dim,
            "embedding_rms": embedding_rms(base.get_input_embeddings()), "relevance": sp.relevance,
            "recency": sp.recency}


def letter_ids(tokenizer: Any, count: int) -> list[int]:
    """The first token id of each candidate letter (``"A"``, ``"B"``…): how a ranking answer starts."""
    from kerec.prompting import LETTERS

    return [tokenizer.encode(letter, add_special_tokens=False)[0] for letter in LETTERS[:count]]


def letter_embeddings(base: Any, tokenizer: Any, count: int) -> Any:
    """shape: (count, D) — the input embedding of each candidate letter's first token (``"A"``, ``"B"``…),
    scaled to unit RMS (the projector's tokens are RMS-normalised after the slot is added)."""
    import torch

    ids = letter_ids(tokenizer, count)
    with torch.no_grad():
        rows = base.get_input_embeddings().weight[torch.tensor(ids)].float()
    return rows / rows.pow(2).mean(-1, keepdim=True).sqrt().clamp(min=1e-8)


def tuned_checkpoint(template: Checkpoint, gnn: KnowledgeRetriever, step: int) -> Checkpoint:
    """The retriever checkpoint of the tuned GNN (the template's data, split and args)."""
    return replace(template, state_dict={k: v.detach().cpu() for k, v in gnn.state_dict().items()},
                   metrics={**template.metrics, "finetune_step": step})

