"""kerec's public API: ``Recommender.load(...)`` and ``recommend(user, k)``.

One call runs the whole design (the data flow of kerec/DESIGN.md), through stage objects built once:

1. retrieval (:class:`kerec.gnn.retrieval.Retrieval`): the GNN (with its item–item head when fitted) scores
   the whole catalogue for the user (seen and non-recommendable items masked) and keeps the top
   ``candidates`` (20);
2. evidence (:class:`kerec.kg.evidence.EvidenceBuilder`): the graph store gives the routes linking the user's
   recent history to each candidate; the GNN scores their facts and the best ``evidence_per_item`` are kept;
3. a ranker (:mod:`kerec.api.rankers`: none, an untuned LLM, or a tuned checkpoint): the probability of each
   candidate's letter — every answer is a candidate by construction, so no item outside the catalogue can
   come back;
4. fused score = ``(1 − w)·z(GNN) + w·z(LLM log-prob)`` (:mod:`kerec.fusion`), ``w`` the fusion weight
   (``0`` = GNN alone; by default the one saved with the checkpoint, see :class:`Settings`);
5. the explainer (:class:`kerec.api.explainer.Explainer`): each of the top ``k`` explained citing
   numbered evidence checked against the graph store; what fails the check is never shown.

A Recommender is configured once: :meth:`with_settings` and :meth:`with_llm` return a new one that shares
the loaded stages.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from kerec import fusion
from kerec.api.explainer import Explainer
from kerec.api.rankers import LLMRanker, NoRanker, Ranker, RankRequest, TunedLetterRanker, ranking_messages
from kerec.api.settings import MAX_LLM_CANDIDATES, CandidateScores, Recommendation, Settings
from kerec.data import Dataset, load_dataset
from kerec.data.history import training_histories
from kerec.errors import KerecError, UnknownIdError
from kerec.explain import Explanation, TitleIndex
from kerec.finetune import checkpoint as finetune_checkpoint
from kerec.finetune.scoring import TunedRanker
from kerec.gnn import Checkpoint, Prepared, load_retriever, prepare_from_checkpoint
from kerec.gnn.checkpoint import FusionChoice
from kerec.gnn.retrieval import Retrieval
from kerec.kg import GraphStore, MemoryStore, build_ckg, open_store
from kerec.kg.evidence import Evidence, EvidenceBuilder
from kerec.llm import LLM, load_llm
from kerec.paths import default_checkpoint


@dataclass(frozen=True)
class _Stages:
    """What :meth:`Recommender.load` builds once and every derived Recommender shares."""

    retrieval: Retrieval
    store: GraphStore
    evidence: EvidenceBuilder
    node_index: dict[str, dict[str, int]]
    titles: TitleIndex
    llm: LLM | None
    llm_spec: str | None  # the spec the LLM was loaded from (None: given as an object, or no LLM)
    tuned: TunedRanker | None
    fusion: FusionChoice | None  # the weight saved with the checkpoint



def checkpoint_path(path: str | Path = "default", tuned: str | Path | None = None) -> Path:
    """The retriever checkpoint :meth:`Recommender.load` reads for these arguments (raises if there is none):
    ``path``, or with "default" the tuned run's GNN (``tuned``) or :func:`kerec.paths.default_checkpoint`."""
    if tuned is not None and str(path) == "default":
        path = finetune_checkpoint.resolve(tuned) / "retriever.pt"
    found = default_checkpoint() if str(path) == "default" else Path(path)
    if not found.exists():
        hint = " (run `kerec train retriever` first; it writes there by default)" if str(path) == "default" else ""
        raise KerecError(f"no retriever checkpoint at {found}{hint}")
    return found


