"""The retriever systems of an evaluation: settings per system, training with a cache, scoring functions.

A trained retriever is cached under ``<work>/retrievers/<system>-seed<seed>-<hash>/`` (checkpoint,
TensorBoard events, a JSON record of the training), the hash taken over everything that determines it
(dataset and split, model and training settings, seed, training regime), so a resumed or repeated run
reuses it and the LLM protocols load the very same model.
"""
from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kerec.eval.config import RETRIEVER_SYSTEMS, UNTRAINED, EvalConfig, dataset_key, digest

ScoreFn = Callable[[np.ndarray], torch.Tensor]
REGIME_KINDS = ("cold_items", "keep", "cold_users")


@dataclass(frozen=True)
class Regime:
    """How a system's training data differ from the split's (None: they do not). ``cold_items``: a share
    ``value`` of the items set aside with all their pairs (drawn with the split seed); ``keep``: each user's
    training pairs thinned to the share ``value`` (drawn with the training seed); ``cold_users``: a share
    ``users`` of the test users left with ``value`` training pairs each (drawn with the split seed, so the
    same users are compared at every training seed). Thinned and cold-user pairs are held back from every
    model (:attr:`kerec.gnn.pipeline.Prepared.gnn_holdout`), masked as seen; valid and test stay as they are."""

    kind: str
    value: float
    users: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in REGIME_KINDS:
            raise ValueError(f"unknown regime {self.kind!r}; valid: {', '.join(REGIME_KINDS)}")

    @property
    def tag(self) -> str:
        return {"cold_items": "cold-", "keep": f"keep{self.value:g}-",
                "cold_users": f"coldusers{self.value:g}of{self.users:g}-"}[self.kind]

    @property
    def label(self) -> str:
        return {"cold_items": "cold-start split", "keep": f"{self.value:.0%} of training",
                "cold_users": f"{self.users:.0%} of users cold"}[self.kind]


@dataclass
class Trained:
    """One system at one seed, ready to score. ``model``/``graph``/``embeddings`` are None for pop/random."""

    system: str
    seed: int
    prepared: Any  # kerec.gnn.pipeline.Prepared
    model: Any = None
    graph: Any = None
    embeddings: Any = None
    checkpoint: Path | None = None
    record: dict[str, Any] = field(default_factory=dict)

    def scores(self, users: np.ndarray) -> torch.Tensor:
        """shape: (len(users), I), float; items that cannot be recommended score -inf."""
        return score_fn(self)(users)


def settings(config: EvalConfig, system: str) -> tuple[Any, Any]:
    """The (RetrieverSpec, TrainConfig) a trained system starts from, seed not yet set."""
    from kerec.gnn.train import TrainConfig
    from kerec.gnn import RetrieverSpec, load_config, system_settings

    spec, train = load_config(config.retriever.base) if config.retriever.base else (RetrieverSpec(), TrainConfig())
    spec = replace(spec, **config.retriever.model)
    train = replace(train, **{**config.retriever.train, **config.retriever.system_train.get(system, {})})
    return system_settings(spec, train, *RETRIEVER_SYSTEMS[system])


def train_key(config: EvalConfig, system: str, seed: int, regime: Regime | None = None) -> dict[str, Any]:
    key: dict[str, Any] = {"dataset": dataset_key(config), "system": system, "seed": seed}
    if system not in UNTRAINED:
        spec, train = settings(config, system)
        spec_key = asdict(spec)
        if not spec_key["use_social"]:  # added later: models trained before it keep their cached key
            del spec_key["use_social"]
        key.update(spec=spec_key, train=train.to_dict())
    if regime is not None and regime.kind == "cold_items":
        key["cold_fraction"] = regime.value  # as before regimes, so cached cold-start models stay valid
    elif regime is not None:
        key["regime"] = asdict(regime)
    return key


