"""``report.md`` from ``results.json``'s content: headline, tables, the command and config, the machine."""
from __future__ import annotations

from typing import Any

import yaml

from kerec.eval.candidates import CANDIDATE_METRICS
from kerec.eval.command import describe_code
from kerec.eval.config import LABELS
from kerec.eval.regime_report import regimes_of
from kerec.metrics.stats import fmt


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows), ""]


def _cell(per_seed: dict[str, Any], key: str) -> str:
    values = [m[key] for m in per_seed.values() if m.get(key) is not None]
    return fmt(values) if values else "–"


def render_markdown(r: dict[str, Any]) -> str:
    cfg = r["config"]
    seeds = cfg["seeds"]
    lines = [f"# Evaluation `{r['name']}`", "",
             f"Dataset `{cfg['dataset']['path']}`, split `{cfg['dataset']['split']}`; seeds {', '.join(map(str, seeds))} "
             f"(mean ± sample std over seeds where more than one); test split scored once per system and seed, "
             f"model selection on validation only. Wall time {r['wall_seconds'] / 60:.1f} min ("
             + ", ".join(f"{k} {v / 60:.1f}" for k, v in r.get("phase_seconds", {}).items())
             + "; each protocol's time includes training the retrievers it is the first to need).", "", "## Headline", ""]
    lines += [f"- {h}" for h in r.get("headline", [])] or ["- (no comparison in this config)"]
    lines.append("")
    if "full" in r:
        lines += _full(r)
    if "candidates" in r:
        lines += _candidates(r)
    if "explain" in r:
        lines += _explain(r["explain"])
    if "cold_start" in r:
        lines += _cold(r["cold_start"])
    lines += regime_sections(r)
    lines += _training(r)
    if r.get("plots"):
        lines += ["## Plots", ""] + [f"![{name}]({path})" for name, path in r["plots"].items()] + [""]
    env = r["environment"]
    lines += ["## How this was made", "", f"Command: `{r['command']}`", "",
              f"Machine: {env['cpu']}, {env['cores']} cores, {_threads(cfg)}; {env['platform']}; "
              f"Python {env['python']}; code: {_code(env)}.", "",
              "Packages: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v) + ".", "",
              f"Config (`{r.get('config_file') or '-'}`):", "", "```yaml",
              yaml.safe_dump(cfg, sort_keys=False).rstrip(), "```", ""]
    return "\n".join(lines)


def _code(env: dict[str, Any]) -> str:
    if "code" in env:
        return describe_code(env["code"])
    return f"git {env.get('git_commit')} (recorded before reports said whether the tree was clean)"


def _full(r: dict[str, Any]) -> list[str]:
    full = r["full"]
    systems = list(full["per_seed"])
    keys = [k for k in next(iter(full["per_seed"][systems[0]].values())) if "@" in k]
    lines = ["## Full ranking (test)", "",
             f"All recommendable items ranked, train and valid items masked; "
             f"{next(iter(full['per_seed'][systems[0]].values()))['users']} users.", ""]
    rows = [[LABELS.get(s, s), *(_cell(full["per_seed"][s], k) for k in keys)] for s in systems]
    for a in r.get("anchors", []):
        rows.append([a["name"] + (f" [{a['time_capped']} time-capped]" if a["time_capped"] else ""),
                     *(fmt_pair(a["metrics"].get(k)) for k in keys)])
    lines += _table(["system", *keys], rows)
    if r.get("anchors"):
        lines += ["RecBole rows: RecBole 1.2.1's own BPR/LightGCN/… run on this identical split (same sha256 of the split "
                  "files), read from " + ", ".join(sorted({f"`{a['folder']}`" for a in r["anchors"]})) + "; not re-run here.", ""]
    sig = r.get("significance") or []
    if sig:
        lines += ["### Paired test of the main claim", "",
                  f"{LABELS.get(sig[0]['a'], sig[0]['a'])} vs {LABELS.get(sig[0]['b'], sig[0]['b'])}: per-user differences "
                  f"averaged over the {sig[0]['seeds']} seed(s) (same-seed pairs), then a two-sided {sig[0]['test']} test "
                  "over users (see kerec/metrics/stats.py).", ""]
        lines += _table(["metric", "a", "b", "a − b", "p", "users a better / worse"],
                        [[t["metric"], f"{t['mean_a']:.4f}", f"{t['mean_b']:.4f}", f"{t['mean_diff']:+.4f}",
                          f"{t['p_value']:.3g}", f"{t['a_wins']} / {t['b_wins']}"] for t in sig])
    sl = r.get("slices") or {}
    if sl:
        lines += ["### Slices", "",
                  f"Sparse users (≤ {sl['sparse_max_train']} training interactions): {sl['sparse_users']} users."]
        if sl["sparse_users"]:
            lines += [""] + _table(["system", *keys], [[LABELS.get(s, s), *(_num(v.get(k)) for k in keys)]
                                                      for s, v in sl["sparse"].items()])
        else:
            lines += ["(none in this split, so no sparse-user row; the activity buckets below show the least active users.)", ""]
        last = [k for k in keys if k.startswith("recall@")][-1:] or keys[-1:]
        last = last[0]
        head = [f"{b['min_train']}–{b['max_train']} ({b['users']} users)" for b in sl["buckets"]]
        lines += [f"{last} by training interactions per user (equal-size buckets):", ""]
        lines += _table(["system", *head], [[LABELS.get(s, s), *(_num(x) for x in v[last])]
                                            for s, v in sl["by_bucket"].items()])
    return lines


