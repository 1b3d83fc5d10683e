"""kerec's public API: :class:`Recommender` (``Recommender.load(...)``, ``recommend(user, k)``) with its
:class:`Settings` and :class:`Recommendation`; the rankers it composes (:mod:`kerec.api.rankers`)."""
from __future__ import annotations

from kerec.api.rankers import LLMRanker, NoRanker, Ranker, RankRequest, TunedLetterRanker
from kerec.api.recommender import Recommender, checkpoint_path
from kerec.api.settings import MAX_LLM_CANDIDATES, CandidateScores, Recommendation, Settings

__all__ = ["MAX_LLM_CANDIDATES", "CandidateScores", "LLMRanker", "NoRanker", "Ranker", "RankRequest", "Recommendation",
           "Recommender", "Settings", "TunedLetterRanker", "checkpoint_path"]
