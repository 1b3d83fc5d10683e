"""Ranking metrics (Recall, NDCG, Hit, MRR, Precision @K) as pure, tested functions, the full-ranking
evaluator and the paired statistics: the floor every stage may use. Imports nothing of kerec but errors.

Conventions are stated in :mod:`kerec.metrics.measures` (metric definitions) and :mod:`kerec.metrics.ranking`
(tie policy, masking of seen items, skipped users).
"""
from __future__ import annotations

from kerec.metrics.measures import DEFAULT_KS, METRICS, EvaluationError, metrics_at_k, parse_metric_key
from kerec.metrics.ranking import RankingResult, evaluate_full_ranking, topk_items
from kerec.metrics.stats import PairedTest, mean_std, paired_test

__all__ = ["DEFAULT_KS", "METRICS", "EvaluationError", "PairedTest", "RankingResult", "evaluate_full_ranking",
           "mean_std", "metrics_at_k", "paired_test", "parse_metric_key", "topk_items"]