def fmt_pair(pair: list[float] | None) -> str:
    if pair is None:
        return "–"
    return f"{pair[0]:.4f}" + (f" ± {pair[1]:.4f}" if pair[1] else "")


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.4f}"


def _candidates(r: dict[str, Any]) -> list[str]:
    c = r["candidates"]
    cfg = r["config"]["protocols"]["candidates"]
    lines = ["## 20-candidate protocol (test)", "",
             f"The held-out item plus {cfg['negatives']} never-seen items, shuffled; every retriever system on every "
             "held-out user. ValidRatio is 1 by construction (score-based ranking; letter scoring for the LLM).", ""]
    rows = [[LABELS.get(s, s), *(_cell(per, m) for m in CANDIDATE_METRICS), str(next(iter(per.values()))["users"])]
            for s, per in c["all_users"].items()]
    lines += _table(["system", "ACC", "Recall@3", "Recall@5", "ValidRatio", "users"], rows)
    for variant, systems in c.get("llm_stage", {}).items():
        lines += [f"### LLM stage, {variant}", "",
                  f"Sampled test users (seeds {', '.join(next(iter(systems.values())).keys())}); the LLM scores the "
                  f"letters of the candidates; the facts are the {LABELS.get(cfg['retriever'], cfg['retriever'])}'s KG "
                  "evidence, given as text (`[n] fact` lines, the candidates named) and/or through the graph soft "
                  "prompt. A tuned row keeps its recipe's prompt otherwise; a compact-prompt recipe (cpu-tiny) never "
                  "saw titles or fact lines in training, so its facts-as-text rows measure that shift.", ""]
        rows = [[LABELS.get(s, s), *(_cell(per, m) for m in CANDIDATE_METRICS), str(next(iter(per.values()))["users"]),
                 _vs(per)] for s, per in systems.items()]
        lines += _table(["system", "ACC", "Recall@3", "Recall@5", "ValidRatio", "users", "ACC vs GNN: p (wins/losses)"], rows)
        vs = [(seed, m["vs_recency"]) for seed, m in systems.get("fused", {}).items() if m.get("vs_recency")]
        if vs:
            lines += ["GNN + LLM fused vs GNN + recency, no LLM (ACC, paired over the users): " + "; ".join(
                f"seed {seed} {t['test']} p = {t['p_value']:.3g} ({t['wins']}/{t['losses']})" for seed, t in vs), ""]
    for seed, f in c.get("fusion", {}).items():
        if f.get("weight") is not None:
            sweep = " · ".join(f"w={w}: {v:.3f}" for w, v in f.get("sweep", {}).items())
            lines += [f"Fusion (seed {seed}): weight **{f['weight']}** ({f['chosen_on']}) with {f['llm']}. {sweep}", ""]
        if f.get("recency_weight") is not None:
            sweep = " · ".join(f"w={w}: {v:.3f}" for w, v in f.get("recency_sweep", {}).items())
            lines += [f"GNN + recency, no LLM (seed {seed}): weight **{f['recency_weight']}** ({f['recency_chosen_on']}; "
                      f"{f['recency_items']} most recent training items). {sweep}", ""]
    return lines


def _vs(per_seed: dict[str, Any]) -> str:
    tests = [m["vs_gnn"] for m in per_seed.values() if m.get("vs_gnn")]
    return "; ".join(f"{t['p_value']:.3g} ({t['wins']}/{t['losses']})" for t in tests) or "–"


def _explain(e: dict[str, Any]) -> list[str]:
    rate = lambda v: "–" if v is None else f"{v:.2%}"  # noqa: E731
    lines = ["## Explanations and latency", "",
             f"`recommend(user, {e['k']})` with the LLM for {e['users']} test users (seed {e['seed']}, fusion weight "
             f"{e['fusion_weight']}), one call each.", "",
             f"- LLM explanations passing the grounding check: {rate(e['llm_grounding_rate'])} of {e['llm_generations']} generations",
             f"- templated fallback rate (items with evidence): {rate(e['fallback_rate'])}; sources {e['sources']}",
             *([f"- why LLM explanations were rejected: " + "; ".join(f"{kind} {n}" for kind, n in e["rejections"].items())]
               if e.get("rejections") else []),
             *[f"  - e.g. {_md_quote(t)}" for t in e.get("rejected_examples", [])[:3]],
             f"- cited facts of the shown explanations found in the store and linking the history: "
             f"{rate(e['shown_grounded_share'])} of {e['shown_cited_facts']}"]
    if e.get("all_users"):
        a = e["all_users"]
        lines.append(f"- all {a['users']} test users, top {a['k']} from the GNN with templated explanations (no LLM): "
                     f"cited facts found in the store and linking the history: {rate(a['grounded_share'])} of "
                     f"{a['cited_facts']} ({a['items_with_evidence']} of {a['explanations']} items had evidence)"
                     + (f"; users with an ungrounded citation: {', '.join(a['ungrounded_users'])}" if a["ungrounded_users"] else ""))
    lines.append("")
    ms = lambda v: f"{v:.1f}" if v < 10 else f"{v:.0f}"  # noqa: E731
    lines += _table(["stage", "p50 ms", "p95 ms"], [[s, ms(v["p50"]), ms(v["p95"])]
                                                   for s, v in e["latency_ms"].items() if v])
    return lines


