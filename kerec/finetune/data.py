"""Instruction data for joint tuning, built from the training split only.

Two kinds of samples, both rendered with the packaged prompts (``prompts/*.yaml``) exactly as the
recommender renders them at inference time:

* **ranking** (``prompts/ranking.yaml``): a training interaction ``(u, t)`` is held out inside training
  (leave-one-out): the history is the user's training items *before* ``t`` in time (``t`` itself and
  later items excluded), oldest first; the candidates are ``t`` plus ``candidates − 1`` negatives the user
  never interacted with in training (uniform, optionally some from the GNN's top scores — hard
  negatives), shuffled and lettered A…; each candidate's best evidence (:class:`~kerec.kg.evidence.EvidenceBuilder`,
  scored by the GNN when one is given) is numbered in the prompt. The answer is ``t``'s letter.
  With ``DataConfig.targets: gnn_holdout`` the targets are only the training pairs the retriever's GNN did not
  learn from (``kerec train retriever --gnn-holdout F``), each against all of the user's other training items,
  as a held-out item is ranked at test time: an LLM trained to correct the GNN (``train.residual``) then learns
  the GNN's errors on items it never saw, not on items it fitted (stacking). ``targets: gnn_holdout_next``
  takes the same targets with the items before them as history, for a holdout of each user's latest pairs
  (``--gnn-holdout-order latest``): the next items after those the GNN learnt from, as under leave-one-out.
* **explanation** (``prompts/explanation.yaml``): the same construction for one item; the answer cites
  the item's real evidence by number: ``"<title> is recommended because <evidence 1> [1]; and <evidence 2> [2]."``,
  so it passes :func:`kerec.explain.check`.

Every sample also carries what the graph soft prompt reads: the user index, the candidate item indices in
letter order and the KG-node rows of the retrieved facts. Everything is drawn from one
``numpy.random.Generator`` seeded with :attr:`DataConfig.seed`: the same inputs give the same samples.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from kerec.data.history import training_histories
from kerec.finetune.errors import FinetuneError
from kerec.finetune.graph_features import FactIndexer, FactRow, cached_fact_scorer, require_knowledge_retriever
from kerec.finetune.prompt_inputs import compact_ranking_inputs
from kerec.kg.evidence import Evidence, EvidenceBuilder
from kerec.kg.store import GraphStore
from kerec.prompting import LETTERS, explanation_inputs, load_prompt, ranking_inputs

if TYPE_CHECKING:
    from kerec.gnn.graph import TrainingGraph
    from kerec.gnn.models import Retriever
    from kerec.gnn import Prepared

KINDS = ("ranking", "explanation")
RANKING_PROMPTS = ("ranking", "ranking-compact")
TARGETS = ("train", "gnn_holdout", "gnn_holdout_next")


@dataclass(frozen=True)
class DataConfig:
    """Sizes and prompt shape of the instruction data (the ``data:`` section of a recipe).

    ``hard_negatives``: how many of the ``candidates − 1`` negatives come from the GNN's top
    ``hard_pool`` unseen items (needs a retriever); the rest are uniform. ``max_facts``: retrieved facts
    per sample handed to the soft prompt (best evidence first). ``prompt``: the ranking template, one of
    :data:`RANKING_PROMPTS`; ``candidate_titles``: whether the compact prompt names the candidates (the
    full one always does); ``history_in_prompt``: the most recent history titles shown (0: none).
    ``targets``: which training pairs become samples — ``train`` (every one, history the items before it) or
    ``gnn_holdout`` (only those the retriever's GNN was kept from, history all the user's other items) or
    ``gnn_holdout_next`` (those, history the items before each)."""

    ranking_samples: int = 2000
    explanation_samples: int = 200
    candidates: int = 20
    hard_negatives: int = 0
    hard_pool: int = 100
    history_in_prompt: int = 10
    history_for_evidence: int = 20
    facts_in_prompt: int = 1
    evidence_per_item: int = 5
    explanation_evidence: int = 2
    max_facts: int = 64
    min_history: int = 1
    prompt: str = "ranking"
    candidate_titles: bool = True
    targets: str = "train"
    seed: int = 2020

    def __post_init__(self) -> None:
        from kerec.finetune.errors import RecipeError

        if not 2 <= self.candidates <= len(LETTERS):
            raise RecipeError(f"data.candidates must be between 2 and {len(LETTERS)}, got {self.candidates}")
        if not 0 <= self.hard_negatives <= self.candidates - 1:
            raise RecipeError(f"data.hard_negatives must be between 0 and candidates - 1 = {self.candidates - 1}, "
                              f"got {self.hard_negatives}")
        for name in ("ranking_samples", "explanation_samples", "facts_in_prompt", "max_facts", "history_in_prompt"):
            if getattr(self, name) < 0:
                raise RecipeError(f"data.{name} must be >= 0, got {getattr(self, name)}")
        if self.targets not in TARGETS:
            raise RecipeError(f"data.targets must be one of {', '.join(TARGETS)}, got {self.targets!r}")
        if self.prompt not in RANKING_PROMPTS:
            raise RecipeError(f"data.prompt must be one of {', '.join(RANKING_PROMPTS)}, got {self.prompt!r}")
        if not self.candidate_titles and self.prompt != "ranking-compact":
            raise RecipeError("data.candidate_titles: false needs data.prompt 'ranking-compact' "
                              "(the full ranking prompt always shows the candidates' titles)")
        for name in ("hard_pool", "history_for_evidence", "evidence_per_item",
                     "explanation_evidence", "min_history"):
            if getattr(self, name) < 1:
                raise RecipeError(f"data.{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class InstructionSample:
    """One chat prompt with its answer and the GNN inputs of its soft prompt.

    ``items``: candidate item indices in letter order (ranking) or ``(target,)`` (explanation);
    ``facts``: KG-node rows ``(head, relation, tail)`` of the retrieved evidence, best first, shape (F, 3);
    ``history``: the user's training items before ``target`` (with ``targets: gnn_holdout``: all but ``target``),
    oldest first (all of them, not only those shown).
    """

    kind: str
    user: int
    target: int
    history: tuple[int, ...]
    items: tuple[int, ...]
    facts: tuple[FactRow, ...]
    messages: list[dict[str, str]]
    answer: str
    cited: tuple[int, ...] = ()  # explanation: the evidence numbers the answer cites
    evidence: tuple[Evidence, ...] = field(default=(), repr=False, compare=False)  # explanation: numbered [1]..

    @property
    def answer_index(self) -> int:
        """Ranking: the position of the target among the candidates (its letter's index)."""
        return self.items.index(self.target)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready), without the evidence objects."""
        out = asdict(self)
        out.pop("evidence")
        return out


@dataclass(frozen=True)
class PromptParts:
    """A rendered prompt before its answer: chat messages, evidence per candidate and the facts' rows."""

    messages: list[dict[str, str]]
    evidence: dict[int, list[Evidence]]
    facts: tuple[FactRow, ...]


