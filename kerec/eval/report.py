"""The evaluation report: aggregates over seeds, slices, the paired test, external anchors, the headline,
and the files ``results.json`` and ``report.md`` (plots: :mod:`kerec.eval.plots`)."""
from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kerec.eval.command import code_state
from kerec.eval.config import LABELS, RECENCY, split_sha256
from kerec.eval.regime_report import regime_headline
from kerec.metrics.stats import mean_std, paired_over_seeds, paired_test


@dataclass(frozen=True)
class EvalReport:
    """What :func:`kerec.evaluate` returns: the report folder and everything ``results.json`` holds."""

    name: str
    out: Path
    results: dict[str, Any]

    @property
    def headline(self) -> list[str]:
        return list(self.results.get("headline", []))

    def full_metric(self, system: str, metric: str) -> tuple[float, float]:
        """Mean and std over seeds of a full-ranking test metric, e.g. ``("kerec", "recall@20")``."""
        per_seed = self.results["full"]["per_seed"][system]
        return mean_std([m[metric] for m in per_seed.values()])

    def candidate_metric(self, system: str, metric: str = "acc") -> tuple[float, float]:
        """Mean and std over seeds of a 20-candidate metric over all held-out users (random negatives)."""
        per_seed = self.results["candidates"]["all_users"][system]
        return mean_std([m[metric] for m in per_seed.values()])


