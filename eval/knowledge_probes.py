"""Closed-form probes, on the validation split only, of ways the KG could earn its place (issue 22, part 2).

    python eval/knowledge_probes.py [--split eval/anchors/ml100k-recbole-split] [--out eval/results/knowledge]

Writes ``probes.md`` and ``probes.json`` to ``--out``. Two regimes, each with the views a KG could add to the
text-only model, every figure a validation Recall@20 (the test split is never read):

* **25% of training** (each user's training pairs thinned to a quarter with seed 2020, as the sparsity
  protocol draws them; valid pairs ranked, all training pairs masked): EASE alone, and EASE fused
  (``z(EASE) + β·z(view)``) with an item–item view over the text vectors or over KG entity profiles (each
  item's entities linked to ≥ 2 items, weighted by IDF or 1/degree; hubs dropped; only relations a person
  cares about), and a kernel ridge over users' text/KG profiles (the KG learnt into the interactions).
* **cold items** (the cold-start protocol's 10% cold items set aside, seed 2020, then 10% of the remaining
  items held out as *pseudo-cold* validation items, their train and valid pairs the targets, ranked among
  themselves): item-kNN over text and KG, a kernel ridge map from text/KG profiles to the items'
  interaction columns learnt on warm items, and a popularity prior learnt from text or text + KG.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from kerec.data import Split, cold_start_split, gnn_holdout, without_pairs
from kerec.gnn import Prepared, item_text_vectors, prepare
from kerec.gnn.item_head import ease_weights, interaction_matrix, item_gram, standardised
from kerec.metrics import evaluate_full_ranking

PEOPLE = ("director", "actor", "written_by", "writer", "produced_by", "producer", "cinematograph", "sequel",
          "prequel", "subject", "production_compan")


def recall20(scores: torch.Tensor, prepared: Prepared, target: np.ndarray, exclude: list[np.ndarray],
             only: torch.Tensor) -> float:
    ds = prepared.dataset
    return round(evaluate_full_ranking(lambda u: scores[u].masked_fill(~only, float("-inf")), num_users=ds.num_users,
                                       num_items=ds.num_items, target=target, exclude=exclude, ks=(20,))
                 .metrics["recall@20"], 4)


class Views:
    """Item side information as matrices: text vectors (centred, unit rows) and KG entity profiles."""

    def __init__(self, prepared: Prepared) -> None:
        ds, kg = prepared.dataset, prepared.graph_kg
        self.items = ds.num_items
        text = torch.tensor(item_text_vectors(ds, progress=False), dtype=torch.float32)
        self.text = torch.nn.functional.normalize(text - text.mean(0), dim=1)
        half = kg.num_relations // 2
        src, dst = kg.edge_index
        rel = kg.edge_type % half
        link = (src < self.items) & (dst >= self.items) & (dst < self.items + kg.num_entities)
        self.triples = torch.unique(torch.stack([src[link], rel[link], dst[link] - self.items], 1), dim=0)
        self.degree = torch.bincount(self.triples[:, 2], minlength=kg.num_entities).double()
        self.people = torch.tensor([any(p in r for p in PEOPLE) for r in kg.relations[:half]])
        self.entities, self.relations = kg.num_entities, half

    def kg(self, weight: str = "idf", *, max_degree: float | None = None, people: bool = False) -> torch.Tensor:
        """shape: (I, N) — unit rows over entities linked to ≥ 2 items, weighted by IDF or 1/degree."""
        t = self.triples[self.degree[self.triples[:, 2]] >= 2]
        if max_degree is not None:
            t = t[self.degree[t[:, 2]] <= max_degree]
        if people:
            t = t[self.people[t[:, 1]]]
        d = self.degree[t[:, 2]]
        w = torch.log(self.items / d) if weight == "idf" else 1.0 / d
        f = torch.zeros(self.items, self.entities)
        f[t[:, 0], t[:, 2]] = w.float()
        n = f.norm(dim=1, keepdim=True)
        return f / torch.where(n > 0, n, torch.ones_like(n))

    def fact_counts(self) -> torch.Tensor:
        """shape: (I, R') — standardised log(1 + facts per relation) of each item (relations it has at all)."""
        c = torch.zeros(self.items, self.relations)
        c.index_put_((self.triples[:, 0], self.triples[:, 1]), torch.ones(len(self.triples)), accumulate=True)
        c = torch.log1p(c)[:, c.sum(0) > 0]
        return (c - c.mean(0)) / c.std(0).clamp(min=1e-6)


def knn(x: torch.Tensor, f: torch.Tensor, *, diagonal: bool = False) -> torch.Tensor:
    sim = f @ f.T
    if not diagonal:
        sim.fill_diagonal_(0)
    return x @ sim


def user_kernel_ridge(x: torch.Tensor, f: torch.Tensor, lam: float) -> torch.Tensor:
    """Each user's interactions regressed on the users' profiles ``x f`` (dual form: a U×U solve)."""
    p = x @ f
    k = p @ p.T
    return k @ torch.linalg.solve(k + lam * k.diagonal().mean() * torch.eye(k.shape[0]), x)


def sparse_quarter(prepared: Prepared, views: Views) -> dict[str, object]:
    split, ds = prepared.split, prepared.dataset
    kept = without_pairs(split.train, gnn_holdout(split.train, fraction=0.75, seed=2020))
    x = interaction_matrix(kept, ds.num_users, ds.num_items).to_dense()
    allowed = torch.from_numpy(prepared.allowed_items)

    def valid(s: torch.Tensor) -> float:
        return recall20(s, prepared, split.valid, [split.train], allowed)
    gram = item_gram(kept, ds.num_users, ds.num_items)
    ease = {reg: x @ ease_weights(gram, reg) for reg in (50.0, 100.0, 200.0, 400.0, 800.0)}
    out: dict[str, object] = {"ease": {str(r): valid(s) for r, s in ease.items()}}
    best = max(ease, key=lambda r: out["ease"][str(r)])  # type: ignore[index]
    z_ease = standardised(ease[best])
    views_knn = {"text": views.text, "KG, IDF": views.kg("idf"), "KG, 1/degree": views.kg("inv"),
                 "KG, IDF, hubs (> 50 items) dropped": views.kg("idf", max_degree=50),
                 "KG, IDF, person/company/subject/sequel relations only": views.kg("idf", people=True)}
    fused: dict[str, dict[str, float]] = {}
    for name, f in views_knn.items():
        z = standardised(knn(x, f))
        fused[name] = {"alone": valid(z), **{f"β={b:g}": valid(z_ease + b * z) for b in (0.1, 0.25, 0.5, 1.0)}}
    z_text = standardised(knn(x, views.text))
    z_people = standardised(knn(x, views_knn["KG, IDF, person/company/subject/sequel relations only"]))
    fused["text (β=1) + people KG"] = {f"β={b:g}": valid(z_ease + z_text + b * z_people) for b in (0.0, 0.1, 0.25, 0.5)}
    ridge = {}
    for g in (0.0, 0.3, 0.6, 1.0):
        z = standardised(user_kernel_ridge(x, torch.cat([views.text, g * views.kg("idf")], 1), 100.0))
        ridge[f"text + {g:g}·KG"] = {"alone": valid(z), "fused with EASE (β=1)": valid(z_ease + z)}
    return {"ease_reg": best, **out, "item_knn_views": fused, "user_kernel_ridge_lambda100": ridge}


def cold_items(prepared: Prepared, views: Views) -> dict[str, object]:
    ds = prepared.dataset
    cold = cold_start_split(prepared.split, ds.num_items, fraction=0.1, seed=2020)
    # the pseudo-cold items' train and valid pairs are the targets: the test split is not read
    warm = Split(cold.warm.train, cold.warm.valid, np.zeros((0, 2), dtype=np.int64))
    inner = cold_start_split(warm, ds.num_items, fraction=0.1, seed=7)
    only = torch.zeros(ds.num_items, dtype=torch.bool)
    only[torch.from_numpy(inner.cold_items)] = True
    train = inner.warm.train
    x = interaction_matrix(train, ds.num_users, ds.num_items).to_dense()
    seen = torch.zeros(ds.num_items, dtype=torch.bool)
    seen[torch.from_numpy(np.unique(train[:, 1]))] = True

    def valid(s: torch.Tensor) -> float:
        return recall20(s, prepared, inner.cold_pairs, [], only)
    kg = {"KG, IDF": views.kg("idf"), "KG, 1/degree": views.kg("inv"),
          "KG, people relations": views.kg("idf", people=True)}
    out: dict[str, object] = {"pseudo_cold_items": int(inner.cold_items.size), "targets": int(len(inner.cold_pairs)),
                              "item_knn": {"text": valid(knn(x, views.text, diagonal=True)),
                                           **{n: valid(knn(x, f, diagonal=True)) for n, f in kg.items()},
                                           **{f"text + {b:g}·people KG": valid(x @ (views.text @ views.text.T + b * (
                                               kg["KG, people relations"] @ kg["KG, people relations"].T)))
                                              for b in (0.25, 0.5, 1.0)}}}

    def kernel_map(k: torch.Tensor, lam: float) -> torch.Tensor:  # interaction columns of warm items → cold ones
        a = torch.linalg.solve(k[seen][:, seen].double() + lam * torch.eye(int(seen.sum()), dtype=torch.float64),
                               k[seen].double())
        return (x[:, seen].double() @ a).float()
    maps = {}
    for name, (a, b) in {"text": (1.0, 0.0), "KG": (0.0, 1.0), "text + 0.5·KG": (1.0, 0.5), "text + KG": (1.0, 1.0)}.items():
        k = a * (views.text @ views.text.T) + b * (kg["KG, IDF"] @ kg["KG, IDF"].T)
        maps[name] = {f"λ={lam:g}": valid(kernel_map(k, lam)) for lam in (1.0, 10.0, 100.0)}
    out["kernel_ridge_map"] = maps
    pop = torch.log1p(torch.bincount(torch.from_numpy(train[:, 1]), minlength=ds.num_items).float())

    def prior(f: torch.Tensor) -> torch.Tensor:  # log popularity learnt from side information on warm items
        a, y = f[seen], pop[seen] - pop[seen].mean()
        w = torch.linalg.solve(a.T @ a + 10.0 * torch.eye(a.shape[1]), a.T @ y)
        p = f @ w
        return (p - p[only].mean()) / p[only].std()
    z_text = standardised(knn(x, views.text, diagonal=True))
    text_prior, kg_prior = prior(views.text), prior(torch.cat([views.text, views.fact_counts()], 1))
    out["text_knn_plus_learnt_popularity"] = {
        f"β={b:g}": {"prior from text": valid(z_text + b * text_prior), "prior from text + KG fact counts": valid(z_text + b * kg_prior)}
        for b in (0.0, 0.25, 0.5, 1.0)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="eval/anchors/ml100k-recbole-split")
    parser.add_argument("--out", default="eval/results/knowledge")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    prepared = prepare(None, split=args.split)
    views = Views(prepared)
    results = {"split": args.split, "sparse_25": sparse_quarter(prepared, views), "cold_items": cold_items(prepared, views)}
    results["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "probes.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (out / "probes.md").write_text(render(results), encoding="utf-8")
    print(render(results))


def render(r: dict[str, object]) -> str:
    lines = ["# KG probes on validation (`python eval/knowledge_probes.py`)", "",
             "Validation Recall@20 only; see the script's docstring for the protocol.", "", "```json",
             json.dumps({k: v for k, v in r.items()}, indent=1), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
