"""PNG plots of an evaluation (matplotlib, Agg): metric by system, Recall@K curves, the KG gain by user
activity, Recall@20 against the share of training kept (sparsity), and one retrieved subgraph (drawn by :mod:`kerec.kg.show`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kerec.eval.config import LABELS
from kerec.eval.regime_report import GAIN_METRIC, sparsity_curve


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    _pyplot().close(fig)
    return path.name


def make_all(results: dict[str, Any], run: Any, out: Path) -> dict[str, str]:
    """Every plot the results allow; returns {title: file name in ``out``}."""
    made: dict[str, str] = {}
    summary = results.get("full_summary")
    if summary:
        made["metric by system"] = metric_by_system(summary, out / "metric_by_system.png")
        made["Recall@K"] = recall_curves(results["full"]["curve"], out / "recall_at_k.png")
    sl = results.get("slices") or {}
    sig = results["config"]["significance"]
    if sl and sig["a"] in sl["by_bucket"] and sig["b"] in sl["by_bucket"]:
        made["KG gain by user activity"] = kg_gain(sl, sig["a"], sig["b"], out / "kg_gain_by_activity.png")
    curve = sparsity_curve(results)
    if curve:
        made[f"{GAIN_METRIC} vs share of training kept"] = sparsity_plot(curve, out / "sparsity.png")
    picture = subgraph_picture(results, run, out / "subgraph.png")
    if picture:
        made["a retrieved subgraph"] = picture
    return made


def metric_by_system(summary: dict[str, dict[str, list[float]]], path: Path) -> str:
    plt = _pyplot()
    systems = list(summary)
    keys = [k for k in next(iter(summary.values())) if k.split("@")[0] in ("recall", "ndcg")]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(systems) * len(keys) / 2), 4))
    width = 0.8 / len(keys)
    x = np.arange(len(systems))
    for n, key in enumerate(keys):
        means = [summary[s][key][0] for s in systems]
        stds = [summary[s][key][1] for s in systems]
        ax.bar(x + n * width - 0.4 + width / 2, means, width, yerr=stds, capsize=3, label=key)
    ax.set_xticks(x, [LABELS.get(s, s) for s in systems], rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("test metric (mean ± std over seeds)")
    ax.set_title("Full ranking by system")
    ax.legend(fontsize=8)
    return _save(fig, path)


def recall_curves(curves: dict[str, list[float]], path: Path) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for system, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, label=LABELS.get(system, system))
    ax.set_xlabel("K")
    ax.set_ylabel("test Recall@K (mean over seeds)")
    ax.set_title("Recall@K, full ranking")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def kg_gain(sl: dict[str, Any], a: str, b: str, path: Path) -> str:
    plt = _pyplot()
    metrics = [m for m in sl["by_bucket"][a] if m.split("@")[0] in ("recall", "ndcg")]
    labels = [f"{x['min_train']}–{x['max_train']}\n({x['users']})" for x in sl["buckets"]]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    width = 0.8 / max(1, len(metrics))
    x = np.arange(len(labels))
    for n, m in enumerate(metrics):
        gain = [(va or 0.0) - (vb or 0.0) for va, vb in zip(sl["by_bucket"][a][m], sl["by_bucket"][b][m])]
        ax.bar(x + n * width - 0.4 + width / 2, gain, width, label=m)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_xlabel("training interactions per user (users)")
    ax.set_ylabel(f"{LABELS.get(a, a)} − {LABELS.get(b, b)}")
    ax.set_title("Gain with vs without KG, by user activity")
    ax.legend(fontsize=8)
    return _save(fig, path)


def sparsity_plot(curve: dict[str, list[tuple[float, float, float]]], path: Path) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for system, points in curve.items():
        keep, mean, std = (np.asarray(v) for v in zip(*points))
        ax.errorbar(keep, mean, yerr=std, marker="o", capsize=3, label=LABELS.get(system, system))
    ax.set_xscale("log")
    shares = sorted({k for points in curve.values() for k, _, _ in points})
    ax.set_xticks(shares, [f"{k:.0%}" for k in shares])
    ax.set_xlabel("share of each user's training interactions kept")
    ax.set_ylabel(f"test {GAIN_METRIC} (mean ± std over seeds)")
    ax.set_title("Sparsity: where the KG should help")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def subgraph_picture(results: dict[str, Any], run: Any, path: Path) -> str | None:
    """The first explained (else first test) user's recent history linked to the kerec GNN's top items."""
    from kerec.kg import MemoryStore, build_ckg
    from kerec.kg.show import render, user_subgraph

    system = "kerec" if "kerec" in run.config.systems else next(
        (s for s in run.config.retriever_systems if s not in ("pop", "random")), None)
    if system is None:
        return None
    trained = run.systems.get(system, run.config.seeds[0])
    ds = trained.prepared.dataset
    explained = getattr(run, "explained", None)
    user = explained[0]["users"][0] if explained else ds.users.external(int(trained.prepared.split.test[0, 0]))
    store = run._recs[run.config.seeds[0]].store if run._recs.get(run.config.seeds[0]) else None
    if store is None:
        store = MemoryStore()
        store.load(build_ckg(ds), progress=False)
    shown = {h.item for h in store.history(user)[::-1][:10]}
    u = ds.users.index(user)
    scores = trained.scores(np.asarray([u]))[0].numpy()
    known = set(trained.prepared.split.train[trained.prepared.split.train[:, 0] == u, 1].tolist())
    ranked = [ds.items.external(int(i)) for i in np.argsort(-scores, kind="stable") if int(i) not in known]
    items = [i for i in ranked if i not in shown][:5]
    render(user_subgraph(store, user, items), path)
    return path.name
