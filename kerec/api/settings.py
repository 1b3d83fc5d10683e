"""What a :class:`~kerec.api.Recommender` is told (:class:`Settings`) and what it answers
(:class:`Recommendation`, :class:`CandidateScores`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kerec.errors import KerecError
from kerec.kg.evidence import Evidence

MAX_LLM_CANDIDATES = 20  # letters A–T


@dataclass(frozen=True)
class Settings:
    """How a :class:`Recommender` works; every field has a measured or documented default. Frozen: change
    one with :meth:`Recommender.with_settings`, which returns a new Recommender.

    ``fusion_weight``: the LLM's share of the fused score (0 = GNN alone). ``None`` (the default) takes the
    weight saved with the retriever checkpoint by ``kerec train fusion`` (chosen on the validation split
    for the LLM it names), and 0 when none was saved or it was chosen for another LLM."""

    candidates: int = 20  # GNN top-N handed to the LLM (≤ 20)
    evidence_per_item: int = 5  # facts kept per candidate (explanations, API)
    facts_in_prompt: int = 1  # best evidence per candidate shown in the ranking prompt
    history_in_prompt: int = 10  # most recent history titles shown to the LLM
    # most recent history items paths start from; the 3x as many before them are searched too, for the
    # candidates these link by nothing but genre, year, language, country or rating (EvidenceBuilder.best's
    # ``older``: on 200 test users as many such picks as searching the whole history, at a bounded cost)
    history_for_evidence: int = 50
    fusion_weight: float | None = None
    explanation_tokens: int = 80
    explanation_attempts: int = 2
    history: str = "store"  # "store": the user's interactions in the graph store; "train": the training split only (evaluation)
    # "llm": written by the LLM, checked, templated on failure; "template": from the top facts; "auto": "llm"
    # unless the LLM generates on this machine's CPU, where ten texts of the 135M model take 14-20 s and 1-7 of
    # 40 pass the check (README, *Latency*), against 0.9 s for ranking with templated explanations
    explanations: str = "auto"

    def __post_init__(self) -> None:
        if not 1 <= self.candidates <= MAX_LLM_CANDIDATES:
            raise KerecError(f"candidates must be between 1 and {MAX_LLM_CANDIDATES}, got {self.candidates}")
        if self.fusion_weight is not None and not 0.0 <= self.fusion_weight <= 1.0:
            raise KerecError(f"fusion_weight must be between 0 and 1 (or None: the checkpoint's), got {self.fusion_weight}")
        if self.history not in ("store", "train"):
            raise KerecError(f"history must be 'store' or 'train', got {self.history!r}")
        if self.explanations not in ("auto", "llm", "template"):
            raise KerecError(f"explanations must be 'auto', 'llm' or 'template', got {self.explanations!r}")
        for name in ("evidence_per_item", "history_in_prompt", "history_for_evidence", "explanation_tokens",
                     "explanation_attempts"):
            if getattr(self, name) < 1:
                raise KerecError(f"{name} must be at least 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Recommendation:
    item_id: str
    title: str
    score: float  # fused score (higher is better)
    rank: int  # 1-based
    gnn_score: float
    llm_logprob: float | None  # log P(letter) among the candidates; None without an LLM or beyond the top-20
    explanation: str | None
    explanation_source: str | None  # "llm", "llm-retry", "template", "none"; None with explain=False
    evidence: tuple[Evidence, ...]  # numbered [1].. in the explanation
    cited_facts: tuple[str, ...] = ()  # fact ids behind the explanation's citations, checked in the store
    cited: tuple[int, ...] = ()  # the evidence numbers ([1]-based) the explanation cites
    basis: str = "gnn"  # "gnn", or "popularity" for a user without history (cold user)
    rejected: tuple[str, ...] = field(default=(), repr=False)  # explanations that failed the check

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "title": self.title, "rank": self.rank, "score": self.score,
                "gnn_score": self.gnn_score, "llm_logprob": self.llm_logprob, "explanation": self.explanation,
                "explanation_source": self.explanation_source, "cited_facts": list(self.cited_facts),
                "cited": list(self.cited),
                "basis": self.basis,
                "evidence": [{"n": n, "text": e.text, "kind": e.kind, "score": e.score, "fact_ids": list(e.fact_ids)}
                             for n, e in enumerate(self.evidence, 1)]}


@dataclass(frozen=True)
class CandidateScores:
    """One user's candidates in the order the LLM saw them, with both scores (see
    :meth:`Recommender.score_candidates`)."""

    user: str
    items: list[str]
    gnn: np.ndarray  # (N,) the retriever's scores
    llm: np.ndarray | None  # (N,) letter log-probs, None without an LLM
