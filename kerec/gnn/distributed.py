"""Data-parallel training under ``torchrun``: the retriever is unchanged; its training objective is
wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` (gloo on CPU, nccl on GPU).

Every rank draws the same batches, negatives and KG triples (same seed) and computes the loss on its
own strided shard of each batch; DDP averages the gradients, which equals the full-batch gradient when
shards are equal in size, so N processes follow the 1-process run within floating-point tolerance.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from kerec.gnn.graph import TrainingGraph
from kerec.gnn.models import Embeddings, Retriever


@dataclass(frozen=True)
class DistContext:
    """This process's place in a ``torchrun`` job (rank 0 of 1 when run plainly)."""

    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, x: Tensor) -> Tensor:
        """This rank's strided share of the rows of ``x``."""
        return x[self.rank:: self.world_size] if self.enabled else x

    def mean(self, value: float) -> float:
        """The mean of ``value`` over ranks (for logs)."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t.item()) / self.world_size


def init_from_env(device: torch.device | None = None) -> DistContext:
    """Join the process group that ``torchrun`` describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size())


class Objective(nn.Module):
    """The training objective as one module around an unchanged retriever, so DDP can wrap it:
    ``forward`` returns ``(L_R, L_reg, L_K, L_A)`` for a batch and the embeddings it scored."""

    def __init__(self, retriever: Retriever, ranking_loss: Callable[..., Tensor]) -> None:
        super().__init__()
        self.retriever = retriever
        self.ranking_loss = ranking_loss  # (embeddings, users, positives, negatives (B, K)) -> L_R

    def forward(self, graph: TrainingGraph, users: Tensor, pos: Tensor, neg: Tensor,
                triples: Tensor, corrupt: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Embeddings]:
        emb = self.retriever(graph)
        loss_r = self.ranking_loss(emb, users, pos, neg)
        ego_u, ego_i = self.retriever.ego(users, torch.cat([pos, neg.flatten()]))
        loss_reg = (ego_u.pow(2).sum() + ego_i.pow(2).sum()) / len(users)
        loss_k = self.retriever.kg_loss(graph, triples, corrupt) if triples.numel() else torch.zeros((), device=users.device)
        loss_a = self.retriever.align_loss(graph, emb, pos)
        return loss_r, loss_reg, loss_k, loss_a, emb


def wrap(objective: Objective, ctx: DistContext) -> nn.Module:
    if not ctx.enabled:
        return objective
    # No buffer changes during training (the item head is fitted afterwards): nothing to broadcast per step.
    return nn.parallel.DistributedDataParallel(objective, broadcast_buffers=False)