def _md_quote(text: str, limit: int = 240) -> str:
    """One line of ``text`` fit for a markdown list: newlines, pipes and backticks neutralised, shortened."""
    text = " ".join(text.split()).replace("|", "/").replace("`", "'")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cold(c: dict[str, Any]) -> list[str]:
    lines = ["## Cold-start items (text + KG only)", "",
             f"{c['fraction']:.0%} of the items ({c.get('cold_items', '?')}) set aside with all their interactions; the "
             "retrained model ranks only them, their ID embeddings zeroed (as `kerec eval retriever`).", ""]
    rows = []
    for system, per_seed in c["systems"].items():
        for name in ("model", "popularity", "random"):
            vals = {k: [s[name][k] for s in per_seed.values()] for k in ("recall@10", "recall@20", "ndcg@20")}
            rows.append([f"{LABELS.get(system, system)}: {name}", *(fmt(v) for v in vals.values()),
                         str(next(iter(per_seed.values()))[name]["users"])])
    gain = [_kg_gain_table(c["kg_gain"])] if c.get("kg_gain") else []
    return lines + _table(["system", "recall@10", "recall@20", "ndcg@20", "users"], rows) + sum(gain, [])


def _kg_gain_table(tests: dict[str, Any]) -> list[str]:
    return _table(["metric", "with KG", "without", "ratio", "p", "users better / worse"],
                  [[t["metric"], f"{t['mean_a']:.4f}", f"{t['mean_b']:.4f}",
                    f"{t['mean_a'] / t['mean_b']:.3f}" if t["mean_b"] else "–", f"{t['p_value']:.3g} ({t['test']})",
                    f"{t['a_wins']} / {t['b_wins']}"] for t in tests.values()])


def regime_sections(r: dict[str, Any]) -> list[str]:
    found = regimes_of(r)
    if not found:
        return []
    lines = ["## Regimes where knowledge should matter", "",
             "Each system retrained under the regime where its training data change (every choice on that regime's "
             "validation split), scored once on the test pairs the regime names; the KG gain is kerec (text + KG) "
             "against kerec without KG (text kept), per-user differences averaged over seeds, then a paired test "
             "(kerec/metrics/stats.py).", ""]
    for title, description, res in found:
        lines += [f"### {title[0].upper() + title[1:]}", "", description + ".", ""]
        systems = list(res["per_seed"])
        keys = [k for k in next(iter(res["per_seed"][systems[0]].values())) if "@" in k]
        rows = [[LABELS.get(s, s), *(fmt([m[k] for m in res["per_seed"][s].values()]) for k in keys),
                 str(next(iter(res["per_seed"][s].values()))["users"])] for s in systems]
        lines += _table(["system", *keys, "users"], rows)
        if res.get("kg_gain"):
            lines += _kg_gain_table(res["kg_gain"])
    return lines


def _training(r: dict[str, Any]) -> list[str]:
    t = r.get("training") or {}
    if not t:
        return []
    rows = [[LABELS.get(s.split(" (")[0], s) + (f" ({s.split(' (', 1)[1]}" if " (" in s else ""),
             ", ".join((f"{v['best_epoch']}/{v['epochs_run']}" + (" ⚠ last" if v["best_epoch"] == v["epochs_run"] else ""))
                       if v["epochs_run"] else "closed form" for v in per.values()),
             f"{sum(v['seconds_per_epoch_median'] for v in per.values()) / len(per):.2f}",
             f"{sum(v['fit_seconds'] for v in per.values()) / len(per) / 60:.1f}",
             ", ".join(f"{h['reg']:g} / {h['weight']:g}" for v in per.values() if (h := v.get("item_head"))) or "–",
             ", ".join(f"`{v['tensorboard']}`" for v in per.values())] for s, per in t.items()]
    return ["## Training cost", "", "TensorBoard: `tensorboard --logdir " + r["work"] + "/retrievers`; "
            "⚠ last: the best validation epoch was the last one run (still improving: under-trained).", ""] + _table(
        ["system", "epochs (best/run)", "s/epoch (median)", "fit min (mean)", "item head λ / weight (on valid)",
         "TensorBoard events"], rows)


def _threads(cfg: dict[str, Any]) -> str:
    threads, workers = cfg.get("threads", 1), cfg.get("workers", 1)
    if workers > 1:
        return (f"retrievers trained {workers} at a time with {threads} torch thread(s) each, then "
                f"{threads * workers} torch threads")
    return f"{threads} torch thread(s)"
