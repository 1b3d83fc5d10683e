"""Batch evaluation over held-out users (``kerec eval --config``): the harness that trains and drives every
stage and writes one report. The top floor of the package: nothing below it imports it. The metrics it
computes live in :mod:`kerec.metrics`.
"""
from __future__ import annotations

from kerec.eval.config import EvalConfig, load_eval_config
from kerec.eval.harness import evaluate
from kerec.eval.report import EvalReport

__all__ = ["EvalConfig", "EvalReport", "evaluate", "load_eval_config"]
