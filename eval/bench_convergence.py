"""Training to convergence at one size: kerec's retriever on a dataset folder, early-stopped on validation.

    python eval/bench_convergence.py --data DIR [--budget 3600] [--out eval/results/convergence]

Issue 23's target: a 100,000-item, 5,000,000-interaction, 2,000,000-triple dataset (``kerec data synth --users
50000 --items 100000 --interactions 5000000 --triples 2000000``) trains to convergence in at most 60 minutes
on 2 cores with peak memory at most 16 GiB. This runs that training once, end to end, and records what
happened rather than projecting it from a few steps:

* reading, the per-user 8:1:1 split (seed 2020), the KG export (:func:`kerec.kg.ckg_tensors`) and the
  training graph, each timed;
* kerec's retriever (KG on, text input off: text encoding is a stage of its own in eval/bench_scale.py),
  L_R the in-batch softmax with logQ correction (a full softmax over 10⁵ items costs a (batch × items)
  logit matrix per step) in groups of ``--group`` rows, batches of ``--batch-size``;
* after every epoch, validation (NDCG@10, the selection metric) on ``--eval-users`` users drawn once
  (seed 0); early stopping after ``--patience`` epochs without improvement, the best epoch's weights kept.
  "converged" means early stopping ended the run; a run cut by ``--budget`` seconds of training or by
  ``--epochs`` says so;
* the test split, read once at the end, on the same users: Recall@20 and NDCG@10 of the best epoch's model
  and of popularity;
* peak resident memory (``ru_maxrss``) after each stage.

Writes ``results.json`` and ``table.md`` under ``--out`` with the command, the commit and whether the tree
was clean.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

from kerec.eval.command import code_state, recorded_command


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="dataset folder (RecBole atomic files, e.g. from kerec data synth)")
    p.add_argument("--batch-size", type=int, default=16384)
    p.add_argument("--group", type=int, default=4096, help="in-batch softmax group (TrainConfig.inbatch_group)")
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--temperature", type=float, default=0.5)
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--budget", type=int, default=3600, help="seconds of training before the run is cut")
    p.add_argument("--eval-users", type=int, default=10000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="eval/results/convergence")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from kerec.data import Split, load_dataset, random_split
    from kerec.gnn import Prepared, RetrieverSpec
    from kerec.gnn.pipeline import _build, build_graph, evaluate_embeddings, popularity
    from kerec.gnn.train import TrainConfig, TrainState, train
    from kerec.kg.ckg import ckg_tensors

    command = recorded_command("python eval/bench_convergence.py", argv)
    code = code_state()
    stages: dict[str, dict[str, float]] = {}
    start = time.perf_counter()

    def stage(name: str, t0: float) -> None:
        stages[name] = {"seconds": time.perf_counter() - t0, "peak_gib": _peak_gib()}
        print(name, stages[name], flush=True)

    t0 = time.perf_counter()
    ds = load_dataset(args.data)
    stage("read", t0)
    t0 = time.perf_counter()
    split = random_split(ds, seed=2020)
    users = np.unique(split.valid[:, 0])
    sample = np.sort(np.random.default_rng(0).choice(users, size=min(args.eval_users, len(users)), replace=False))
    split = Split(split.train, split.valid[np.isin(split.valid[:, 0], sample)],
                  split.test[np.isin(split.test[:, 0], sample)], protocol=split.protocol)
    stage("split", t0)
    t0 = time.perf_counter()
    prepared = Prepared(ds, split, ckg_tensors(ds), np.ones(ds.num_items, dtype=bool))
    stage("kg_export", t0)
    t0 = time.perf_counter()
    spec = RetrieverSpec(item_head=False, use_text=False)
    graph = build_graph(prepared, spec, None)
    stage("graph", t0)

    config = TrainConfig(loss="inbatch", temperature=args.temperature, batch_size=args.batch_size,
                         inbatch_group=args.group, lr=args.lr, patience=args.patience, epochs=args.epochs)
    torch.manual_seed(config.seed)
    model = _build(spec, graph)
    valid_seconds: list[float] = []
    cut: dict[str, bool] = {"budget": False}
    t_train = time.perf_counter()
    deadline = t_train + args.budget

    def validate(emb: object) -> dict[str, float]:
        t = time.perf_counter()
        out = evaluate_embeddings(emb, prepared, "valid").metrics  # type: ignore[arg-type]
        valid_seconds.append(time.perf_counter() - t)
        return out

    def progress(state: TrainState, log: object) -> None:
        print(f"epoch {log.epoch}: {log.seconds:.0f} s, loss {log.loss:.4f}, valid "  # type: ignore[attr-defined]
              f"{log.valid.get(config.select_metric, float('nan')):.4f}, {time.perf_counter() - t_train:.0f} s in, "  # type: ignore[attr-defined]
              f"peak {_peak_gib():.1f} GiB", flush=True)
        if time.perf_counter() > deadline and not state.stop:
            state.stop = cut["budget"] = True

    state = train(model, graph, config, validate=validate, callbacks=[progress], progress=False)
    train_seconds = time.perf_counter() - t_train
    stages["train"] = {"seconds": train_seconds, "peak_gib": _peak_gib()}
    epochs = len(state.history)
    converged = not cut["budget"] and epochs < config.epochs
    model.eval()
    with torch.no_grad():
        test = evaluate_embeddings(model(graph), prepared, "test").metrics
    pop = popularity(prepared, "test").metrics
    result = {
        "command": command, "code": code, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {args.threads}",
        "sizes": {"users": ds.num_users, "items": ds.num_items, "interactions": len(ds.interactions.pairs()),
                  "train_pairs": len(split.train), "kg_triples": int(graph.kg_triples.shape[0]),
                  "eval_users": int(len(sample))},
        "config": config.to_dict(), "stages": stages,
        "epochs_run": epochs, "best_epoch": state.best_epoch, "best_valid_ndcg10": state.best_score,
        "converged": converged, "cut_by_budget": cut["budget"],
        "epoch_seconds_median": float(np.median([h.seconds for h in state.history])),
        "validation_seconds_median": float(np.median(valid_seconds)) if valid_seconds else None,
        "history": [{"epoch": h.epoch, "seconds": h.seconds, "loss": h.loss, "valid": h.valid} for h in state.history],
        "test": {"kerec": {k: test[k] for k in ("recall@20", "ndcg@10")}, "pop": {k: pop[k] for k in ("recall@20", "ndcg@10")}},
        "end_to_end_seconds": time.perf_counter() - start, "peak_gib": _peak_gib(),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    write_table(out / "table.md", result)


def write_table(path: Path, r: dict) -> None:
    s = r["sizes"]
    ended = ("early stopping (converged)" if r["converged"] else
             "the time budget (not converged)" if r["cut_by_budget"] else "the epoch cap (not converged)")
    lines = [f"# Training to convergence ({r['machine']})", "", f"`{r['command']}`, {r['date']}.", "",
             f"Data: {s['users']:,} users, {s['items']:,} items, {s['interactions']:,} interactions "
             f"({s['train_pairs']:,} training pairs), {s['kg_triples']:,} KG triples; validation and test on "
             f"{s['eval_users']:,} users. Loss: in-batch softmax with logQ correction, batch "
             f"{r['config']['batch_size']:,} in groups of {r['config']['inbatch_group']:,}, lr {r['config']['lr']}, "
             f"temperature {r['config']['temperature']}, patience {r['config']['patience']}.", "",
             f"**Training ended by {ended}: {r['epochs_run']} epochs, best epoch {r['best_epoch']}, "
             f"{r['stages']['train']['seconds'] / 60:.1f} min of training, {r['end_to_end_seconds'] / 60:.1f} min end to "
             f"end, peak memory {r['peak_gib']:.1f} GiB.**", "",
             "| stage | seconds | peak GiB |", "|---|---|---|"]
    lines += [f"| {k} | {v['seconds']:,.1f} | {v['peak_gib']:.1f} |" for k, v in r["stages"].items()]
    lines += ["", "| epoch | seconds | loss | valid NDCG@10 |", "|---|---|---|---|"]
    lines += [f"| {h['epoch']} | {h['seconds']:.0f} | {h['loss']:.4f} | {h['valid'].get('ndcg@10', float('nan')):.4f} |"
              for h in r["history"]]
    t = r["test"]
    lines += ["", f"Median epoch {r['epoch_seconds_median']:.0f} s, validation {r['validation_seconds_median'] or 0:.0f} s "
              "(not in the epoch's seconds).", "",
              "Test split, read once (the best epoch's model):", "",
              "| system | Recall@20 | NDCG@10 |", "|---|---|---|",
              f"| kerec | {t['kerec']['recall@20']:.4f} | {t['kerec']['ndcg@10']:.4f} |",
              f"| popularity | {t['pop']['recall@20']:.4f} | {t['pop']['ndcg@10']:.4f} |"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