class Recommender:
    """A trained retriever, the graph store of its dataset and (optionally) an LLM. Build with :meth:`load`."""

    def __init__(self, stages: _Stages, settings: Settings) -> None:
        self._stages = stages
        self._settings = settings
        self._ranker: Ranker = (TunedLetterRanker(stages.tuned) if stages.tuned is not None else
                                LLMRanker(stages.llm, self.dataset, history_in_prompt=settings.history_in_prompt,
                                          facts_in_prompt=settings.facts_in_prompt) if stages.llm is not None else
                                NoRanker())
        if settings.candidates > self._ranker.max_candidates:
            # the tuned soft prompt has one slot per candidate the model was tuned with
            self._settings = settings = replace(settings, candidates=self._ranker.max_candidates)
        self._explainer = Explainer(stages.store, stages.titles, stages.llm, mode=settings.explanations,
                                    tokens=settings.explanation_tokens, attempts=settings.explanation_attempts)
        self.fusion_weight, self.fusion_source = self._resolve_weight()
        self._train_hist: dict[int, list[str]] | None = None

    # ------------------------------------------------------------------ building
    @classmethod
    def load(cls, path: str | Path = "default", *, data: str | None = None, store: str | GraphStore | None = None,
             llm: str | LLM | None = "auto", settings: Settings | None = None,
             tuned: str | Path | None = None, tuned_engine: str = "transformers") -> Recommender:
        """``path``: a retriever checkpoint (``kerec train retriever --out``) or "default"
        (:func:`kerec.paths.default_checkpoint`). ``data``: the dataset it was trained on (default: the
        embedded one); ``store``: None (an in-process store loaded here), a Bolt URI holding the same dataset,
        or a store; ``llm``: a spec for :func:`kerec.llm.load_llm` ("auto": SmolLM2-135M-Instruct on CPU, in
        bfloat16 where the CPU computes it natively, else float32; "default": float32), an LLM, or None / "none"
        (GNN ranking and templated explanations only).

        ``tuned``: a ``kerec finetune`` run or step folder. Its tuned LLM ranks the candidates with the
        graph soft prompt (:class:`kerec.finetune.scoring.TunedRanker`; the history it shows is the training
        split), and with ``path="default"`` its tuned GNN is the retriever. Explanations still come from
        ``llm``: give ``"default@<step>/adapter"`` to write them with the tuned adapter (text only).
        ``tuned_engine``: "transformers" (the joint model) or "vllm" (the adapter through ``enable_lora``,
        the soft prompt as prompt embeddings)."""
        ckpt_path = checkpoint_path(path, tuned)
        ckpt = Checkpoint.load(ckpt_path)
        dataset = _checkpoint_dataset(ckpt, data)
        graph_store = _open_store(store, dataset)
        # One load of the KG: the in-process store built here also gives the tensors the GNN needs.
        kg = graph_store.to_tensors(add_inverse=True) if isinstance(graph_store, MemoryStore) else None
        prepared = prepare_from_checkpoint(ckpt, dataset, kg=kg)
        model, graph = load_retriever(ckpt, prepared)
        ranker = None
        if tuned is not None:
            ranker = TunedRanker.load(tuned, data=data, engine=tuned_engine, dataset=dataset,
                                      store=graph_store if isinstance(graph_store, MemoryStore) else None)
        if llm == "none":  # as on the command line: the GNN ranking and templated explanations
            llm = None
        spec = llm if isinstance(llm, str) else None
        if isinstance(llm, str):
            llm = load_llm(llm)
        items = dataset.items
        titles = TitleIndex({items.external(i): dataset.item_title(i) for i in range(len(items))})
        retrieval = Retrieval(prepared, model, graph)
        # Descriptions of unnamed KG nodes name the user's films first, then the best-known ones.
        evidence = EvidenceBuilder(graph_store, popularity=dict(zip(items.ids, retrieval.popularity.tolist())))
        stages = _Stages(retrieval, graph_store, evidence,
                         {label: graph_store.node_index(label) for label in ("Item", "Entity")}, titles,
                         llm, spec, ranker, ckpt.fusion)
        return cls(stages, settings or Settings())

    def with_settings(self, **changes: Any) -> Recommender:
        """A new Recommender with these :class:`Settings` fields changed, sharing everything loaded."""
        unknown = sorted(set(changes) - {f.name for f in fields(Settings)})
        if unknown:
            raise KerecError(f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(f.name for f in fields(Settings))}")
        return Recommender(self._stages, replace(self._settings, **changes))

    def with_llm(self, llm: LLM | None) -> Recommender:
        """A new Recommender ranking and explaining with ``llm`` (None: the GNN and templates only); a
        tuned ranker, if any, is dropped with it."""
        return Recommender(replace(self._stages, llm=llm, llm_spec=None, tuned=None), self._settings)

    def _resolve_weight(self) -> tuple[float, str]:
        if self._settings.fusion_weight is not None:
            return self._settings.fusion_weight, "settings"
        saved = self._stages.fusion
        if saved is None or isinstance(self._ranker, NoRanker):
            return 0.0, "default"
        if self._stages.tuned is None and saved.llm == self._stages.llm_spec:
            return saved.weight, f"checkpoint (chosen on {saved.chosen_on} for {saved.llm})"
        return 0.0, f"default (the checkpoint's weight was chosen for {saved.llm!r})"

    # ------------------------------------------------------------------ read-only faces
    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def dataset(self) -> Dataset:
        return self._stages.retrieval.prepared.dataset

    @property
    def prepared(self) -> Prepared:
        """The dataset, split and item mask the retriever was trained on."""
        return self._stages.retrieval.prepared

    @property
    def store(self) -> GraphStore:
        return self._stages.store

    @property
    def llm(self) -> LLM | None:
        return self._stages.llm

    @property
    def tuned(self) -> TunedRanker | None:
        return self._stages.tuned

    @property
    def titles(self) -> TitleIndex:
        """The catalogue's titles, for checking that explanations name only films their facts concern."""
        return self._stages.titles

    @property
    def writes_explanations(self) -> bool:
        """Whether the LLM writes the explanations (``Settings.explanations``, "auto" resolved)."""
        return self._explainer.writes

    @property
    def popularity(self) -> np.ndarray:
        """shape: (I,) — training interactions per item, the basis for a user without history."""
        return self._stages.retrieval.popularity

    @property
    def item_popularity(self) -> Mapping[str, float]:
        """Item id → training interactions: what orders the films a description of an unnamed KG node names
        (evidence, the subgraph picture, ``/items``)."""
        return self._stages.evidence.popularity

    # ------------------------------------------------------------------ public scoring
    def recommend(self, user: str, k: int = 10, *, exclude_seen: bool = True, candidates: Sequence[str] | None = None,
                  explain: bool = True, timings: dict[str, float] | None = None) -> list[Recommendation]:
        """The user's top ``k`` items, best first. ``candidates``: rank only these item ids; ``timings``: a
        dict that receives the milliseconds spent per stage (:data:`STAGES`), added to what it holds."""
        return self.recommend_many([user], k, exclude_seen=exclude_seen, candidates=candidates, explain=explain,
                                   timings=timings)[user]

    def recommend_many(self, users: Sequence[str], k: int = 10, *, exclude_seen: bool = True,
                       candidates: Sequence[str] | None = None, explain: bool = True,
                       timings: dict[str, float] | None = None) -> dict[str, list[Recommendation]]:
        """:meth:`recommend` for many users, the LLM calls batched across them."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise KerecError(f"k must be at least 1 (a whole number), got {k!r}")
        clock = _StageClock(timings)
        pool = self._candidate_pool(candidates)
        plans = [self._plan(user, k, exclude_seen, pool, clock) for user in dict.fromkeys(users)]
        with clock("llm_rank"):
            self._rank(plans)
        out = {}
        for plan in plans:
            chosen = plan.order()[:k]
            with clock("explain"):
                explanations = self._explain(plan, chosen) if explain else {}
            out[plan.user] = [self._recommendation(plan, i, rank, explanations.get(i))
                              for rank, i in enumerate(chosen, 1)]
        return out

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
            history, u, scores, ratings = self._user(user)
            plans.append(self._with_evidence(user, u, history, [int(i) for i in pool], [], scores, ratings))
        self._rank(plans)
        return [CandidateScores(p.user, [self.dataset.items.external(i) for i in p.top], p.scores[p.top], p.llm)
                for p in plans]

    def gnn_scores(self, user: str) -> np.ndarray:
        """shape: (I,) — the retriever's score of every item for ``user``, the item head included (popularity
        for a user without history). ``recommend`` and chat rank by it."""
        return self._user(user)[2]

    def profile_scores(self, items: Sequence[str]) -> np.ndarray:
        """shape: (I,) — the retriever's score of every item for a user whose history is ``items`` (item
        ids; e.g. the films liked in a chat), the item head included."""
        return self._stages.retrieval.profile_scores(self._item_indices(items))

    def history(self, user: str) -> list[str]:
        """The user's items, oldest first, as :attr:`Settings.history` says (store or training split)."""
        return self._user(user)[0]

    def evidence_for(self, history: Sequence[str], candidates: Sequence[str], *, user: str | None = None,
                     profile: Sequence[str] = (), older: Sequence[str] = (),
                     ratings: Mapping[str, float] | None = None) -> dict[str, list[Evidence]]:
        """Each candidate's best ``evidence_per_item`` facts linking it to ``history`` (item ids), ranked by
        information (:mod:`kerec.kg.information`, with ``user``'s ratings of the history items) and scored by
        the GNN against the taste of ``user`` plus the mean of the ``profile`` items (the degree prior with
        neither). ``older``: earlier history items, searched for the candidates ``history`` links by
        catalogue metadata only (:meth:`kerec.kg.evidence.EvidenceBuilder.best`). ``ratings``: ``user``'s
        ratings by item id when the caller has read them already (else read from the store)."""
        retrieval = self._stages.retrieval
        vectors = []
        if user is not None:
            vectors.append(retrieval.user_vector(self._user_index(user)))
        if profile:
            vectors.append(retrieval.profile_vector(self._item_indices(profile)))
        scorer = retrieval.fact_scorer(sum(vectors[1:], vectors[0]), self._stages.node_index) if vectors else None
        if ratings is None:
            ratings = {h.item: h.rating for h in self.store.history(user)} if user is not None else {}
        return self._stages.evidence.best(list(history), list(candidates), scorer, top=self._settings.evidence_per_item,
                                          ratings=ratings, older=list(older))

    def ranking_prompts(self, users: Sequence[str]) -> list[list[dict[str, str]]]:
        """The ranking prompt each user's :meth:`recommend` would send to an untuned LLM (for benchmarks and
        inspection; no LLM needed); seen items excluded, candidates in GNN order."""
        return ranking_messages(self.dataset, [self._request(self._plan(u, 1, True, None)) for u in users],
                                history_in_prompt=self._settings.history_in_prompt,
                                facts_in_prompt=self._settings.facts_in_prompt)

    # ------------------------------------------------------------------ steps
    def _user_index(self, user: str) -> int:
        if not isinstance(user, str) or user not in self.dataset.users:
            raise UnknownIdError("user", user, "not in the dataset the retriever was trained on")
        return self.dataset.users.index(user)

    def _item_indices(self, items: Sequence[str]) -> list[int]:
        missing = [i for i in items if i not in self.dataset.items]
        if missing:
            raise UnknownIdError("item", missing[0], f"{len(missing)} item(s) are not in the catalogue")
        return [int(i) for i in self.dataset.items.indices(list(items))]

    def _candidate_pool(self, candidates: Sequence[str] | None) -> np.ndarray | None:
        if candidates is None:
            return None
        if not candidates:
            raise KerecError("candidates is empty; pass None to rank the whole catalogue")
        return np.asarray(self._item_indices(list(dict.fromkeys(candidates))), dtype=np.int64)

    def _user(self, user: str) -> tuple[list[str], int, np.ndarray, dict[str, float] | None]:
        """The user's history (item ids, oldest first), index, every item's score, and their ratings when
        the history was read from the store (one read serves both; None: read them when needed)."""
        u = self._user_index(user)
        ratings = None
        if self._settings.history == "train":
            history = self._train_history().get(u, [])
        else:
            entries = self.store.history(user)
            history, ratings = [h.item for h in entries], {h.item: h.rating for h in entries}
        if history:
            scores = self._stages.retrieval.user_scores(u)
        else:  # a cold user: the GNN knows nothing of them; popularity, then the LLM and KG attributes
            scores = self.popularity
        return history, u, scores, ratings

    def _train_history(self) -> dict[int, list[str]]:
        if self._train_hist is None:
            ext = self.dataset.items.external
            self._train_hist = {u: [ext(i) for i in items] for u, items in
                                training_histories(self.dataset, self.prepared.split.train).items()}
        return self._train_hist

    def _plan(self, user: str, k: int, exclude_seen: bool, pool: np.ndarray | None,
              clock: _StageClock | None = None) -> _Plan:
        clock = clock or _StageClock(None)
        with clock("gnn"):
            history, u, scores, ratings = self._user(user)
        allowed = self.prepared.allowed_items.copy()
        if k > int(allowed.sum()):
            raise KerecError(f"k={k} is more than the {int(allowed.sum())} items that can be recommended")
        if exclude_seen and history:
            allowed[self.dataset.items.indices(history)] = False
        if pool is not None:
            mask = np.zeros_like(allowed)
            mask[pool] = True
            allowed &= mask
        ranked = [int(i) for i in np.argsort(-np.where(allowed, scores, -np.inf), kind="stable") if allowed[i]]
        if not ranked:
            raise KerecError(f"no item left to recommend to user {user!r} (all candidates seen or not recommendable)")
        n = min(self._settings.candidates, len(ranked))
        with clock("evidence"):
            return self._with_evidence(user, u, history, ranked[:n], ranked[n:max(k, n)], scores, ratings)

    def _with_evidence(self, user: str, u: int, history: list[str], top: list[int], rest: list[int],
                       scores: np.ndarray, ratings: dict[str, float] | None) -> _Plan:
        ids = [self.dataset.items.external(i) for i in top]
        recent = self._settings.history_for_evidence
        evidence = self.evidence_for(history[-recent:], ids, user=user, older=history[-4 * recent:-recent],
                                     ratings=ratings)
        return _Plan(user, u, history, top, rest, scores, evidence, "gnn" if history else "popularity")

    def _request(self, plan: _Plan) -> RankRequest:
        return RankRequest(plan.user, plan.history, [self.dataset.items.external(i) for i in plan.top], plan.evidence)

    def _rank(self, plans: Sequence[_Plan]) -> None:
        # LLM scores are computed even at weight 0: recommendations report them
        for plan, row in zip(plans, self._ranker.letter_logprobs([self._request(p) for p in plans])):
            plan.llm, plan.weight = row, self.fusion_weight

    def _explain(self, plan: _Plan, chosen: Sequence[int]) -> dict[int, Explanation]:
        ext, title = self.dataset.items.external, self.dataset.item_title
        texts = self._explainer.explain(set(plan.history), [(ext(i), title(i)) for i in chosen], plan.evidence)
        return {i: texts[ext(i)] for i in chosen}

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


