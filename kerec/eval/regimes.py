"""The regimes where knowledge should matter (KGAT's and KGIN's sparsity analyses): sparse training data,
cold users, long-tail test items and cold items, each with the KG gain (``kerec`` vs ``kerec-no-kg``)
paired over users.

* ``sparsity``: each system retrained on each share of every user's training pairs, scored on the test split;
* ``cold_users``: a share of the test users left with a few training pairs, scored on their test items;
* ``long_tail``: the full-data systems scored only on test items outside the most popular share;
* ``cold_start``: cold items ranked among themselves from side information alone (kept as it was, with the
  paired test added).

Every system is chosen on the validation split of its own regime (early stopping, the item head); the test
split is scored once per system, seed and regime.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from kerec.eval.config import FullSection
from kerec.eval.full import FullResult, full_ranking
from kerec.metrics.stats import paired_over_seeds, paired_test
from kerec.eval.systems import Regime, cold_users, train_key

KG_GAIN = ("kerec", "kerec-no-kg")  # with the KG against the same model without it (text kept)


def sparsity(run: Any) -> dict[str, Any]:
    section = run.config.protocols.sparsity
    out: dict[str, Any] = {"keep": list(section.keep), "per_keep": {}}
    for keep in section.keep:
        regime = None if keep >= 1 else Regime("keep", keep)
        out["per_keep"][f"{keep:g}"] = _score(run, section, regime, "sparsity", {"keep": keep})
    return out


def cold_user_regime(run: Any) -> dict[str, Any]:
    section = run.config.protocols.cold_users
    regime = Regime("cold_users", section.keep, section.users)

    def target(prepared: Any, seed: int) -> np.ndarray:
        test = prepared.split.test
        return test[np.isin(test[:, 0], cold_users(prepared, regime, run.config.dataset.split_seed))]
    return {"users": section.users, "keep": section.keep,
            **_score(run, section, regime, "cold-users", {"users": section.users, "keep": section.keep}, target)}


def long_tail(run: Any) -> dict[str, Any]:
    section = run.config.protocols.long_tail
    prepared = run.systems.prepared()
    tail = tail_items(prepared, section.head)

    def target(p: Any, seed: int) -> np.ndarray:
        return p.split.test[tail[p.split.test[:, 1]]]
    return {"head": section.head, "tail_items": int(tail.sum()),
            "tail_test_pairs": int(tail[prepared.split.test[:, 1]].sum()), "test_pairs": int(len(prepared.split.test)),
            **_score(run, section, None, "long-tail", {"head": section.head}, target)}


def tail_items(prepared: Any, head: float) -> np.ndarray:
    """shape: (I,) bool — recommendable items outside the ``head`` share most popular by training
    interactions (ties at the cut broken by lower index, as the ranking's tie policy)."""
    allowed = prepared.allowed_items
    counts = np.bincount(prepared.split.train[:, 1], minlength=prepared.dataset.num_items)
    candidates = np.flatnonzero(allowed)
    order = candidates[np.lexsort((candidates, -counts[candidates]))]
    tail = allowed.copy()
    tail[order[: int(round(head * candidates.size))]] = False
    return tail


def _score(run: Any, section: Any, regime: Regime | None, name: str, key: dict[str, Any],
           target: Any = None) -> dict[str, Any]:
    """Each system at each seed under ``regime``, scored on ``target(prepared, seed)`` (default the test
    split); per-seed means, and the KG gain paired over users per metric."""
    full = FullSection(ks=tuple(section.ks), metrics=tuple(section.metrics), curve_max_k=max(section.ks))
    results: dict[tuple[str, int], FullResult] = {}
    out: dict[str, Any] = {"per_seed": {}}
    for seed in run.config.seeds:
        for system in section.systems:
            trained = run.systems.get(system, seed, regime)
            pairs = target(trained.prepared, seed) if target is not None else None
            shard_key = {"train": train_key(run.config, system, seed, regime), name: key,
                         "ks": list(full.ks), "metrics": list(full.metrics)}
            tag = regime.tag if regime is not None else ""
            result = full_ranking(trained, full, run.shard(f"{name}-{tag}{system}-seed{seed}", shard_key),
                                  progress=run.progress, target=pairs)
            results[(system, seed)] = result
            out["per_seed"].setdefault(system, {})[str(seed)] = {**result.means, "users": int(result.users.size)}
    out["kg_gain"] = kg_gain(results, run.config)
    return out


def kg_gain(results: dict[tuple[str, int], FullResult], config: Any) -> dict[str, Any]:
    """metric -> the paired test of kerec against kerec-no-kg (per-user differences averaged over seeds,
    :func:`kerec.metrics.stats.paired_over_seeds`); empty when either is missing."""
    a, b = KG_GAIN
    seeds = [s for s in config.seeds if (a, s) in results and (b, s) in results]
    if not seeds:
        return {}
    sig = config.significance
    out = {}
    for metric in results[(a, seeds[0])].per_user:
        users, x, y = paired_over_seeds([(results[(a, s)].users, results[(a, s)].per_user[metric]) for s in seeds],
                                        [(results[(b, s)].users, results[(b, s)].per_user[metric]) for s in seeds])
        out[metric] = paired_test(x, y, metric=metric, test=sig.test, permutations=sig.permutations).to_dict() | {
            "a": a, "b": b, "seeds": len(seeds)}
    return out


__all__ = ["KG_GAIN", "cold_user_regime", "kg_gain", "long_tail", "sparsity", "tail_items"]
