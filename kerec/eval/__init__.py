"""Evaluation: full-ranking metrics (Recall, NDCG, Hit, MRR, Precision @K) as pure, tested functions.

Conventions are stated in :mod:`kerec.eval.metrics` (metric definitions) and :mod:`kerec.eval.ranking`
(tie policy, masking of seen items, skipped users).
"""
from __future__ import annotations

from kerec.eval.metrics import DEFAULT_KS, METRICS, EvaluationError, metrics_at_k, parse_metric_key
from kerec.eval.ranking import RankingResult, evaluate_full_ranking, popularity_scores, topk_items

__all__ = [
    "DEFAULT_KS", "METRICS", "EvaluationError", "RankingResult", "evaluate_full_ranking", "metrics_at_k",
    "parse_metric_key", "popularity_scores", "topk_items",
]
