"""The report's part for the regimes where knowledge should matter (:mod:`kerec.eval.regimes`): one headline
line per regime with the KG gain and its paired test, and the sparsity curve's data (tables:
:mod:`kerec.eval.markdown`)."""
from __future__ import annotations

from typing import Any

from kerec.eval.config import LABELS

GAIN_METRIC = "recall@20"  # the issue's targets are stated in Recall@20


def _gain_text(tests: dict[str, Any], metric: str = GAIN_METRIC) -> str:
    t = tests.get(metric) or (next(iter(tests.values())) if tests else None)
    if not t:
        return "no KG gain measured (kerec or kerec-no-kg missing)"
    ratio = t["mean_a"] / t["mean_b"] if t["mean_b"] else float("nan")
    return (f"{t['metric']} {t['mean_a']:.4f} with the KG vs {t['mean_b']:.4f} without ({ratio:.3f}×, "
            f"{t['mean_diff']:+.4f}, {t['test']} p = {t['p_value']:.3g}, {t['users']} users, {t['seeds']} seed(s))")


def regimes_of(results: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(title, description, regime result) for every regime in ``results``, in reading order."""
    out = []
    sp = results.get("sparsity")
    if sp:
        for keep, res in sp["per_keep"].items():
            what = (f"each user's training pairs thinned to {float(keep):.0%}" if float(keep) < 1
                    else "the whole training split (the full-data models)")
            out.append((f"{float(keep):.0%} of training", what, res))
    cu = results.get("cold_users")
    if cu:
        out.append(("cold users", f"{cu['users']:.0%} of the test users left with {cu['keep']} training pairs each, "
                                  "scored on their test items", cu))
    lt = results.get("long_tail")
    if lt:
        out.append(("long-tail items", f"test items outside the {lt['head']:.0%} most popular ({lt['tail_items']} items, "
                                       f"{lt['tail_test_pairs']} of {lt['test_pairs']} test pairs)", lt))
    return out


def regime_headline(results: dict[str, Any]) -> list[str]:
    lines = []
    cold = results.get("cold_start")
    if cold and cold.get("kg_gain") is not None:
        lines.append(f"**KG gain, cold-start items** (ranked from side information alone): {_gain_text(cold['kg_gain'])}.")
    for title, _, res in regimes_of(results):
        lines.append(f"**KG gain, {title}:** {_gain_text(res['kg_gain'])}.")
    return lines


def sparsity_curve(results: dict[str, Any], metric: str = GAIN_METRIC) -> dict[str, list[tuple[float, float, float]]]:
    """system -> [(kept share, mean, std over seeds)] of ``metric``, kept share ascending."""
    from kerec.metrics.stats import mean_std

    sp = results.get("sparsity") or {}
    out: dict[str, list[tuple[float, float, float]]] = {}
    for keep, res in sorted(sp.get("per_keep", {}).items(), key=lambda kv: float(kv[0])):
        for system, per_seed in res["per_seed"].items():
            values = [m[metric] for m in per_seed.values() if metric in m]
            if values:
                out.setdefault(system, []).append((float(keep), *mean_std(values)))
    return out


__all__ = ["GAIN_METRIC", "regime_headline", "regimes_of", "sparsity_curve"]