# ------------------------------------------------------------------------------------------- environment
def environment(threads: int) -> dict[str, Any]:
    from importlib import metadata

    versions = {}
    for package in ("kerec", "torch", "torch_geometric", "transformers", "peft", "numpy", "scipy", "matplotlib",
                    "sentence-transformers", "recbole"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    import torch

    return {"python": platform.python_version(), "platform": platform.platform(), "cpu": _cpu_model(),
            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "requested_threads": threads,
            "packages": versions, "code": code_state()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ------------------------------------------------------------------------------------------ aggregation
def summarise_full(full: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """system -> metric -> [mean, std] over seeds."""
    out: dict[str, dict[str, list[float]]] = {}
    for system, per_seed in full["per_seed"].items():
        keys = [k for k in next(iter(per_seed.values())) if "@" in k]
        out[system] = {k: list(mean_std([m[k] for m in per_seed.values()])) for k in keys}
    return out


def significance(run: Any) -> list[dict[str, Any]]:
    """The main claim per full-ranking metric, paired over users (seed-averaged differences)."""
    sig = run.config.significance
    seeds = run.config.seeds
    if any((s, seed) not in run.per_user for s in (sig.a, sig.b) for seed in seeds):
        return []
    out = []
    for metric in run.per_user[(sig.a, seeds[0])].per_user:
        users, a, b = paired_over_seeds(
            [(run.per_user[(sig.a, s)].users, run.per_user[(sig.a, s)].per_user[metric]) for s in seeds],
            [(run.per_user[(sig.b, s)].users, run.per_user[(sig.b, s)].per_user[metric]) for s in seeds])
        out.append(paired_test(a, b, metric=metric, test=sig.test, permutations=sig.permutations).to_dict()
                   | {"a": sig.a, "b": sig.b, "seeds": len(seeds)})
    return out


def slices(run: Any) -> dict[str, Any]:
    """Sparse users (≤ N training interactions) and equal-size activity buckets, per system (seed means)."""
    config = run.config
    if not run.per_user:
        return {}
    prepared = run.systems.prepared()
    counts = np.bincount(prepared.split.train[:, 0], minlength=prepared.dataset.num_users)
    first = run.per_user[(config.retriever_systems[0], config.seeds[0])]
    users = first.users
    metrics = list(first.per_user)
    sparse_users = users[counts[users] <= config.slices.sparse_max_train]
    n_buckets = min(config.slices.activity_buckets, max(1, users.size))
    order = users[np.argsort(counts[users], kind="stable")]
    buckets = [b for b in np.array_split(order, n_buckets) if b.size]
    out: dict[str, Any] = {"sparse_max_train": config.slices.sparse_max_train, "sparse_users": int(sparse_users.size),
                           "buckets": [{"users": int(b.size), "min_train": int(counts[b].min()),
                                        "max_train": int(counts[b].max())} for b in buckets],
                           "sparse": {}, "by_bucket": {}}
    for system in config.retriever_systems:
        results = [run.per_user[(system, seed)] for seed in config.seeds if (system, seed) in run.per_user]

        def mean_over(selection: np.ndarray, metric: str) -> float | None:
            if selection.size == 0:
                return None
            return float(np.mean([r.per_user[metric][np.isin(r.users, selection)].mean() for r in results]))
        out["sparse"][system] = {m: mean_over(sparse_users, m) for m in metrics}
        out["by_bucket"][system] = {m: [mean_over(b, m) for b in buckets] for m in metrics}
    return out


def anchors(run: Any) -> list[dict[str, Any]]:
    """RecBole 1.2.1 results measured on this very split (same sha256 of the split files)."""
    split = run.config.dataset.split
    if split in ("random", "loo") or not run.config.anchors.recbole:
        return []
    sha = split_sha256(split)
    rows = []
    for n, folder in enumerate(run.config.anchors.recbole):
        by_model: dict[str, list[dict[str, Any]]] = {}
        for path in sorted(Path(folder).glob("*-seed*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("split", {}).get("sha256") == sha and "test" in data:
                by_model.setdefault(data["model"], []).append(data)
        for model, runs in by_model.items():
            tag = "" if n == 0 else f", {Path(folder).name}"
            keys = sorted(runs[0]["test"])
            rows.append({"name": f"RecBole 1.2.1 {model} (external run{tag})", "folder": str(folder),
                         "seeds": [r["seed"] for r in runs], "time_capped": sum(bool(r.get("time_capped")) for r in runs),
                         "metrics": {k: list(mean_std([r["test"][k] for r in runs])) for k in keys},
                         "seconds_per_epoch_median": float(np.median([r["seconds_per_epoch_median"] for r in runs])),
                         "epochs": {str(r["seed"]): {"best_epoch": r.get("best_epoch"), "epochs_run": r.get("epochs_run"),
                                                     "stopped_early": r.get("stopped_early")} for r in runs}})
    return rows


# ---------------------------------------------------------------------------------------------- headline
def headline(results: dict[str, Any]) -> list[str]:
    """Sentences answering: does the KG help, does the LLM help, by how much, at what cost — from the numbers."""
    lines: list[str] = []
    sig = results.get("significance") or []
    summary = results.get("full_summary", {})
    by_metric = {t["metric"]: t for t in sig}
    shown = [by_metric[k] for k in (_last_key(summary, "recall"), _last_key(summary, "ndcg")) if k in by_metric]
    if shown:
        a, b, main = shown[0]["a"], shown[0]["b"], shown[0]
        significant = [t for t in shown if t["p_value"] < 0.05]
        verdict = ("not significantly" if not significant else
                   "yes" if all(t["mean_diff"] > 0 for t in significant) else "no: it hurts")
        detail = "; ".join(f"{t['metric']} {t['mean_a']:.4f} vs {t['mean_b']:.4f} ({t['mean_diff']:+.4f}, "
                           f"{(t['mean_diff'] / t['mean_b'] * 100) if t['mean_b'] else float('nan'):+.1f}%, "
                           f"p = {t['p_value']:.3g})" for t in shown)
        question = "Does the KG help?" if (a, b) == ("kerec", "kerec-no-kg") else f"Does {LABELS.get(a, a)} beat {LABELS.get(b, b)}?"
        lines.append(f"**{question}** {verdict} — {LABELS.get(a, a)} vs {LABELS.get(b, b)}, test full ranking: "
                     f"{detail}; {main['test']} test over {main['users']} users paired, {main['seeds']} seed(s)."
                     + _capped(results, (a, b)))
    lines.append(_versus_strongest(results))
    under = undertrained(results)
    if under:
        lines.append("**Under-trained:** " + "; ".join(f"{name} (seed {', '.join(seeds)})" for name, seeds in under.items())
                     + " — best validation epoch = the last epoch run: still improving when stopped; no claim "
                       "against them is a claim against a converged model.")
    stage = results.get("candidates", {}).get("llm_stage", {})
    fusion = results.get("candidates", {}).get("fusion", {})
    gnn_name = results["config"]["protocols"]["candidates"]["retriever"] if stage else None
    for variant, rows in stage.items():
        gnn = _seed_mean(rows.get(gnn_name, {}), "acc")
        parts = [f"{LABELS.get(s, s)} {_seed_mean(r, 'acc'):.3f}" for s, r in rows.items() if s not in (gnn_name,)]
        # the best system with an LLM (gnn-recency is the no-LLM ablation)
        best = max(((s, _seed_mean(r, "acc")) for s, r in rows.items() if s not in (gnn_name, "random", RECENCY)),
                   key=lambda kv: kv[1], default=None)
        if best is not None and gnn is not None:
            tests = [r.get("vs_gnn") for r in rows[best[0]].values() if r.get("vs_gnn")]
            p = tests[0]["p_value"] if tests else None
            verdict = ("not significantly" if p is not None and p >= 0.05 else "yes" if best[1] > gnn else "no")
            users = next(iter(rows[gnn_name].values()))["users"]
            ptext = f" (best, {LABELS.get(best[0], best[0])}, vs the GNN: {tests[0]['test']} p = {p:.3g})" if tests else ""
            lines.append(f"**Does the LLM help ({variant}, {users} users)?** {verdict} — ACC of the GNN alone "
                         f"{gnn:.3f}; " + ", ".join(parts) + ptext + ".")
    weights = [f.get("weight") for f in fusion.values() if f.get("weight") is not None]
    if weights:
        lines.append(f"Fusion weight chosen on validation: {', '.join(str(w) for w in weights)} (0 = GNN alone).")
    lines += regime_headline(results)
    cost = _cost(results)
    if cost:
        lines.append("**Cost:** " + cost)
    exp = results.get("explain")
    if exp and exp.get("llm_grounding_rate") is not None:
        lines.append(f"**Explanations:** {exp['llm_grounding_rate']:.0%} of {exp['llm_generations']} LLM explanations "
                     f"passed the grounding check; templated fallback for {exp['fallback_rate']:.0%} of items with evidence; "
                     f"every shown explanation's cited facts re-checked: "
                     f"{exp['shown_grounded_share']:.0%} grounded." if exp["shown_grounded_share"] is not None else "")
    every = (exp or {}).get("all_users")
    if every and every.get("grounded_share") is not None:
        lines.append(f"**Grounding, all {every['users']} test users** (GNN top {every['k']}, templated explanations): "
                     f"{every['grounded_share']:.2%} of {every['cited_facts']} cited facts exist and link the history.")
    return [line for line in lines if line]


def undertrained(results: dict[str, Any]) -> dict[str, list[str]]:
    """Every trained system (and external anchor) whose best validation epoch was its last one, with the
    seeds where it was: it stopped while still improving (a cap, or too little patience to see a plateau).
    Closed-form fits (no epochs) converge by construction."""
    out: dict[str, list[str]] = {}
    for system, per_seed in results.get("training", {}).items():
        seeds = [seed for seed, r in per_seed.items() if r.get("epochs_run") and r.get("best_epoch") == r["epochs_run"]]
        if seeds:
            out[LABELS.get(system, system)] = seeds
    for a in results.get("anchors", []):
        seeds = [seed for seed, r in a.get("epochs", {}).items()
                 if not r.get("stopped_early") and r.get("epochs_run") and r.get("best_epoch") is not None
                 and r["best_epoch"] >= r["epochs_run"] - 1]  # RecBole counts epochs from 0
        if seeds:
            out[a["name"]] = seeds
    return out


def _versus_strongest(results: dict[str, Any]) -> str:
    """kerec against the strongest converged baseline of this run (by the last Recall@K), as a ratio."""
    summary = results.get("full_summary", {})
    recall, ndcg = _last_key(summary, "recall"), _last_key(summary, "ndcg")
    if "kerec" not in summary or recall is None or ndcg is None:
        return ""
    under = undertrained(results)
    rows = {LABELS.get(s, s): m for s, m in summary.items()
            if s != "kerec" and not s.startswith("kerec-") and s != "random" and LABELS.get(s, s) not in under}
    rows.update({a["name"]: {k: v for k, v in a["metrics"].items()} for a in results.get("anchors", [])
                 if a["name"] not in under and recall in a["metrics"]})
    if not rows:
        return ""
    name, best = max(rows.items(), key=lambda kv: kv[1][recall][0])
    ours = summary["kerec"]
    skipped = sorted(set(under) - {LABELS.get("kerec", "kerec")})
    return (f"**kerec vs the strongest converged baseline ({name}):** {recall} {ours[recall][0]:.4f} vs "
            f"{best[recall][0]:.4f} ({ours[recall][0] / best[recall][0]:.3f}×), {ndcg} {ours[ndcg][0]:.4f} vs "
            f"{best[ndcg][0]:.4f} ({ours[ndcg][0] / best[ndcg][0]:.3f}×)"
            + (f"; left out as under-trained: {', '.join(skipped)}." if skipped else "."))


def _capped(results: dict[str, Any], systems: tuple[str, ...]) -> str:
    """A warning when a compared system's best validation epoch was its last one at the epoch cap."""
    cap = results["config"]["retriever"]["train"].get("epochs")
    capped = [s for s in systems for r in results.get("training", {}).get(s, {}).values()
              if r["best_epoch"] == r["epochs_run"] and (cap is None or r["epochs_run"] >= cap)]
    if not capped:
        return ""
    return (f" Caveat: {', '.join(sorted(set(LABELS.get(s, s) for s in capped)))} still improved on validation at "
            "the last epoch the config allows, so this compares under-trained models.")


def _last_key(summary: dict[str, Any], metric: str) -> str | None:
    for system in summary.values():
        keys = sorted((k for k in system if k.startswith(metric + "@")), key=lambda k: int(k.split("@")[1]))
        return keys[-1] if keys else None
    return None


def _seed_mean(per_seed: dict[str, Any], metric: str) -> float | None:
    values = [m[metric] for m in per_seed.values()]
    return float(np.mean(values)) if values else None


def _cost(results: dict[str, Any]) -> str:
    parts = []
    training = results.get("training", {})
    sig = results["config"]["significance"]
    for system in (sig["a"], sig["b"]):
        if system in training:
            runs = list(training[system].values())
            parts.append(f"{LABELS.get(system, system)} trains in {np.mean([r['fit_seconds'] for r in runs]) / 60:.1f} min "
                         f"({np.median([r['seconds_per_epoch_median'] for r in runs]):.2f} s/epoch)")
    lat = results.get("explain", {}).get("latency_ms", {})
    if lat:
        parts.append("recommend(user, k) p50 " + ", ".join(f"{s} {v['p50']:.0f} ms" for s, v in lat.items() if v))
    return "; ".join(parts) + "." if parts else ""


# ------------------------------------------------------------------------------------------------- write
def write_report(results: dict[str, Any], run: Any, out: Path) -> EvalReport:
    from kerec.eval import plots
    from kerec.eval.markdown import render_markdown

    out.mkdir(parents=True, exist_ok=True)
    if "full" in results:
        results["full_summary"] = summarise_full(results["full"])
        results["significance"] = significance(run)
        results["slices"] = slices(run)
    results["anchors"] = anchors(run)
    results["headline"] = headline(results)
    results["plots"] = plots.make_all(results, run, out)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render_markdown(results), encoding="utf-8")
    return EvalReport(results["name"], out, results)
