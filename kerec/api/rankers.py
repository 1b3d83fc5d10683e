"""Rankers: what orders a user's GNN candidates after retrieval. One protocol, three implementations —
no LLM (:class:`NoRanker`), an untuned LLM reading the ranking prompt (:class:`LLMRanker`), and a tuned
checkpoint reading the graph soft prompt (:class:`TunedLetterRanker`). Each returns, per request, the
log-probability of each candidate's letter (every answer is a candidate by construction), or None."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from kerec.api.settings import MAX_LLM_CANDIDATES
from kerec.data import Dataset
from kerec.kg.evidence import Evidence
from kerec.llm import LLM
from kerec.prompting import load_prompt, ranking_inputs

if TYPE_CHECKING:
    from kerec.finetune.scoring import TunedRanker


@dataclass(frozen=True)
class RankRequest:
    """One user's candidates to rank: ``history`` item ids oldest first, ``candidates`` item ids in the
    order they are lettered, ``evidence`` each candidate's best facts (best first)."""

    user: str
    history: Sequence[str]
    candidates: Sequence[str]
    evidence: Mapping[str, Sequence[Evidence]]


class Ranker(Protocol):
    max_candidates: int  # how many candidates one prompt can letter

    def letter_logprobs(self, requests: Sequence[RankRequest]) -> list[np.ndarray | None]:
        """Per request, shape (N,) log P(letter) over its N candidates, or None (no opinion)."""
        ...


class NoRanker:
    """GNN order only: no LLM scores."""

    max_candidates = MAX_LLM_CANDIDATES

    def letter_logprobs(self, requests: Sequence[RankRequest]) -> list[np.ndarray | None]:
        return [None] * len(requests)


class LLMRanker:
    """An LLM reading ``prompts/ranking.yaml``: the ``history_in_prompt`` most recent history titles, the
    lettered candidates and each candidate's ``facts_in_prompt`` best facts as numbered lines. Letters are
    renormalised over each prompt's own candidates, so prompts are batched by candidate count."""

    max_candidates = MAX_LLM_CANDIDATES

    def __init__(self, llm: LLM, dataset: Dataset, *, history_in_prompt: int, facts_in_prompt: int) -> None:
        self.llm, self.dataset = llm, dataset
        self.history_in_prompt, self.facts_in_prompt = history_in_prompt, facts_in_prompt

    def messages(self, requests: Sequence[RankRequest]) -> list[list[dict[str, str]]]:
        """The ranking prompt of each request (for benchmarks and inspection)."""
        return ranking_messages(self.dataset, requests, history_in_prompt=self.history_in_prompt,
                                facts_in_prompt=self.facts_in_prompt)

    def letter_logprobs(self, requests: Sequence[RankRequest]) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = [None] * len(requests)
        by_size: dict[int, list[int]] = {}
        for n, r in enumerate(requests):
            by_size.setdefault(len(r.candidates), []).append(n)
        for size, rows in by_size.items():
            logprobs = self.llm.letter_logprobs(self.messages([requests[n] for n in rows]), size)
            for n, row in zip(rows, logprobs):
                out[n] = np.asarray(row, dtype=np.float64)
        return out


def ranking_messages(dataset: Dataset, requests: Sequence[RankRequest], *, history_in_prompt: int,
                     facts_in_prompt: int) -> list[list[dict[str, str]]]:
    """``prompts/ranking.yaml`` filled for each request: the ``history_in_prompt`` most recent history titles
    (oldest first, as the prompt says), the lettered candidates, each candidate's ``facts_in_prompt`` best facts
    as numbered lines. Needs no LLM: benchmarks render prompts for several LLMs from one Recommender."""
    prompt = load_prompt("ranking")
    title, index = dataset.item_title, dataset.items.index
    out = []
    for r in requests:
        titles = [title(index(h)) for h in r.history[-history_in_prompt:]]
        shown = [e for c in r.candidates for e in r.evidence.get(c, ())[:facts_in_prompt]]
        facts = [(str(n), e.text) for n, e in enumerate(shown, 1)]
        out.append(prompt.messages(**ranking_inputs(titles, [title(index(c)) for c in r.candidates], facts)))
    return out


class TunedLetterRanker:
    """A ``kerec finetune`` checkpoint's tuned LLM with its graph soft prompt; its history is the training
    split (what it was tuned on), and it letters at most as many candidates as it was tuned with."""

    def __init__(self, tuned: TunedRanker) -> None:
        self.tuned = tuned
        self.max_candidates = min(MAX_LLM_CANDIDATES, tuned.builder.config.candidates)

    def letter_logprobs(self, requests: Sequence[RankRequest]) -> list[np.ndarray | None]:
        if not requests:
            return []
        rows = self.tuned.letter_logprobs([r.user for r in requests], [list(r.candidates) for r in requests])
        return [np.asarray(row[: len(r.candidates)], dtype=np.float64) for r, row in zip(requests, rows)]
