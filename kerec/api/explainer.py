"""Explanations of the chosen items: templated from their best facts, or written by the LLM citing numbered
facts and checked once against the graph store (:mod:`kerec.explain`); what fails the check is never shown."""
from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from kerec.explain import Explanation, TitleIndex, check, settle, template, whole_sentences
from kerec.kg.evidence import Evidence
from kerec.kg.store import GraphStore
from kerec.llm import LLM, generates_on_cpu
from kerec.prompting import explanation_inputs, load_prompt


class Explainer:
    """``mode``: "llm" (written, checked, templated on failure), "template", or "auto" ("llm" unless the LLM
    generates on this machine's CPU). Without an LLM every explanation is templated."""

    def __init__(self, store: GraphStore, titles: TitleIndex, llm: LLM | None, *, mode: str, tokens: int,
                 attempts: int) -> None:
        self.store, self.titles, self.llm = store, titles, llm
        self.tokens, self.attempts = tokens, attempts
        self.writes = llm is not None and mode != "template" and (mode == "llm" or not generates_on_cpu(llm))

    def explain(self, history: Collection[str], chosen: Sequence[tuple[str, str]],
                evidence: Mapping[str, Sequence[Evidence]]) -> dict[str, Explanation]:
        """One explanation per chosen ``(item id, title)``, keyed by item id; ``history``: the user's items
        (facts must link the pick to them)."""
        if not self.writes or self.llm is None:
            return {i: template(evidence.get(i, [])) for i, _ in chosen}
        prompt = load_prompt("explanation")
        need = [(i, t) for i, t in chosen if evidence.get(i)]
        msgs = {i: prompt.messages(**explanation_inputs(t, [(str(n), e.text) for n, e in enumerate(evidence[i], 1)]))
                for i, t in need}
        # Attempt 0 greedy, retries sampled (temperature 0.7, seed = attempt) from the same prompt; each
        # attempt is one batched call over the items whose earlier texts all failed the check.
        tried: dict[str, list[tuple[str, tuple[int, ...], str | None]]] = {i: [] for i, _ in need}
        pending = [i for i, _ in need]
        for attempt in range(self.attempts):
            if not pending:
                break
            outs = self.llm.generate([msgs[i] for i in pending], max_new_tokens=self.tokens,
                                     temperature=0.0 if attempt == 0 else 0.7, seed=attempt)
            for i, text in zip(pending, outs):
                text = whole_sentences(text)
                tried[i].append((text, *check(text, evidence[i], self.store, history, i, self.titles)))
            pending = [i for i in pending if tried[i][-1][2] is not None]
        return {i: settle(tried[i], evidence[i]) if i in tried else template(evidence.get(i, [])) for i, _ in chosen}
