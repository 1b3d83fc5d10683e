"""The GNN retriever stage: models (PyG), the trainer, the item–item head, checkpoints, and the pipeline that
wires data → graph store → text → GNN (:mod:`kerec.gnn.pipeline`). Stages above import from here.
"""
from __future__ import annotations

from kerec.gnn.checkpoint import Checkpoint, CheckpointError
from kerec.gnn.models import MODELS, Embeddings, KnowledgeRetriever, Retriever
from kerec.gnn.pipeline import (Prepared, RetrieverSpec, build_graph, default_settings, evaluate_cold_start,
                                evaluate_embeddings, fact_scorer, fit_item_head, item_text_vectors, load_config,
                                load_retriever, make_checkpoint, popularity, prepare, prepare_from_checkpoint,
                                system_settings, train_retriever)

__all__ = [
    "MODELS", "Checkpoint", "CheckpointError", "Embeddings", "KnowledgeRetriever", "Prepared", "Retriever",
    "RetrieverSpec", "build_graph", "default_settings", "evaluate_cold_start", "evaluate_embeddings", "fact_scorer",
    "fit_item_head", "item_text_vectors", "load_config", "load_retriever", "make_checkpoint", "popularity", "prepare",
    "prepare_from_checkpoint", "system_settings", "train_retriever",
]