class Systems:
    """Prepared data and trained systems of one evaluation, loaded or trained once each."""

    def __init__(self, config: EvalConfig, work: Path, *, progress: bool = True) -> None:
        self.config, self.work, self.progress = config, Path(work), progress
        self._prepared: dict[tuple[Regime | None, int | None], Any] = {}
        self.trained: dict[tuple[str, int, Regime | None], Trained] = {}
        self._text: np.ndarray | None = None

    def prepared(self, regime: Regime | None = None, seed: int | None = None) -> Any:
        """The split a system trains on: the config's, or under ``regime`` (``seed`` draws its held-back pairs)."""
        from kerec.gnn import prepare

        # thinned pairs are drawn per training seed; cold users once (the split seed), so that the same users
        # are compared across seeds
        key = (regime, seed if regime is not None and regime.kind == "keep" else None)
        if key not in self._prepared:
            ds = self.config.dataset
            if regime is None or regime.kind == "cold_items":
                self._prepared[key] = prepare(ds.folder, format=ds.format, split=ds.split, seed=ds.split_seed,
                                              linked_only=ds.linked_only,
                                              cold_fraction=regime.value if regime is not None else None)
            else:
                draw = seed if regime.kind == "keep" else ds.split_seed
                self._prepared[key] = replace(self.prepared(), gnn_holdout=held_back(self.prepared(), regime, draw or 0))
        return self._prepared[key]

    def text(self) -> np.ndarray:
        from kerec.gnn import item_text_vectors

        if self._text is None:
            self._text = item_text_vectors(self.prepared().dataset, progress=self.progress)
        return self._text

    def folder(self, system: str, seed: int, regime: Regime | None = None) -> Path:
        tag = regime.tag if regime is not None else ""
        return self.work / "retrievers" / f"{tag}{system}-seed{seed}-{digest(train_key(self.config, system, seed, regime))}"

    def is_cached(self, system: str, seed: int, regime: Regime | None = None) -> bool:
        folder = self.folder(system, seed, regime)
        return system in UNTRAINED or ((folder / "record.json").is_file() and (folder / "retriever.pt").is_file())

    def get(self, system: str, seed: int, regime: Regime | None = None) -> Trained:
        """The system trained at ``seed`` (from the cache when there), best validation epoch."""
        key = (system, seed, regime)
        if key not in self.trained:
            self.trained[key] = self._load_or_train(system, seed, regime)
        return self.trained[key]

    def _load_or_train(self, system: str, seed: int, regime: Regime | None) -> Trained:
        prepared = self.prepared(regime, seed)
        if system in UNTRAINED:
            return Trained(system, seed, prepared)
        from kerec.gnn.checkpoint import Checkpoint
        from kerec.gnn import load_retriever, make_checkpoint, train_retriever

        folder = self.folder(system, seed, regime)
        ckpt_path, record_path = folder / "retriever.pt", folder / "record.json"
        if self.is_cached(system, seed, regime):
            model, graph = load_retriever(Checkpoint.load(ckpt_path), prepared)
            record = json.loads(record_path.read_text(encoding="utf-8"))
        else:
            spec, train = settings(self.config, system)
            train = replace(train, seed=seed)
            text = self.text() if spec.model == "kerec" and spec.use_text else None
            if self.progress:
                print(f"[eval] training {system} seed {seed}" + (f" ({regime.label})" if regime else ""), flush=True)
            started = time.perf_counter()
            model, graph, state = train_retriever(prepared, spec, train, item_text=text,
                                                  log_dir=str(folder / "tensorboard"), progress=self.progress)
            fit = time.perf_counter() - started
            seconds = [h.seconds for h in state.history]
            record = {"system": system, "seed": seed, "best_epoch": state.best_epoch, "epochs_run": len(state.history),
                      "seconds_per_epoch_median": statistics.median(seconds) if seconds else 0.0,
                      "fit_seconds": fit, "tensorboard": str(folder / "tensorboard"),
                      "valid": state.history[state.best_epoch - 1].valid if state.best_epoch > 0 else {},
                      "spec": asdict(spec), "train": train.to_dict(), "item_head": state.post.get("item_head")}
            folder.mkdir(parents=True, exist_ok=True)
            make_checkpoint(model, graph, prepared, spec, train, state).save(ckpt_path)
            record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")  # last: marks it complete
        model.eval()
        with torch.no_grad():
            emb = model(graph)
        return Trained(system, seed, prepared, model, graph, emb, ckpt_path, record)


def cold_users(prepared: Any, regime: Regime, seed: int) -> np.ndarray:
    """shape: (n,) — the test users a ``cold_users`` regime makes cold at ``seed``, ascending."""
    users = np.unique(prepared.split.test[:, 0])
    count = max(1, int(round(regime.users * users.size)))
    return np.sort(np.random.default_rng([seed, 6]).choice(users, size=count, replace=False))


def held_back(prepared: Any, regime: Regime, seed: int) -> np.ndarray:
    """shape: (n, 2) — the training pairs no model of ``regime`` learns from at ``seed`` (``keep`` or ``cold_users``)."""
    from kerec.data import cold_user_holdout, gnn_holdout

    train = prepared.split.train
    if regime.kind == "keep":
        return gnn_holdout(train, fraction=1.0 - regime.value, seed=seed)
    if regime.kind == "cold_users":
        return cold_user_holdout(train, cold_users(prepared, regime, seed), keep=int(regime.value), seed=seed)
    raise ValueError(f"regime {regime.kind!r} holds back no training pairs")


