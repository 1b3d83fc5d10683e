"""Evaluation: full-ranking metrics (Recall, NDCG, Hit, MRR, Precision @K) as pure, tested functions,
and the config-driven batch evaluation (``evaluate``, :mod:`kerec.eval.harness`).

Conventions are stated in :mod:`kerec.eval.metrics` (metric definitions) and :mod:`kerec.eval.ranking`
(tie policy, masking of seen items, skipped users).
"""
from __future__ import annotations

from kerec.eval.metrics import DEFAULT_KS, METRICS, EvaluationError, metrics_at_k, parse_metric_key
from kerec.eval.ranking import RankingResult, evaluate_full_ranking, popularity_scores, topk_items

__all__ = [
    "DEFAULT_KS", "METRICS", "EvaluationError", "RankingResult", "evaluate_full_ranking", "metrics_at_k",
    "parse_metric_key", "popularity_scores", "topk_items", "evaluate", "EvalConfig", "EvalReport", "load_eval_config",
]

_LAZY = {"evaluate": "kerec.eval.harness", "EvalConfig": "kerec.eval.config", "load_eval_config": "kerec.eval.config",
         "EvalReport": "kerec.eval.report"}


def __getattr__(name: str) -> object:
    # The harness drives kerec.api and kerec.retriever, which import this package: load it on first use.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kerec.eval' has no attribute {name!r}")
