"""kerec's public API: ``Recommender.load(...)`` and ``recommend(user, k)``.

One call runs the whole design (DESIGN.md's data flow):

1. the GNN retriever scores the whole catalogue for the user (seen and non-recommendable items masked)
   and keeps the top ``candidates`` (20);
2. the graph store gives the routes linking the user's recent history to each candidate; the GNN scores
   their facts (:func:`kerec.retriever.fact_scorer`) and the best ``evidence_per_item`` are kept;
3. the LLM reads the ranking prompt (history titles, lettered candidates, each candidate's best evidence)
   and its probability of each candidate's letter is the LLM score — every answer is a candidate by
   construction, so no item outside the catalogue can come back;
4. fused score = ``(1 − w)·z(GNN) + w·z(LLM log-prob)`` (z: standardised over the candidates), with ``w``
   the fusion weight (``0`` = GNN alone, ``1`` = LLM alone; see :class:`Settings`);
5. each of the top ``k`` is explained by the LLM citing numbered evidence, checked against the graph store
   (:mod:`kerec.explain`); what fails the check is never shown.
"""
from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from kerec import fusion
from kerec.data.history import popularity_scores, training_histories
from kerec.paths import default_checkpoint
from kerec.data import KerecError, UnknownIdError
from kerec.explain import Explanation, TitleIndex, check, grounded, template, whole_sentences
from kerec.kg import GraphStore, MemoryStore, build_ckg, open_store
from kerec.kg.evidence import Evidence, EvidenceBuilder

if TYPE_CHECKING:
    from kerec.chat import ChatReply
    from kerec.llm import LLM
    from kerec.retriever import Prepared

MAX_LLM_CANDIDATES = 20  # letters A–T


@dataclass(frozen=True)
class Settings:
    """How a :class:`Recommender` works; every field has a measured or documented default.

    ``fusion_weight``: LLM share of the fused score (0 = GNN alone). The default 0.0 holds until a weight
    is chosen on the validation split (``eval/bench_llm_ranking.py`` writes it next to the checkpoint)."""

    candidates: int = 20  # GNN top-N handed to the LLM (≤ 20)
    evidence_per_item: int = 5  # facts kept per candidate (explanations, API)
    facts_in_prompt: int = 1  # best evidence per candidate shown in the ranking prompt
    history_in_prompt: int = 10  # most recent history titles shown to the LLM
    history_for_evidence: int = 20  # most recent history items paths start from
    fusion_weight: float = 0.0
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
        if not 0.0 <= self.fusion_weight <= 1.0:
            raise KerecError(f"fusion_weight must be between 0 and 1, got {self.fusion_weight}")
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
    """One user's candidates in the order the LLM saw them, with both scores (see :meth:`Recommender.score_candidates`)."""

    user: str
    items: list[str]
    gnn: np.ndarray  # (N,) GNN dot-product scores
    llm: np.ndarray | None  # (N,) letter log-probs, None without an LLM


