"""Make RecBole 1.2.1 run on torch 2.13 + DGL 1.0.4 without editing site-packages.

Call :func:`install` before anything imports RecBole. Each workaround is named after
what breaks without it (DESIGN.md, "Running RecBole 1.2.1 anchors here"):

* ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``: RecBole's checkpoints pickle its ``Config``;
  torch >= 2.6 loads with ``weights_only=True`` by default and refuses them, so
  ``Trainer.evaluate(load_best_model=True)`` fails without it.
* ``torch_scatter``: KGIN imports ``scatter_mean`` from it; there is no build for torch 2.13,
  so :mod:`torch_scatter_shim` (plain PyTorch) is registered under that name.
* DGL ``preserve_nodes``: KGAT calls ``dgl.edge_subgraph(g, e, preserve_nodes=True)``, an
  argument DGL removed in 0.8; DGL 1.0.4 spells it ``relabel_nodes=not preserve_nodes``.
* ``DGLBACKEND=pytorch``: stops DGL writing ``~/.dgl/config.json`` on first import.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any


def install() -> None:
    """Apply every workaround; safe to call more than once."""
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    os.environ.setdefault("DGLBACKEND", "pytorch")
    _install_torch_scatter_shim()
    _patch_dgl_edge_subgraph()


def _install_torch_scatter_shim() -> None:
    try:  # a real torch_scatter, if someone built one, wins
        import torch_scatter  # noqa: F401
        return
    except ImportError:
        pass
    import torch_scatter_shim

    sys.modules["torch_scatter"] = torch_scatter_shim


def _patch_dgl_edge_subgraph() -> None:
    import dgl

    original = dgl.edge_subgraph
    if getattr(original, "_kerec_preserve_nodes_patch", False):
        return

    @functools.wraps(original)
    def edge_subgraph(graph: Any, edges: Any, *args: Any, **kwargs: Any) -> Any:
        if "preserve_nodes" in kwargs:
            kwargs["relabel_nodes"] = not kwargs.pop("preserve_nodes")
        return original(graph, edges, *args, **kwargs)

    edge_subgraph._kerec_preserve_nodes_patch = True  # type: ignore[attr-defined]
    dgl.edge_subgraph = edge_subgraph