def regimes(config: EvalConfig) -> list[tuple[Regime, tuple[str, ...], tuple[int, ...]]]:
    """Every training regime the config's protocols need: (regime, systems, seeds); full data not included."""
    prot, out = config.protocols, []
    if prot.cold_start is not None:
        out.append((Regime("cold_items", prot.cold_start.fraction), prot.cold_start.systems,
                    config.seeds[: prot.cold_start.seeds]))
    if prot.sparsity is not None:
        out += [(Regime("keep", f), prot.sparsity.systems, config.seeds) for f in prot.sparsity.keep if f < 1]
    if prot.cold_users is not None:
        out.append((Regime("cold_users", prot.cold_users.keep, prot.cold_users.users), prot.cold_users.systems,
                    config.seeds))
    return out


def trainings(config: EvalConfig) -> list[tuple[str, int, Regime | None]]:
    """Every (system, seed, regime) the config trains, kerec's models (the slowest) first, the compared pair
    (``significance.a``/``b``) first among them."""
    jobs: list[tuple[str, int, Regime | None]] = []
    for seed in config.seeds:
        jobs += [(s, seed, None) for s in config.retriever_systems if s not in UNTRAINED]
    if config.protocols.candidates is not None:
        jobs += [(config.protocols.candidates.retriever, seed, None) for seed in config.seeds]
    full_data = [(p.systems, config.seeds) for p in (config.protocols.long_tail,) if p is not None]
    if config.protocols.sparsity is not None and 1.0 in config.protocols.sparsity.keep:
        full_data.append((config.protocols.sparsity.systems, config.seeds))
    for systems, seeds in full_data:
        jobs += [(s, seed, None) for seed in seeds for s in systems if s not in UNTRAINED]
    for regime, systems, seeds in regimes(config):
        jobs += [(s, seed, regime) for seed in seeds for s in systems if s not in UNTRAINED]
    unique = list(dict.fromkeys(jobs))
    kerec = {s for s, _, _ in unique if settings(config, s)[0].model == "kerec"}
    # the slowest first; of those, the significance pair (the KG gain) first, so a run cut short has it
    pair = {config.significance.a, config.significance.b}
    return sorted(unique, key=lambda job: (job[0] not in kerec, job[0] not in pair))  # stable: config order within


def pretrain(config: EvalConfig, work: Path, *, progress: bool = True) -> None:
    """Train the config's retrievers that are not cached yet, ``config.workers`` at a time, each in a
    fresh process with ``config.threads`` torch threads; the evaluation then loads them from the cache.
    With one worker (or one job) nothing happens here: :meth:`Systems.get` trains them in turn."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    systems = Systems(config, work, progress=progress)
    todo = [job for job in trainings(config) if not systems.is_cached(*job)]
    if config.workers < 2 or len(todo) < 2:
        return
    specs = {s: settings(config, s)[0] for s in {job[0] for job in todo}}
    if any(spec.model == "kerec" and spec.use_text for spec in specs.values()):
        systems.text()  # once, into the on-disk cache, before the workers start
    pool = ProcessPoolExecutor(max_workers=min(config.workers, len(todo)), mp_context=multiprocessing.get_context("spawn"))
    with pool:
        futures = {pool.submit(_train_one, config, str(work), *job): job for job in todo}
        bar = tqdm(total=len(todo), desc=f"training retrievers ({config.workers} workers)", unit="model", disable=not progress)
        for done in as_completed(futures):
            system, seed, regime = futures[done]
            fit = done.result()  # a failed training raises here, with the worker's traceback
            bar.set_postfix_str(f"{regime.tag if regime else ''}{system} seed {seed}: {fit:.0f} s", refresh=False)
            bar.update()
        bar.close()


def _train_one(config: EvalConfig, work: str, system: str, seed: int, regime: Regime | None) -> float:
    torch.set_num_threads(config.threads)
    return Systems(config, Path(work), progress=False).get(system, seed, regime).record.get("fit_seconds", 0.0)


def score_fn(trained: Trained) -> ScoreFn:
    """Scores of every item for a batch of user indices; not-recommendable items -inf. "random" draws
    one seeded uniform row per (seed, user), so a user's scores do not depend on the batch."""
    from kerec.data.history import popularity_scores

    prepared = trained.prepared
    allowed = torch.from_numpy(prepared.allowed_items)
    n_items = prepared.dataset.num_items
    if trained.system == "pop":
        counts = popularity_scores(prepared.gnn_train, n_items)  # held-back pairs (regimes) are not counted

        def pop(users: np.ndarray) -> torch.Tensor:
            return counts.expand(len(users), -1).masked_fill(~allowed, float("-inf"))
        return pop
    if trained.system == "random":
        def rand(users: np.ndarray) -> torch.Tensor:
            rows = [torch.rand(n_items, generator=torch.Generator().manual_seed(trained.seed * 1_000_003 + int(u)))
                    for u in users]
            return torch.stack(rows).masked_fill(~allowed, float("-inf"))
        return rand
    emb = trained.embeddings

    def model(users: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return emb.scores(torch.as_tensor(users, dtype=torch.long)).masked_fill(~allowed, float("-inf"))
    return model