class Recommender:
    """A trained retriever, the graph store of its dataset and (optionally) an LLM. Build with :meth:`load`."""

    def __init__(self, prepared: Prepared, model: Any, graph: Any, store: GraphStore, llm: LLM | None,
                 settings: Settings = Settings(), tuned: Any = None) -> None:
        self.prepared, self.model, self.graph, self.store, self.llm, self.settings = (
            prepared, model, graph, store, llm, settings)
        from kerec.gnn.models import KnowledgeRetriever

        with torch.no_grad():
            self.embeddings = model(graph)
            self.knowledge = model.knowledge(graph) if isinstance(model, KnowledgeRetriever) else None
        self.dataset = prepared.dataset
        self.evidence = EvidenceBuilder(store)
        self._node_index = {label: store.node_index(label) for label in ("Item", "Entity")}
        self._relations = prepared.graph_kg.relations
        self._train_hist: dict[int, list[str]] | None = None
        self._titles: TitleIndex | None = None
        self.tuned = tuned  # a kerec.finetune.scoring.TunedRanker ranking in place of ``llm`` (see load)
        self._popularity = popularity_scores(prepared.split.train, self.dataset.num_items).numpy().astype(np.float64)

    @classmethod
    def load(cls, path: str | Path = "default", *, data: str | None = None, store: str | GraphStore | None = None,
             llm: str | LLM | None = "auto", settings: Settings | None = None,
             tuned: str | Path | None = None, tuned_engine: str = "transformers") -> Recommender:
        """``path``: a retriever checkpoint (``kerec train retriever --out``) or "default"
        (:func:`default_checkpoint`). ``data``: the dataset it was trained on (default: the embedded one);
        ``store``: None (an in-process store loaded here), a Bolt URI holding the same dataset, or a store;
        ``llm``: a spec for :func:`kerec.llm.load_llm` ("auto": SmolLM2-135M-Instruct on CPU, in bfloat16
        where the CPU computes it natively, else float32; "default": float32), an LLM, or None (GNN ranking and templated explanations only).

        ``tuned``: a ``kerec finetune`` run or step folder. Its tuned LLM ranks the candidates with the
        graph soft prompt (:class:`kerec.finetune.scoring.TunedRanker`; the history it shows is the training
        split), and with ``path="default"`` its tuned GNN is the retriever. Explanations still come from
        ``llm``: give ``"default@<step>/adapter"`` to write them with the tuned adapter (text only).
        ``tuned_engine``: "transformers" (the joint model) or "vllm" (the adapter through ``enable_lora``,
        the soft prompt as prompt embeddings; see :meth:`kerec.finetune.scoring.TunedRanker.load`)."""
        from kerec.gnn.checkpoint import Checkpoint
        from kerec.retriever import load_retriever, prepare_from_checkpoint

        ranker = None
        if tuned is not None:
            from kerec.finetune import checkpoint as finetune_checkpoint
            from kerec.finetune.scoring import TunedRanker

            ranker = TunedRanker.load(tuned, data=data, engine=tuned_engine)
            if str(path) == "default":
                path = finetune_checkpoint.resolve(tuned) / "retriever.pt"
        ckpt_path = default_checkpoint() if str(path) == "default" else Path(path)
        if not ckpt_path.is_file():
            hint = " (run `kerec train retriever` first; it writes there by default)" if str(path) == "default" else ""
            raise KerecError(f"no retriever checkpoint at {ckpt_path}{hint}")
        ckpt = Checkpoint.load(ckpt_path)
        prepared = prepare_from_checkpoint(ckpt, data)
        model, graph = load_retriever(ckpt, prepared)
        graph_store = _open_store(store, prepared)
        if isinstance(llm, str):
            from kerec.llm import load_llm

            llm = load_llm(llm)
        settings = settings or _saved_settings(ckpt_path)
        if ranker is not None:  # the soft prompt has one slot per candidate the model was tuned with
            settings = replace(settings, candidates=min(settings.candidates, ranker.builder.config.candidates))
        rec = cls(prepared, model, graph, graph_store, llm, settings, tuned=ranker)
        # The in-process store, id maps and model are millions of long-lived objects: without this, every
        # full collection (path search allocates enough to trigger them) rescans them all and a request
        # that meets one takes ~0.8 s instead of ~60 ms (p95 of recommend, eval/results/llm_latency).
        gc.freeze()
        return rec

    @property
    def writes_explanations(self) -> bool:
        """Whether the LLM writes the explanations (``Settings.explanations``, "auto" resolved)."""
        if self.llm is None or self.settings.explanations == "template":
            return False
        from kerec.llm import generates_on_cpu

        return self.settings.explanations == "llm" or not generates_on_cpu(self.llm)

    # ------------------------------------------------------------------ public calls
    def recommend(self, user: str, k: int = 10, *, exclude_seen: bool = True, candidates: Sequence[str] | None = None,
                  explain: bool = True) -> list[Recommendation]:
        """The user's top ``k`` items, best first. ``candidates``: rank only these item ids."""
        return self.recommend_many([user], k, exclude_seen=exclude_seen, candidates=candidates, explain=explain)[user]

    def recommend_many(self, users: Sequence[str], k: int = 10, *, exclude_seen: bool = True,
                       candidates: Sequence[str] | None = None, explain: bool = True) -> dict[str, list[Recommendation]]:
        """:meth:`recommend` for many users, the LLM calls batched across them."""
        if k < 1:
            raise KerecError(f"k must be at least 1, got {k}")
        pool = self._candidate_pool(candidates)
        plans = [self._plan(user, k, exclude_seen, pool) for user in dict.fromkeys(users)]
        self._llm_rank(plans)
        out = {}
        for plan in plans:
            chosen = plan.order()[:k]
            explanations = self._explain(plan, chosen) if explain else {}
            out[plan.user] = [self._recommendation(plan, i, rank, explanations.get(i))
                              for rank, i in enumerate(chosen, 1)]
        return out

    # ------------------------------------------------------------------ steps
    def _candidate_pool(self, candidates: Sequence[str] | None) -> np.ndarray | None:
        if candidates is None:
            return None
        if not candidates:
            raise KerecError("candidates is empty; pass None to rank the whole catalogue")
        items = self.dataset.items
        missing = [c for c in candidates if c not in items]
        if missing:
            raise UnknownIdError("item", missing[0], f"{len(missing)} candidate(s) are not in the catalogue")
        return items.indices(list(dict.fromkeys(candidates)))

    def score_candidates(self, users: Sequence[str], candidates: Sequence[Sequence[str]]) -> list[CandidateScores]:
        """GNN and LLM scores of each user's candidates, presented to the LLM in the order given (the
        20-candidate protocol: shuffle them first). Seen items are not removed."""
        if len(users) != len(candidates):
            raise KerecError(f"{len(users)} users but {len(candidates)} candidate lists")
        plans = []
        for user, cands in zip(users, candidates):
            pool = self._candidate_pool(cands)
            if len(pool) > MAX_LLM_CANDIDATES:
                raise KerecError(f"at most {MAX_LLM_CANDIDATES} candidates can be lettered, got {len(pool)}")
            history, u, scores = self._user(user)
            plans.append(self._with_evidence(user, u, history, [int(i) for i in pool], [], scores))
        self._llm_rank(plans)
        return [CandidateScores(p.user, [self.dataset.items.external(i) for i in p.top], p.scores[p.top], p.llm)
                for p in plans]

    def chat(self, session_id: str, message: str | bytes, **kw: Any) -> ChatReply:
        """One turn of a conversation (:meth:`kerec.chat.ChatEngine.chat`; ``user=``, ``k=``), on an
        engine this Recommender creates on first use and keeps, with its sessions."""
        from kerec.chat import engine_for

        return engine_for(self).chat(session_id, message, **kw)

    def gnn_scores(self, user: str) -> np.ndarray:
        """shape: (I,) — the retriever's score of every item for ``user`` (popularity for a user without history)."""
        return self._user(user)[2]

    def history(self, user: str) -> list[str]:
        """The user's items, oldest first, as :attr:`Settings.history` says (store or training split)."""
        return self._user(user)[0]

    def _user(self, user: str) -> tuple[list[str], int, np.ndarray]:
        if user not in self.dataset.users:
            raise UnknownIdError("user", user, "not in the dataset the retriever was trained on")
        u = self.dataset.users.index(user)
        if self.settings.history == "train":
            history = self._train_history().get(u, [])
        else:
            history = [h.item for h in self.store.history(user)]
        if history:
            with torch.no_grad():
                scores = self.embeddings.scores(torch.tensor([u]))[0].numpy().astype(np.float64)
        else:  # a cold user: the GNN knows nothing of them; popularity, then the LLM and KG attributes
            scores = self._popularity
        return history, u, scores

    def _train_history(self) -> dict[int, list[str]]:
        if self._train_hist is None:
            ext = self.dataset.items.external
            self._train_hist = {u: [ext(i) for i in items] for u, items in
                                training_histories(self.dataset, self.prepared.split.train).items()}
        return self._train_hist

    def _plan(self, user: str, k: int, exclude_seen: bool, pool: np.ndarray | None) -> _Plan:
        history, u, scores = self._user(user)
        allowed = self.prepared.allowed_items.copy()
        if k > int(allowed.sum()):
            raise KerecError(f"k={k} is more than the {int(allowed.sum())} items that can be recommended")
        if exclude_seen:
            allowed[self.dataset.items.indices(history)] = False
        if pool is not None:
            mask = np.zeros_like(allowed)
            mask[pool] = True
            allowed &= mask
        ranked = [int(i) for i in np.argsort(-np.where(allowed, scores, -np.inf), kind="stable") if allowed[i]]
        if not ranked:
            raise KerecError(f"no item left to recommend to user {user!r} (all candidates seen or not recommendable)")
        n = min(self.settings.candidates, len(ranked))
        return self._with_evidence(user, u, history, ranked[:n], ranked[n:max(k, n)], scores)

    def _with_evidence(self, user: str, u: int, history: list[str], top: list[int], rest: list[int],
                       scores: np.ndarray) -> _Plan:
        from kerec.retriever import fact_scorer

        ids = [self.dataset.items.external(i) for i in top]
        scorer = fact_scorer(self.model, self.graph, self.embeddings, u, self._node_index, self._relations,
                             knowledge=self.knowledge)
        evidence = self.evidence.best(history[-self.settings.history_for_evidence:], ids, scorer,
                                      top=self.settings.evidence_per_item)
        return _Plan(user, u, history, top, rest, scores, evidence, "gnn" if history else "popularity")

    def ranking_prompts(self, users: Sequence[str]) -> list[list[dict[str, str]]]:
        """The ranking prompt each user's :meth:`recommend` would send to the LLM (for benchmarks and
        inspection); seen items excluded, candidates in GNN order."""
        return self._ranking_messages([self._plan(u, 1, True, None) for u in users])

    def _ranking_messages(self, plans: Sequence[_Plan]) -> list[list[dict[str, str]]]:
        from kerec.prompting import load_prompt, ranking_inputs

        prompt = load_prompt("ranking")
        messages = []
        for plan in plans:
            titles = [self.dataset.item_title(self.dataset.items.index(h))  # oldest first, as the prompt says
                      for h in plan.history[-self.settings.history_in_prompt:]]
            cand_titles = [self.dataset.item_title(i) for i in plan.top]
            shown = [e for i in plan.top
                     for e in plan.evidence[self.dataset.items.external(i)][: self.settings.facts_in_prompt]]
            facts = [(str(n), e.text) for n, e in enumerate(shown, 1)]
            messages.append(prompt.messages(**ranking_inputs(titles, cand_titles, facts)))
        return messages

    def _llm_rank(self, plans: Sequence[_Plan]) -> None:
        if self.tuned is not None:
            ext = self.dataset.items.external
            rows = self.tuned.letter_logprobs([p.user for p in plans], [[ext(i) for i in p.top] for p in plans])
            for plan, row in zip(plans, rows):
                plan.llm = np.asarray(row[: len(plan.top)], dtype=np.float64)
                plan.weight = self.settings.fusion_weight
            return
        if self.llm is None:  # LLM scores are computed even at weight 0: recommendations report them
            return
        by_size: dict[int, list[_Plan]] = {}
        for plan in plans:  # letters are renormalised over each prompt's own candidates
            by_size.setdefault(len(plan.top), []).append(plan)
        for size, group in by_size.items():
            logprobs = self.llm.letter_logprobs(self._ranking_messages(group), size)
            for plan, row in zip(group, logprobs):
                plan.llm = np.asarray(row, dtype=np.float64)
                plan.weight = self.settings.fusion_weight

    def _explain(self, plan: _Plan, chosen: Sequence[int]) -> dict[int, Explanation]:
        out: dict[int, Explanation] = {}
        history = set(plan.history)
        ids = {i: self.dataset.items.external(i) for i in chosen}
        if not self.writes_explanations:
            return {i: template(plan.evidence.get(ids[i], [])) for i in chosen}
        from kerec.prompting import explanation_inputs, load_prompt

        prompt = load_prompt("explanation")
        need = [i for i in chosen if plan.evidence.get(ids[i])]
        msgs = {i: prompt.messages(**explanation_inputs(
            self.dataset.item_title(i), [(str(n), e.text) for n, e in enumerate(plan.evidence[ids[i]], 1)]))
            for i in need}
        # Attempt 0 greedy, retries sampled (temperature 0.7, seed = attempt) from the same prompt; each
        # attempt is one batched call over the items whose earlier texts all failed the check.
        texts: dict[int, list[str]] = {i: [] for i in need}
        pending = list(need)
        for attempt in range(self.settings.explanation_attempts):
            if not pending:
                break
            outs = self.llm.generate([msgs[i] for i in pending], max_new_tokens=self.settings.explanation_tokens,
                                     temperature=0.0 if attempt == 0 else 0.7, seed=attempt)
            for i, text in zip(pending, outs):
                texts[i].append(whole_sentences(text))
            pending = [i for i in pending
                       if check(texts[i][-1], plan.evidence[ids[i]], self.store, history, ids[i], self.titles)[1]
                       is not None]
        for i in chosen:
            tried = texts.get(i, [])
            out[i] = grounded(lambda attempt, tried=tried: tried[attempt], plan.evidence.get(ids[i], []), self.store,
                              history, ids[i], attempts=len(tried), titles=self.titles)
        return out

    @property
    def titles(self) -> TitleIndex:
        """The catalogue's titles, for checking that explanations name only films their facts concern."""
        if self._titles is None:
            items = self.dataset.items
            self._titles = TitleIndex({items.external(i): self.dataset.item_title(i) for i in range(len(items))})
        return self._titles

    def _recommendation(self, plan: _Plan, item: int, rank: int, exp: Explanation | None) -> Recommendation:
        ident = self.dataset.items.external(item)
        pos = plan.position.get(item)
        return Recommendation(
            item_id=ident, title=self.dataset.item_title(item), score=float(plan.fused().get(item, plan.scores[item])),
            rank=rank, gnn_score=float(plan.scores[item]),
            llm_logprob=float(plan.llm[pos]) if plan.llm is not None and pos is not None else None,
            explanation=exp.text if exp else None, explanation_source=exp.source if exp else None,
            evidence=tuple(plan.evidence.get(ident, ())), cited_facts=exp.fact_ids if exp else (),
            cited=exp.cited if exp else (),
            rejected=exp.rejected if exp else (), basis=plan.basis)


