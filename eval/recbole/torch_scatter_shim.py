"""Plain-PyTorch stand-in for the parts of ``torch_scatter`` that RecBole 1.2.1 uses.

RecBole's KGIN does ``from torch_scatter import scatter_mean`` inside its forward pass.
``torch_scatter`` has no build for torch 2.13, so ``recbole_compat.install()`` puts this
module into ``sys.modules["torch_scatter"]`` before RecBole runs.

Semantics follow torch_scatter 2.x: ``index`` is broadcast against ``src`` along ``dim``;
output positions that receive no element are 0 (for the mean as well).
"""

from __future__ import annotations

import torch

__all__ = ["scatter", "scatter_add", "scatter_mean", "scatter_sum"]


def _broadcast(index: torch.Tensor, src: torch.Tensor, dim: int) -> torch.Tensor:
    """Expand ``index`` to ``src``'s shape the way torch_scatter does.

    Shapes: index (n,) or a prefix of src's shape; src (..., n, ...); returns src.shape.
    """
    if dim < 0:
        dim = src.dim() + dim
    if index.dim() == 1:
        for _ in range(dim):
            index = index.unsqueeze(0)
    for _ in range(index.dim(), src.dim()):
        index = index.unsqueeze(-1)
    return index.expand_as(src)


def scatter_sum(
    src: torch.Tensor,
    index: torch.Tensor,
    dim: int = -1,
    out: torch.Tensor | None = None,
    dim_size: int | None = None,
) -> torch.Tensor:
    """Sum the slices of ``src`` that share an index along ``dim``."""
    index = _broadcast(index, src, dim)
    if out is None:
        size = list(src.size())
        if dim_size is not None:
            size[dim] = dim_size
        elif index.numel() == 0:
            size[dim] = 0
        else:
            size[dim] = int(index.max()) + 1
        out = torch.zeros(size, dtype=src.dtype, device=src.device)
    return out.scatter_add_(dim, index, src)


scatter_add = scatter_sum


def scatter_mean(
    src: torch.Tensor,
    index: torch.Tensor,
    dim: int = -1,
    out: torch.Tensor | None = None,
    dim_size: int | None = None,
) -> torch.Tensor:
    """Average the slices of ``src`` that share an index along ``dim`` (0 where none)."""
    total = scatter_sum(src, index, dim, out, dim_size)
    dim_size = total.size(dim)
    index_dim = dim if dim >= 0 else src.dim() + dim
    if index.dim() <= index_dim:
        index_dim = index.dim() - 1
    ones = torch.ones(index.size(), dtype=src.dtype, device=src.device)
    count = scatter_sum(ones, index, index_dim, None, dim_size).clamp_(min=1)
    count = _broadcast(count, total, dim)
    if total.is_floating_point():
        return total.true_divide_(count)
    return total.div_(count, rounding_mode="floor")


def scatter(
    src: torch.Tensor,
    index: torch.Tensor,
    dim: int = -1,
    out: torch.Tensor | None = None,
    dim_size: int | None = None,
    reduce: str = "sum",
) -> torch.Tensor:
    """``torch_scatter.scatter`` for the reductions provided here ("sum", "add", "mean")."""
    if reduce in ("sum", "add"):
        return scatter_sum(src, index, dim, out, dim_size)
    if reduce == "mean":
        return scatter_mean(src, index, dim, out, dim_size)
    raise NotImplementedError(
        f"torch_scatter shim: reduce={reduce!r} is not provided (only sum/add/mean); "
        "RecBole's BPR, LightGCN, CKE, KGAT and KGIN need no other."
    )
