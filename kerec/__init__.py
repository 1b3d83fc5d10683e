"""kerec — a knowledge-enhanced LLM recommender."""
from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``kerec.evaluate(config)`` (:func:`kerec.eval.harness.evaluate`) and ``kerec.Recommender``, imported
    on first use so that ``import kerec`` stays light."""
    if name == "evaluate":
        from kerec.eval.harness import evaluate

        return evaluate
    if name == "Recommender":
        from kerec.api import Recommender

        return Recommender
    raise AttributeError(f"module 'kerec' has no attribute {name!r}")
