"""Wiring of the retriever stage: data → graph store → (text) → GNN training → full-ranking evaluation.

This module joins stages (as ``api.py`` and ``finetune`` do); the stages themselves do not import each
other beyond the one-way order in DESIGN.md. Model selection uses the validation split; the test split
is evaluated once, by :func:`evaluate_retriever`.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from kerec.data import (ColdStartSplit, Dataset, KerecError, Split, cold_start_split, gnn_holdout, leave_one_out,
                        load_dataset, load_split, random_split, without_pairs)
from kerec.data.history import pair_timestamps, popularity_scores
from kerec.metrics import RankingResult, evaluate_full_ranking
from kerec.gnn.checkpoint import Checkpoint, versions
from kerec.gnn.distributed import DistContext
from kerec.gnn.graph import TrainingGraph, build_training_graph
from kerec.gnn.item_head import HeadTerm, ease_weights, interaction_matrix, item_gram, on_support, popular_support
from kerec.gnn.models import MODELS, Embeddings, KnowledgeRetriever, Retriever, build_model
from kerec.gnn.train import TrainConfig, TensorBoardLogger, TrainState, train
from kerec.kg import CKGTensors, ckg_tensors
from kerec.kg.evidence import FactScorer
from kerec.kg.model import Fact

SPLITS = ("random", "loo")


@dataclass(frozen=True)
class RetrieverSpec:
    """The model and what it sees. ``model``: one of :data:`~kerec.gnn.models.MODELS` or ``"pop"``."""

    model: str = "kerec"
    embedding_dim: int = 64
    num_layers: int = 2
    kg_layers: int = 1
    use_kg: bool = True
    use_text: bool = True
    item_head: bool = False  # kerec only: fuse the closed-form item–item head (kerec.gnn.item_head) after training
    use_social: bool = False  # kerec only: friends' links (.net) join the user–item propagation graph

    def __post_init__(self) -> None:
        if self.model not in MODELS + ("pop",):
            raise KerecError(f"unknown retriever {self.model!r}; choose one of {', '.join(MODELS + ('pop',))}")
        if self.item_head and self.model != "kerec":
            raise KerecError(f"item_head is part of kerec's retriever; the {self.model!r} baseline runs without it")
        if self.use_social and self.model != "kerec":
            raise KerecError(f"use_social is part of kerec's retriever; the {self.model!r} baseline runs without it")


def default_settings(model: str = "kerec") -> tuple[RetrieverSpec, TrainConfig]:
    """What ``kerec train retriever`` trains without a config: for kerec the settings chosen on validation
    (``eval/configs/retriever-head.yaml``: full-catalogue softmax at temperature 0.5 and the item head);
    for a baseline, BPR with the shared defaults."""
    if model == "kerec":
        return RetrieverSpec(item_head=True), TrainConfig(loss="full", temperature=0.5)
    return RetrieverSpec(model=model), TrainConfig()


def system_settings(spec: RetrieverSpec, config: TrainConfig, spec_overrides: Mapping[str, object],
                    train_overrides: Mapping[str, object]) -> tuple[RetrieverSpec, TrainConfig]:
    """A benchmark system's settings: the shared ``spec``/``config`` with the system's overrides. Baselines
    (any model but kerec) keep the shared optimiser settings but none of kerec's own parts (L_K, L_A, the
    item head, a softmax L_R): they train with BPR, as published."""
    model = spec_overrides.get("model", spec.model)
    kerec_only = {} if model == "kerec" else {"item_head": False}
    spec = replace(spec, **{**kerec_only, **spec_overrides})
    config = replace(config, **train_overrides)
    if spec.model != "kerec":
        config = replace(config, lambda_k=0.0, lambda_a=0.0, loss="bpr", negatives=1, temperature=1.0)
    return spec, config


@dataclass(frozen=True)
class Prepared:
    """A dataset with its split, KG tensors and item mask, ready for any retriever."""

    dataset: Dataset
    split: Split
    graph_kg: CKGTensors  # the KG as a store exports it (kerec.kg.ckg_tensors); build_training_graph adds the training pairs
    allowed_items: np.ndarray  # (I,) bool — items that can be recommended (all, or KG-linked only)
    linked_only: bool = False
    cold: ColdStartSplit | None = None  # with a cold-start slice: its items are outside allowed_items
    # Training pairs the GNN does not learn from (None: it learns from all), kept for tuning an LLM on targets
    # the GNN never saw; they stay in split.train, so they are masked as seen and shown as history.
    gnn_holdout: np.ndarray | None = None

    @property
    def gnn_train(self) -> np.ndarray:
        """shape: (n, 2) — the training pairs the GNN learns from: ``split.train`` without ``gnn_holdout``."""
        if self.gnn_holdout is None:
            return self.split.train
        return without_pairs(self.split.train, self.gnn_holdout)


def prepare(data: str | None = None, *, format: str = "auto", split: str = "random", seed: int = 2020,
            linked_only: bool = True, cold_fraction: float | None = None,
            gnn_holdout_fraction: float | None = None, gnn_holdout_order: str = "random") -> Prepared:
    """Load a dataset and split it. ``split``: "random" (per-user 8:1:1 with ``seed``), "loo", or a folder
    of ``train.tsv``/``valid.tsv``/``test.tsv``. ``linked_only`` keeps interactions with KG-linked items
    and ranks only those items (RecBole's KG-model protocol, the anchors' protocol). ``cold_fraction``
    sets that share of items aside with all their interactions (see :func:`evaluate_cold_start`).
    ``gnn_holdout_fraction`` keeps that share of each user's training pairs from the GNN
    (:attr:`Prepared.gnn_holdout`): drawn with the seed (``gnn_holdout_order="random"``) or each user's
    latest by timestamp (``"latest"``, for leave-one-out)."""
    ds = load_dataset(data, format=format)
    if linked_only:
        ds = ds.with_linked_items_only()
    if split == "random":
        parts = random_split(ds, seed=seed)
    elif split == "loo":
        parts = leave_one_out(ds)
    elif Path(split).is_dir():
        parts = load_split(ds, split)
    else:
        raise KerecError(f"unknown split {split!r}: use 'random', 'loo' or a folder with train/valid/test.tsv")
    allowed = ds.item_entity >= 0 if linked_only else np.ones(ds.num_items, dtype=bool)
    cold = None
    if cold_fraction is not None:
        cold = cold_start_split(parts, ds.num_items, fraction=cold_fraction, seed=seed)
        parts = cold.warm
        allowed = allowed.copy()
        allowed[cold.cold_items] = False
    if gnn_holdout_order not in ("random", "latest"):
        raise KerecError(f"unknown gnn holdout order {gnn_holdout_order!r}: use 'random' or 'latest'")
    holdout = None
    if gnn_holdout_fraction is not None:
        when = pair_timestamps(ds, parts.train) if gnn_holdout_order == "latest" else None
        holdout = gnn_holdout(parts.train, fraction=gnn_holdout_fraction, seed=seed, when=when)
    return Prepared(ds, parts, ckg_tensors(ds), allowed, linked_only, cold, holdout)


def item_text_vectors(dataset: Dataset, *, model: str = "default", progress: bool = True) -> np.ndarray:
    """shape: (I, D) — cached text vectors of every item (see :mod:`kerec.text`)."""
    from kerec.text import SentenceTransformerEncoder, encode_cached, item_texts

    return encode_cached(SentenceTransformerEncoder(model), item_texts(dataset), progress=progress)


def _masked_scores(emb: Embeddings, allowed: torch.Tensor):  # noqa: ANN202 - returns a closure
    def score(users: torch.Tensor) -> torch.Tensor:
        s = emb.scores(users)
        return s.masked_fill(~allowed, float("-inf"))
    return score


def evaluate_embeddings(emb: Embeddings, prepared: Prepared, part: str, *, keep_per_user: bool = False) -> RankingResult:
    """Full ranking on ``part`` ("valid" masks train items; "test" masks train and valid items)."""
    split = prepared.split
    exclude = [split.train] if part == "valid" else [split.train, split.valid]
    return evaluate_full_ranking(_masked_scores(emb, torch.from_numpy(prepared.allowed_items)),
                                 num_users=prepared.dataset.num_users, num_items=prepared.dataset.num_items,
                                 target=split.part(part), exclude=exclude, keep_per_user=keep_per_user)


def popularity(prepared: Prepared, part: str) -> RankingResult:
    """The popularity baseline: items ranked by training interaction counts (ties by lower index)."""
    counts = popularity_scores(prepared.split.train, prepared.dataset.num_items)
    ones = torch.ones(prepared.dataset.num_users, 1)
    return evaluate_embeddings(Embeddings(ones, counts.unsqueeze(1)), prepared, part)


def build_graph(prepared: Prepared, spec: RetrieverSpec, item_text: np.ndarray | None) -> TrainingGraph:
    try:
        return build_training_graph(prepared.graph_kg, prepared.gnn_train, use_kg=spec.use_kg,
                                    use_social=spec.use_social, item_text=item_text if spec.use_text else None)
    except ValueError as exc:
        raise KerecError(f"dataset {prepared.dataset.name!r}: {exc}") from None


def train_retriever(prepared: Prepared, spec: RetrieverSpec, config: TrainConfig, *,
                    item_text: np.ndarray | None = None, log_dir: str | None = None,
                    progress: bool = True, dist_ctx: DistContext | None = None) -> tuple[Retriever, TrainingGraph, TrainState]:
    """Train ``spec`` with early stopping on validation ``config.select_metric``; the model ends at its
    best validation epoch. The test split is not touched."""
    if spec.model == "pop":
        raise KerecError("the popularity baseline has nothing to train; use popularity()")
    graph = build_graph(prepared, spec, item_text)
    torch.manual_seed(config.seed)  # the initial weights too, so a run is repeatable
    model = _build(spec, graph)
    if spec.model == "ease":  # closed form: no epochs, only the validation choice of λ
        state = TrainState(model, config)
        state.post["item_head"] = fit_item_head(model, graph, prepared, metric=config.select_metric, weights=(1.0,))
        return model, graph, state
    main = dist_ctx is None or dist_ctx.is_main
    callbacks = [TensorBoardLogger(log_dir)] if log_dir and main else []
    state = train(model, graph, config, validate=lambda emb: evaluate_embeddings(emb, prepared, "valid").metrics,
                  callbacks=callbacks, allowed_items=prepared.allowed_items, progress=progress, dist_ctx=dist_ctx)
    if spec.item_head:
        state.post["item_head"] = fit_item_head(model, graph, prepared, metric=config.select_metric)
    return model, graph, state


def _build(spec: RetrieverSpec, graph: TrainingGraph) -> Retriever:
    return build_model(spec.model, graph, embedding_dim=spec.embedding_dim, num_layers=spec.num_layers,
                       kg_layers=spec.kg_layers, use_text=spec.use_text, item_head=spec.item_head)


HEAD_REGS = (50.0, 100.0, 200.0, 400.0, 800.0, 1600.0)
HEAD_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


def fit_item_head(model: Retriever, graph: TrainingGraph, prepared: Prepared, *, metric: str = "ndcg@10",
                  regs: Sequence[float] = HEAD_REGS, weights: Sequence[float] = HEAD_WEIGHTS) -> dict[str, object]:
    """Fit the trained ``model``'s item–item head on the pairs the GNN learns from (:attr:`Prepared.gnn_train`)
    and choose its λ and mix α on the
    validation split (``metric``): λ by the head alone, then α for the head fused with the GNN (α = 0,
    the GNN alone, is a candidate). Leaves the head set in ``model``; returns the search as plain data."""
    head = getattr(model, "head", None)
    if head is None:
        raise KerecError("this retriever was built without item_head")
    started = time.perf_counter()
    head.mix.zero_()
    ds, train_pairs = prepared.dataset, prepared.gnn_train
    model.eval()
    with torch.no_grad():
        emb = model(graph)
    support = popular_support(train_pairs, ds.num_items, len(head.support)) if head.partial else None
    pairs = train_pairs if support is None else on_support(train_pairs, support, ds.num_items)
    size = ds.num_items if support is None else len(support)
    history = interaction_matrix(pairs, ds.num_users, size)
    gram = item_gram(pairs, ds.num_users, size)
    blank = Embeddings(torch.zeros(ds.num_users, 1), torch.zeros(ds.num_items, 1))  # scores 0: the head alone

    def term(b: torch.Tensor, w: float) -> HeadTerm:
        return HeadTerm(history, b, w, support, ds.num_items if support is not None else None)

    def valid(e: Embeddings) -> float:
        return float(evaluate_embeddings(e, prepared, "valid").metrics[metric])

    alone: dict[float, float] = {}
    best_b, best_reg = None, 0.0
    for reg in regs:
        b = ease_weights(gram, reg)
        alone[reg] = valid(Embeddings(blank.users, blank.items, term(b, 1.0)))
        if best_b is None or alone[reg] > alone[best_reg]:
            best_b, best_reg = b, reg
    fused = {w: valid(Embeddings(emb.users, emb.items, term(best_b, w)) if w > 0 else emb)
             for w in sorted({0.0, *weights})}
    mix = max(fused, key=lambda w: (fused[w], -w))  # ties: the smaller weight
    head.set(best_b, mix=mix, reg=best_reg, support=support)
    return {"metric": metric, "reg": best_reg, "weight": mix, "valid_gnn": fused[0.0],
            "support": None if support is None else {"items": size, "train_pairs": len(pairs),
                                                     "pair_share": len(pairs) / max(len(train_pairs), 1)},
            "valid_head_alone": {str(r): v for r, v in alone.items()},
            "valid_fused": {str(w): v for w, v in fused.items()}, "seconds": time.perf_counter() - started}


def fact_scorer(model: Retriever, graph: TrainingGraph, emb: Embeddings, user: int,
                node_index: Mapping[str, Mapping[str, int]], relations: Sequence[str], *,
                knowledge: torch.Tensor | None = None) -> FactScorer | None:
    """The GNN's relevance of KG facts to ``user`` (:meth:`KnowledgeRetriever.fact_scores`), for
    :meth:`~kerec.kg.evidence.EvidenceBuilder.rank`; None for models without fact scores (BPR, LightGCN).
    ``node_index``: label → id → index as in the store's tensor export; ``relations``: its relation names.
    Facts touching users or relations the model never saw score 0. ``knowledge``: the model's
    ``knowledge(graph)`` computed once by a caller scoring many users."""
    if not isinstance(model, KnowledgeRetriever):
        return None
    offsets = {"Item": 0, "Entity": graph.num_items}
    rel_id = {r: i for i, r in enumerate(relations[: graph.num_relations // 2])}

    def score(facts: Sequence[Fact]) -> list[float]:
        rows, keep = [], []
        for n, f in enumerate(facts):
            if f.head.label in offsets and f.tail.label in offsets and f.relation in rel_id:
                rows.append((offsets[f.head.label] + node_index[f.head.label][f.head.id], rel_id[f.relation],
                             offsets[f.tail.label] + node_index[f.tail.label][f.tail.id]))
                keep.append(n)
        out = [0.0] * len(facts)
        if rows:
            with torch.no_grad():
                s = model.fact_scores(graph, emb.users[user: user + 1], torch.tensor(rows), knowledge=knowledge)[0]
            for n, v in zip(keep, s.tolist()):
                out[n] = v
        return out
    return score


def make_checkpoint(model: Retriever, graph: TrainingGraph, prepared: Prepared, spec: RetrieverSpec,
                    config: TrainConfig, state: TrainState) -> Checkpoint:
    ds = prepared.dataset
    seconds = [h.seconds for h in state.history]
    return Checkpoint(
        model=spec.model, model_args=asdict(spec), state_dict=model.state_dict(), train_config=config.to_dict(),
        dataset={"name": ds.name, "fingerprint": ds.fingerprint, "linked_only": prepared.linked_only,
                 "users": list(ds.users.ids),
                 "items": list(ds.items.ids), "entities": list(ds.entities.ids),
                 "item_entity": ds.item_entity.tolist(), "allowed_items": prepared.allowed_items.tolist()},
        split={**{p: torch.from_numpy(prepared.split.part(p)) for p in ("train", "valid", "test")},
               **({"cold_items": torch.from_numpy(prepared.cold.cold_items),
                   "cold_pairs": torch.from_numpy(prepared.cold.cold_pairs)} if prepared.cold else {}),
               **({"gnn_holdout": torch.from_numpy(prepared.gnn_holdout)} if prepared.gnn_holdout is not None else {})},
        item_text=graph.item_text,
        metrics={"best_epoch": state.best_epoch, **state.post,
                 "valid": {k: float(v) for k, v in state.history[state.best_epoch - 1].valid.items()} if state.best_epoch > 0 else {},
                 "epochs_run": len(state.history), "seconds_per_epoch_median": float(np.median(seconds)) if seconds else 0.0},
        versions=versions(),
    )


def load_retriever(checkpoint: Checkpoint, prepared: Prepared) -> tuple[Retriever, TrainingGraph]:
    """Rebuild a trained retriever on the data and split it was trained with."""
    checkpoint.check_dataset(prepared.dataset.fingerprint, prepared.dataset.name)
    spec = RetrieverSpec(**checkpoint.model_args)
    text = checkpoint.item_text.numpy() if checkpoint.item_text is not None else None
    graph = build_graph(prepared, spec, text)
    model = _build(spec, graph)
    try:
        model.load_state_dict(checkpoint.state_dict)
    except RuntimeError as exc:
        from kerec.gnn.checkpoint import CheckpointError

        raise CheckpointError(f"checkpoint weights do not fit the {spec.model!r} model: {str(exc)[:300]}") from None
    model.eval()
    return model, graph


def prepare_from_checkpoint(checkpoint: Checkpoint, data: str | Dataset | None = None, *, format: str = "auto",
                            kg: CKGTensors | None = None) -> Prepared:
    """The dataset a checkpoint was trained on (checked by fingerprint) with the checkpoint's own split.
    ``data``: a dataset folder (None: the embedded one), or the dataset already loaded (KG-linked items only
    when the checkpoint's is); ``kg``: its KG tensors when a caller has them (a store it loaded already)."""
    ds = data if isinstance(data, Dataset) else load_dataset(data, format=format)
    if checkpoint.dataset.get("linked_only") and not isinstance(data, Dataset):
        ds = ds.with_linked_items_only()
    checkpoint.check_dataset(ds.fingerprint, ds.name)
    split = Split(*(checkpoint.split[p].numpy() for p in ("train", "valid", "test")), protocol="from checkpoint")
    allowed = np.asarray(checkpoint.dataset["allowed_items"], dtype=bool)
    cold = None
    if "cold_items" in checkpoint.split:
        cold = ColdStartSplit(split, checkpoint.split["cold_items"].numpy(), checkpoint.split["cold_pairs"].numpy())
    holdout = checkpoint.split["gnn_holdout"].numpy() if "gnn_holdout" in checkpoint.split else None
    return Prepared(ds, split, kg if kg is not None else ckg_tensors(ds), allowed,
                    bool(checkpoint.dataset.get("linked_only")), cold, holdout)


def load_config(path: str | Path) -> tuple[RetrieverSpec, TrainConfig]:
    """A YAML file with optional sections ``model:`` (:class:`RetrieverSpec`) and ``train:``
    (:class:`TrainConfig`); unknown sections or keys are errors."""
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or set(data) - {"model", "train"}:
        raise KerecError(f"{path}: expected a mapping with sections 'model' and/or 'train', got {list(data) if isinstance(data, dict) else type(data).__name__}")
    model = data.get("model") or {}
    unknown = sorted(set(model) - set(RetrieverSpec.__dataclass_fields__))
    if unknown:
        raise KerecError(f"{path}: unknown model key(s) {unknown}; valid keys: {sorted(RetrieverSpec.__dataclass_fields__)}")
    return RetrieverSpec(**model), TrainConfig.from_dict(data.get("train") or {})


def evaluate_cold_start(model: Retriever, graph: TrainingGraph, prepared: Prepared, *,
                        random_draws: int = 20, keep_per_user: bool = False) -> dict[str, RankingResult]:
    """Rank only the cold items for every user who interacted with one, from side information alone:
    the model's ID embeddings of cold items are zeroed first (on a copy), so text and KG carry the score.
    Returns results for "model" (with per-user values when ``keep_per_user``), "popularity" (training counts;
    all zero for cold items, so it reduces to the index tie-break) and "random" (mean of ``random_draws``
    seeded uniform scorings)."""
    if prepared.cold is None:
        raise KerecError("prepare(..., cold_fraction=0.1) first: this split has no cold-start slice")
    import copy

    cold = torch.from_numpy(prepared.cold.cold_items)
    only_cold = torch.zeros(prepared.dataset.num_items, dtype=torch.bool)
    only_cold[cold] = True
    n_users, n_items = prepared.dataset.num_users, prepared.dataset.num_items
    blind = copy.deepcopy(model)
    blind.forget_items(cold)
    with torch.no_grad():
        emb = blind(graph)

    def run(score: object, per_user: bool = False) -> RankingResult:
        return evaluate_full_ranking(score, num_users=n_users, num_items=n_items,  # type: ignore[arg-type]
                                     target=prepared.cold.cold_pairs, ks=(10, 20), keep_per_user=per_user)

    counts = popularity_scores(prepared.split.train, n_items)
    out = {"model": run(_masked_scores(emb, only_cold), keep_per_user),
           "popularity": run(lambda u: counts.expand(len(u), -1).masked_fill(~only_cold, float("-inf")))}
    draws = []
    for seed in range(random_draws):
        gen = torch.Generator().manual_seed(seed)
        draws.append(run(lambda u, g=gen: torch.rand(len(u), n_items, generator=g).masked_fill(~only_cold, float("-inf"))))
    means = {k: float(np.mean([d.metrics[k] for d in draws])) for k in draws[0].metrics}
    out["random"] = RankingResult(means, draws[0].num_users, draws[0].skipped_users)
    return out