class InstructionBuilder:
    """Builds samples for ``prepared`` (its training split only) with evidence from ``store`` (holding the
    same dataset). ``model``/``graph``: a trained :class:`~kerec.gnn.models.KnowledgeRetriever` and its
    graph, for GNN-scored evidence and hard negatives; without them evidence uses the degree prior.
    ``profile_tokens``: the user's soft-token placeholders in the compact prompt (the projector's
    ``graph_tokens``; unused by the full prompt)."""

    def __init__(self, prepared: Prepared, store: GraphStore, config: DataConfig = DataConfig(), *,
                 model: Retriever | None = None, graph: TrainingGraph | None = None, profile_tokens: int = 0) -> None:
        self.prepared, self.store, self.config, self.profile_tokens = prepared, store, config, profile_tokens
        self.dataset = prepared.dataset
        self.evidence = EvidenceBuilder(store)
        self.indexer = FactIndexer({label: store.node_index(label) for label in ("Item", "Entity")},
                                   prepared.graph_kg.relations, self.dataset.num_items)
        self.ranking_prompt, self.explanation_prompt = load_prompt(config.prompt), load_prompt("explanation")
        self.history = training_histories(prepared.dataset, prepared.split.train)
        self.seen = {u: set(items) for u, items in self.history.items()}
        self.pool = np.flatnonzero(prepared.allowed_items)
        self._scorer, self._scores = None, None
        if model is not None:
            if graph is None:
                raise FinetuneError("InstructionBuilder: pass the retriever's graph with its model")
            factory, emb = cached_fact_scorer(require_knowledge_retriever(model), graph, self.indexer)
            self._scorer, self._scores = factory, emb
        if config.targets != "train" and prepared.gnn_holdout is None:
            raise FinetuneError(f"data.targets: {config.targets} needs a retriever trained with a GNN holdout "
                                "(`kerec train retriever --gnn-holdout 0.1`); this one learnt from every training pair")
        if config.hard_negatives and model is None:
            raise FinetuneError("data.hard_negatives needs a trained retriever (retriever.checkpoint or pretraining)")

    # ------------------------------------------------------------------ public
    def build(self, *, progress: bool = True) -> list[InstructionSample]:
        """``ranking_samples`` ranking samples, then ``explanation_samples`` explanation samples."""
        rng = np.random.default_rng(self.config.seed)
        targets = self._targets(rng)
        if not targets:
            raise FinetuneError(f"no training interaction has {self.config.min_history} other training item(s) "
                                "to serve as history; lower data.min_history")
        out: list[InstructionSample] = []
        picks = rng.permutation(len(targets))
        ranking = picks[: self.config.ranking_samples]
        for n in tqdm(ranking, desc="ranking samples", disable=not progress):
            out.append(self.ranking_sample(*targets[n], rng))
        # Explanations: further targets with evidence, cycling through the shuffled pool once.
        wanted, tried = self.config.explanation_samples, 0
        bar = tqdm(total=wanted, desc="explanation samples", disable=not progress or wanted == 0)
        order = np.concatenate([picks[self.config.ranking_samples:], picks[: self.config.ranking_samples]])
        while wanted and tried < len(order):
            sample = self.explanation_sample(*targets[order[tried]])
            tried += 1
            if sample is not None:
                out.append(sample)
                wanted -= 1
                bar.update()
        bar.close()
        return out

    def ranking_sample(self, user: int, position: int, rng: np.random.Generator) -> InstructionSample:
        """The ranking sample of the user's ``position``-th training item (time order)."""
        target, history = self._target(user, position)
        negatives = self.negatives(user, self.config.candidates - 1, rng)
        candidates = [target, *negatives]
        rng.shuffle(candidates)
        parts = self.ranking_parts(user, history, candidates)
        letter = LETTERS[candidates.index(target)]
        return InstructionSample("ranking", user, target, tuple(history), tuple(candidates), parts.facts,
                                 parts.messages, letter)

    def explanation_sample(self, user: int, position: int) -> InstructionSample | None:
        """The explanation sample of the user's ``position``-th training item, or None without evidence."""
        target, history = self._target(user, position)
        evidence = self._evidence(user, history, [target])[target][: self.config.evidence_per_item]
        if not evidence:
            return None
        title = self.dataset.item_title(target)
        messages = self.explanation_prompt.messages(
            **explanation_inputs(title, [(str(n), e.text) for n, e in enumerate(evidence, 1)]))
        cited = evidence[: self.config.explanation_evidence]
        answer = f"{title} is recommended because " + "; and ".join(
            f"{e.text} [{n}]" for n, e in enumerate(cited, 1)) + "."
        return InstructionSample("explanation", user, target, tuple(history), (target,), self._rows(evidence),
                                 messages, answer, tuple(range(1, len(cited) + 1)), tuple(evidence))

    def ranking_parts(self, user: int, history: Sequence[int], candidates: Sequence[int], *,
                      facts: int | None = None) -> PromptParts:
        """The ranking prompt for ``history`` (item indices, oldest first) and ``candidates`` in letter
        order — also how the evaluation hook renders held-out cases. ``facts``: the best facts per candidate
        shown as text; None: as tuned (``data.facts_in_prompt`` for the full prompt, none for the compact
        one). The compact prompt with facts also names its candidates, since the facts name titles."""
        evidence = self._evidence(user, history, candidates)
        shown_history = history[max(0, len(history) - self.config.history_in_prompt):]  # [-0:] would be all
        titles = [self.dataset.item_title(i) for i in shown_history]
        names = [self.dataset.item_title(i) for i in candidates]
        compact = self.config.prompt == "ranking-compact"
        per_item = (0 if compact else self.config.facts_in_prompt) if facts is None else facts
        if per_item < 0:
            raise FinetuneError(f"facts per candidate must be >= 0, got {per_item}")
        shown = [e for i in candidates for e in evidence[i][:per_item]]
        lines = [(str(n), e.text) for n, e in enumerate(shown, 1)]
        if compact:
            inputs = compact_ranking_inputs(titles, names, profile_tokens=self.profile_tokens,
                                            titles=self.config.candidate_titles or bool(lines), facts=lines)
        else:
            inputs = ranking_inputs(titles, names, lines)
        messages = self.ranking_prompt.messages(**inputs)
        best_first = sorted((e for i in candidates for e in evidence[i]), key=lambda e: -e.score)
        return PromptParts(messages, evidence, self._rows(best_first))

    def negatives(self, user: int, count: int, rng: np.random.Generator) -> list[int]:
        """``count`` distinct recommendable items outside the user's training items: up to
        ``hard_negatives`` drawn from the GNN's top ``hard_pool``, the rest uniform."""
        seen = self.seen.get(user, set())
        if self.pool.size - len(seen & set(self.pool.tolist())) < count:
            raise FinetuneError(f"user {self.dataset.users.external(user)!r} has fewer than {count} unseen items "
                                "to draw negatives from; lower data.candidates")
        chosen: list[int] = []
        if self.config.hard_negatives and self._scores is not None:
            scores = self._scores.scores(torch.tensor([user]))[0].numpy()  # with the item head, if fitted
            ranked = [int(i) for i in np.argsort(-scores[self.pool], kind="stable")]
            top = [int(self.pool[i]) for i in ranked if int(self.pool[i]) not in seen][: self.config.hard_pool]
            take = min(self.config.hard_negatives, len(top))
            chosen = [top[i] for i in sorted(rng.choice(len(top), size=take, replace=False))]
        taken = set(chosen)
        while len(chosen) < count:
            item = int(self.pool[rng.integers(self.pool.size)])
            if item not in seen and item not in taken:
                chosen.append(item)
                taken.add(item)
        return chosen

    # ------------------------------------------------------------------ helpers
    def _targets(self, rng: np.random.Generator) -> list[tuple[int, int]]:
        del rng  # the order of eligible targets is fixed; the builder shuffles it
        if self.config.targets != "train":
            held = {(int(u), int(i)) for u, i in self.prepared.gnn_holdout}
            return [(u, p) for u, items in sorted(self.history.items()) if len(items) > self.config.min_history
                    for p, i in enumerate(items)
                    if (u, i) in held and (self.config.targets == "gnn_holdout" or p >= self.config.min_history)]
        return [(u, p) for u, items in sorted(self.history.items())
                for p in range(self.config.min_history, len(items))]

    def _target(self, user: int, position: int) -> tuple[int, list[int]]:
        """The user's ``position``-th training item and its history: the items before it, or with
        ``targets: gnn_holdout`` all the user's other training items (a test item's history; a repeated
        target's other interactions too, as the GNN was kept from all of them); ``gnn_holdout_next``: the
        items before it."""
        items = self.history[user]
        if self.config.targets == "gnn_holdout":
            return items[position], [i for i in items if i != items[position]]
        return items[position], items[:position]

    def _evidence(self, user: int, history: Sequence[int], candidates: Sequence[int]) -> dict[int, list[Evidence]]:
        ext = self.dataset.items.external
        recent = [ext(i) for i in history[-self.config.history_for_evidence:]]
        ids = [ext(i) for i in candidates]
        scorer = self._scorer(user) if self._scorer is not None else None
        ranked = self.evidence.best(recent, ids, scorer, top=self.config.evidence_per_item)
        return {i: ranked[ext(i)] for i in candidates}

    def _rows(self, evidence: Sequence[Evidence]) -> tuple[FactRow, ...]:
        rows: dict[FactRow, None] = {}
        for e in evidence:
            for row in self.indexer.rows(e.facts):
                if row is not None:
                    rows.setdefault(row)
            if len(rows) >= self.config.max_facts:
                break
        return tuple(list(rows)[: self.config.max_facts])