STAGES = ("gnn", "evidence", "llm_rank", "explain")  # what ``recommend(..., timings=)`` times


class _StageClock:
    """Adds each stage's milliseconds to ``timings`` (a no-op without one)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        if self.timings is None:
            yield
            return
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + (time.perf_counter() - start) * 1000


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


def _checkpoint_dataset(ckpt: Checkpoint, data: str | None) -> Dataset:
    """The dataset a checkpoint was trained on (KG-linked items only when it was), checked by fingerprint."""
    ds = load_dataset(data)
    if ckpt.dataset.get("linked_only"):
        ds = ds.with_linked_items_only()
    ckpt.check_dataset(ds.fingerprint, ds.name)
    return ds


def _open_store(store: str | GraphStore | None, dataset: Dataset) -> GraphStore:
    if isinstance(store, GraphStore):
        graph_store = store
    else:
        graph_store = open_store(store) if store else MemoryStore()
    info = graph_store.info()
    if info is None and isinstance(graph_store, MemoryStore):
        graph_store.load(build_ckg(dataset), progress=False)
        info = graph_store.info()
    if info is None:
        raise KerecError(f"graph store {graph_store.uri} holds no dataset; load it with `kerec kg load`")
    if not info.complete:
        raise KerecError(f"graph store {graph_store.uri} {info.incomplete()}")
    if info.fingerprint != dataset.fingerprint:
        raise KerecError(f"graph store {graph_store.uri} holds dataset {info.name!r} ({info.fingerprint[:12]}), "
                         f"not the retriever's {dataset.name!r} ({dataset.fingerprint[:12]})")
    return graph_store