@dataclass
class _Plan:
    """One user's request in flight."""

    user: str
    index: int
    history: list[str]
    top: list[int]  # GNN top-N (LLM candidates), best first
    rest: list[int]  # further items in GNN order, when k > N
    scores: np.ndarray  # GNN scores of every item
    evidence: dict[str, list[Evidence]]
    basis: str = "gnn"
    llm: np.ndarray | None = None  # (N,) letter log-probs
    weight: float = 0.0

    @property
    def position(self) -> dict[int, int]:
        return {i: n for n, i in enumerate(self.top)}

    def fused(self) -> dict[int, float]:
        return dict(zip(self.top, fusion.fuse(self.scores[self.top], self.llm, self.weight)))

    def order(self) -> list[int]:
        fused = self.fused()
        # Stable: equal fused scores keep the GNN order.
        return sorted(self.top, key=lambda i: -fused[i]) + self.rest


def _open_store(store: str | GraphStore | None, prepared: Prepared) -> GraphStore:
    if isinstance(store, GraphStore):
        graph_store = store
    else:
        graph_store = open_store(store) if store else MemoryStore()
    info = graph_store.info()
    if info is None and isinstance(graph_store, MemoryStore):
        graph_store.load(build_ckg(prepared.dataset), progress=False)
        info = graph_store.info()
    if info is None or not info.complete:
        raise KerecError(f"graph store {graph_store.uri} holds no complete dataset; load it with `kerec kg load`")
    if info.fingerprint != prepared.dataset.fingerprint:
        raise KerecError(f"graph store {graph_store.uri} holds dataset {info.name!r} ({info.fingerprint[:12]}), "
                         f"not the retriever's {prepared.dataset.name!r} ({prepared.dataset.fingerprint[:12]})")
    return graph_store


def _saved_settings(checkpoint: Path) -> Settings:
    """Settings saved beside a checkpoint (``<name>.settings.json``, written by the fusion benchmark)."""
    import json

    path = checkpoint.with_suffix(".settings.json")
    if not path.is_file():
        return Settings()
    data = json.loads(path.read_text(encoding="utf-8"))
    known = set(Settings.__dataclass_fields__)
    return replace(Settings(), **{k: v for k, v in data.items() if k in known})
