"""Training loop for retrievers: BPR (L_R) + λ_K · KG loss (L_K) in one optimiser, validation-based
early stopping and model selection. Trainer, evaluator and trackers are separate; early stopping,
best-model keeping and logging are callbacks.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from kerec.data import KerecError
from kerec.gnn.graph import TrainingGraph
from kerec.gnn.models import Embeddings, Retriever
from kerec.gnn.distributed import DistContext, Objective, wrap
from kerec.gnn.sampling import NegativeSampler


class TrainingError(KerecError):
    """Training cannot go on (a NaN loss, say); the message names the epoch and step."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 300
    batch_size: int = 4096
    lr: float = 5e-3  # chosen on ml-100k's validation split (1e-3 and 5e-3 tried; see eval/results/retriever/)
    reg: float = 1e-4  # L2 on the layer-0 embeddings of each batch, divided by the batch size
    negatives: int = 1
    # L_R: "bpr" (pairwise, each negative against the positive), "softmax" (sampled softmax over ``negatives``
    # uniform negatives), "full" (softmax over the whole recommendable catalogue; ``negatives`` unused) or
    # "inbatch" (softmax over the batch's positives with logQ correction: cost per batch B², not B × items)
    loss: str = "bpr"
    temperature: float = 1.0  # softmax, full and inbatch only: scores are divided by it
    # inbatch only: each row's negatives are the positives of its group of this many rows (0: the whole batch),
    # so a large batch costs B × group rather than B² (eval/results/convergence: batch 16,384 in groups of 4,096)
    inbatch_group: int = 0
    lambda_k: float = 0.1
    lambda_a: float = 0.0  # graph–text alignment L_A (kerec model with text only)
    kg_batch_size: int = 4096
    patience: int = 20  # LightGCN-style models plateau for 10+ epochs before improving again
    eval_every: int = 1
    select_metric: str = "ndcg@10"
    seed: int = 2020

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "negatives", "kg_batch_size", "patience", "eval_every"):
            if getattr(self, name) < 1:
                raise KerecError(f"train config: {name} must be at least 1, got {getattr(self, name)}")
        if self.inbatch_group < 0:
            raise KerecError(f"train config: inbatch_group must be 0 (the whole batch) or a group size, got {self.inbatch_group}")
        if self.loss not in LOSSES:
            raise KerecError(f"train config: unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise KerecError(f"train config: temperature must be a positive number, got {self.temperature}")
        if not (math.isfinite(self.lr) and self.lr > 0) or not (self.reg >= 0 and self.lambda_k >= 0 and self.lambda_a >= 0):
            raise KerecError(f"train config: lr must be a positive number, reg, lambda_k and lambda_a non-negative "
                             f"(got lr={self.lr}, reg={self.reg}, lambda_k={self.lambda_k}, lambda_a={self.lambda_a})")

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> TrainConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise KerecError(f"unknown train config key(s) {unknown}; valid keys: {sorted(known)}")
        return cls(**data)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class EpochLog:
    epoch: int
    loss: float
    loss_r: float
    loss_k: float
    seconds: float
    valid: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainState:
    """What callbacks see and may change (``stop``)."""

    model: Retriever
    config: TrainConfig
    history: list[EpochLog] = field(default_factory=list)
    best_epoch: int = -1
    best_score: float = -math.inf
    best_state: dict[str, torch.Tensor] | None = None
    stop: bool = False
    post: dict[str, object] = field(default_factory=dict)  # records of steps after training (the item head's search)


Callback = Callable[[TrainState, EpochLog], None]
Validator = Callable[[Embeddings], dict[str, float]]


class EarlyStopping:
    """Keeps the best model by the selection metric on validation; stops after ``patience`` evaluations
    without improvement."""

    def __init__(self, metric: str, patience: int) -> None:
        self.metric, self.patience, self.bad = metric, patience, 0

    def __call__(self, state: TrainState, log: EpochLog) -> None:
        if not log.valid:
            return
        if self.metric not in log.valid:
            raise TrainingError(f"selection metric {self.metric!r} not among {sorted(log.valid)}")
        score = log.valid[self.metric]
        if score > state.best_score:
            state.best_score, state.best_epoch, self.bad = score, log.epoch, 0
            state.best_state = copy.deepcopy(state.model.state_dict())
        else:
            self.bad += 1
            state.stop = self.bad >= self.patience


class TensorBoardLogger:
    """Writes losses and validation metrics per epoch under ``log_dir``."""

    def __init__(self, log_dir: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir)

    def __call__(self, state: TrainState, log: EpochLog) -> None:
        for name in ("loss", "loss_r", "loss_k", "seconds"):
            self.writer.add_scalar(f"train/{name}", getattr(log, name), log.epoch)
        for name, value in log.valid.items():
            self.writer.add_scalar(f"valid/{name}", value, log.epoch)
        self.writer.flush()


def bpr_loss(emb: Embeddings, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """-log σ(s(u, i⁺) − s(u, i⁻)), averaged; ``neg`` may hold several negatives per row: (B, K)."""
    pos_s, neg_s = _pair_scores(emb, users, pos, neg)
    return F.softplus(neg_s - pos_s).mean()


def softmax_loss(emb: Embeddings, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                 temperature: float = 1.0) -> torch.Tensor:
    """Sampled softmax (Wu et al., TOIS 2024): -log of the positive's share among itself and the ``K``
    uniform negatives of its row, scores divided by ``temperature``; ``neg`` (B, K)."""
    pos_s, neg_s = _pair_scores(emb, users, pos, neg)
    logits = torch.cat([pos_s, neg_s], dim=1) / temperature
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


def full_softmax_loss(emb: Embeddings, users: torch.Tensor, pos: torch.Tensor, temperature: float = 1.0,
                      allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over the whole catalogue: -log of the positive's share among every recommendable item
    (``allowed``, (I,) bool; all items when None), scores divided by ``temperature``. Exact where sampled
    softmax estimates; with a catalogue of a few thousand items one (B, I) product costs less than
    gathering K sampled negatives per row."""
    logits = emb.scores(users) / temperature
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    return F.cross_entropy(logits, pos)


def inbatch_softmax_loss(emb: Embeddings, users: torch.Tensor, pos: torch.Tensor, log_q: torch.Tensor,
                         temperature: float = 1.0, group: int = 0) -> torch.Tensor:
    r"""In-batch softmax with logQ correction (Yi et al., RecSys 2019): each row's positive against the
    other rows' positives, every logit :math:`s(u, j)/T - \log q_j`, with :math:`q_j` item ``j``'s share of
    the training interactions — the rate at which it turns up as another row's negative — so popular items
    are not pushed down for being drawn often. An item repeated in the batch is not a negative of its own
    copies. Cost per batch (B, B, d) where the full softmax pays (B, I, d): usable at any catalogue size.

    With ``group`` > 0 the rows are taken in consecutive groups of that many (the batch is shuffled), each
    row's negatives the other positives of its group: the mean over groups, cost (B, group, d).

    Shapes: ``users``, ``pos``: (B,) long; ``log_q``: (I,) float, log of each item's share."""
    if 0 < group < len(pos):
        losses = [inbatch_softmax_loss(emb, u, p, log_q, temperature) * len(p) for u, p in zip(users.split(group), pos.split(group))]
        return torch.stack(losses).sum() / len(pos)
    logits = (emb.users[users] @ emb.items[pos].T) / temperature - log_q[pos].unsqueeze(0)
    same_item = pos.unsqueeze(0) == pos.unsqueeze(1)
    same_item.fill_diagonal_(False)
    logits = logits.masked_fill(same_item, float("-inf"))
    return F.cross_entropy(logits, torch.arange(len(pos), device=pos.device))


def item_log_share(train_pairs: torch.Tensor, num_items: int) -> torch.Tensor:
    """shape: (I,) — log of each item's share of ``train_pairs`` (items never seen: the log of half a count,
    finite; they never appear as in-batch positives)."""
    counts = torch.bincount(train_pairs[:, 1], minlength=num_items).double().clamp(min=0.5)
    return (counts / counts.sum()).log().float()


def ranking_loss(config: TrainConfig, allowed: torch.Tensor | None = None, log_q: torch.Tensor | None = None,
                 ) -> Callable[[Embeddings, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """L_R as the config names it; ``allowed`` (I,) bool: the items the full softmax ranks among;
    ``log_q`` (I,): the items' log shares for "inbatch" (:func:`item_log_share`)."""
    if config.loss == "inbatch":
        if log_q is None:
            raise KerecError("the inbatch loss needs the items' training shares (log_q)")
        return lambda emb, users, pos, neg: inbatch_softmax_loss(emb, users, pos, log_q, config.temperature,
                                                                 config.inbatch_group)
    if config.loss == "softmax":
        return lambda emb, users, pos, neg: softmax_loss(emb, users, pos, neg, config.temperature)
    if config.loss == "full":
        return lambda emb, users, pos, neg: full_softmax_loss(emb, users, pos, config.temperature, allowed)
    return bpr_loss


def _pair_scores(emb: Embeddings, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    u = emb.users[users]
    return (u * emb.items[pos]).sum(-1, keepdim=True), torch.einsum("bd,bkd->bk", u, emb.items[neg])


LOSSES = ("bpr", "softmax", "full", "inbatch")


def train(model: Retriever, graph: TrainingGraph, config: TrainConfig, *, validate: Validator | None = None,
          callbacks: Sequence[Callback] = (), allowed_items: np.ndarray | None = None,
          progress: bool = True, dist_ctx: DistContext | None = None) -> TrainState:
    """Train ``model`` on ``graph``; with ``validate``, keep the best epoch by ``config.select_metric``
    and stop early. The model ends holding the best weights. Returns the state with the history.

    Under ``torchrun`` (``dist_ctx`` from :func:`~kerec.gnn.distributed.init_from_env`) every rank runs
    this same loop on its shard of each batch; validation runs on every rank on identical weights, so all
    ranks take the same early-stopping decisions without extra messages."""
    ctx = dist_ctx or DistContext()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    sampler = NegativeSampler(graph.train_pairs.numpy(), graph.num_items, rng, allowed_items)
    allowed = None if allowed_items is None else torch.from_numpy(np.asarray(allowed_items, dtype=bool))
    log_q = item_log_share(graph.train_pairs, graph.num_items) if config.loss == "inbatch" else None
    objective = wrap(Objective(model, ranking_loss(config, allowed, log_q)), ctx)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    state = TrainState(model, config)
    stopper = EarlyStopping(config.select_metric, config.patience) if validate else None
    bar = tqdm(range(1, config.epochs + 1), desc=f"training {type(model).__name__}",
               disable=not progress or not ctx.is_main)
    for epoch in bar:
        log = _epoch(objective, graph, config, optimiser, sampler, rng, epoch, ctx)
        if validate is not None and epoch % config.eval_every == 0:
            model.eval()
            with torch.no_grad():
                log.valid = validate(model(graph))
            model.train()
        state.history.append(log)
        for callback in ([stopper] if stopper else []) + (list(callbacks) if ctx.is_main else []):
            callback(state, log)
        bar.set_postfix(loss=f"{log.loss:.4f}", **{k: f"{v:.4f}" for k, v in log.valid.items() if k == config.select_metric})
        if state.stop:
            break
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    return state


def _epoch(objective: nn.Module, graph: TrainingGraph, config: TrainConfig, optimiser: torch.optim.Optimizer,
           sampler: NegativeSampler, rng: np.random.Generator, epoch: int, ctx: DistContext) -> EpochLog:
    start = time.perf_counter()
    objective.train()
    pairs, triples = graph.train_pairs, graph.kg_triples
    order = torch.from_numpy(rng.permutation(pairs.shape[0]))
    totals = np.zeros(3)
    steps = 0
    for step, chunk in enumerate(order.split(config.batch_size)):
        batch = pairs[chunk]
        # Every rank draws the same negatives and triples, then keeps its own shard.
        if config.loss in ("full", "inbatch"):  # the catalogue or the batch is the negative set: nothing to draw
            neg = torch.zeros(len(batch), 0, dtype=torch.long)
        else:
            neg = torch.from_numpy(sampler.sample(batch[:, 0].numpy(), config.negatives))
        pick = torch.zeros(0, dtype=torch.long)
        if config.lambda_k > 0 and triples.shape[0] > 0:
            pick = torch.from_numpy(rng.integers(0, triples.shape[0], size=min(config.kg_batch_size, triples.shape[0])))
        corrupt = torch.from_numpy(rng.integers(0, graph.num_kg_nodes, size=pick.numel()))
        batch, neg = ctx.shard(batch), ctx.shard(neg)
        loss_r, loss_reg, loss_k, loss_a, _ = objective(graph, batch[:, 0], batch[:, 1], neg,
                                                        triples[ctx.shard(pick)], ctx.shard(corrupt))
        loss = loss_r + config.reg * loss_reg + config.lambda_k * loss_k + config.lambda_a * loss_a
        if not torch.isfinite(loss):
            raise TrainingError(f"loss became {loss.item()} at epoch {epoch}, step {step + 1} "
                                f"(L_R {loss_r.item():.4g}, L_K {loss_k.item():.4g}); lower the learning rate")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        totals += (loss.item(), loss_r.item(), loss_k.item())
        steps += 1
    mean = [ctx.mean(float(v)) for v in totals / max(steps, 1)]
    return EpochLog(epoch, mean[0], mean[1], mean[2], time.perf_counter() - start)
