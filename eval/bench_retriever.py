"""Side-by-side retriever benchmark: kerec's models and ablations next to RecBole 1.2.1 on one split.

    .venv/bin/python eval/bench_retriever.py --split eval/anchors/ml100k-recbole-split
    .venv/bin/python eval/bench_retriever.py --split runs/split --export-split   # kerec's own 8:1:1 split

Steps, each resumable (finished runs are kept as JSON and skipped):

1. ``--export-split``: write kerec's per-user random 8:1:1 split of the embedded ml-100k (KG-linked items,
   RecBole's KG-model protocol) to ``--split`` as TSV; otherwise ``--split`` must already hold one.
2. ``--recbole MODEL…``: run RecBole's models on that identical split through ``eval/recbole/run_recbole.py``
   in RecBole's own venv (``bash eval/recbole/setup.sh``), results under ``--recbole-out``.
3. kerec's systems (``--systems``), 3 seeds each: trained with early stopping on valid NDCG@10, then the
   test split is evaluated once on the best epoch. One JSON per (system, seed) under ``--out``.
4. The table: mean ± std over seeds of test Recall/NDCG@10/20, seconds per epoch, epochs, for every
   kerec system and every RecBole result found, written to ``--out``/table.md and table.json.

Several processes may run it at once on the same ``--out`` (a lock file per run keeps them apart).
Seconds per epoch are medians over a run's epochs, with ``--threads`` torch threads (RecBole is run with
the same number), so both sides are timed alike; the table says what else shared the machine.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kerec.eval.command import recorded_command
from kerec.eval.config import RETRIEVER_SYSTEMS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")

# system name -> (RetrieverSpec overrides, TrainConfig overrides), as `kerec eval --config` defines them;
# "random" is the harness's own row, not a trained system.
SYSTEMS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    name: overrides for name, overrides in RETRIEVER_SYSTEMS.items() if name != "random"}


LABELS = {"pop": "Pop", "bpr": "BPR-MF (kerec's trainer)", "lightgcn": "LightGCN (PyG, kerec's trainer)",
          "ease": "EASE (closed form, kerec's evaluator)",
          "kerec": "kerec: text + KG, L_R + λ_K·L_K", "kerec-no-kg": "kerec without KG (text only)",
          "kerec-no-text": "kerec without text (KG only)", "kerec-no-lk": "kerec without L_K (λ_K = 0)"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--split", type=Path, required=True, help="folder with train.tsv/valid.tsv/test.tsv")
    p.add_argument("--export-split", action="store_true", help="write kerec's own random 8:1:1 split to --split first")
    p.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    p.add_argument("--seeds", nargs="+", type=int, default=[2020, 2021, 2022])
    p.add_argument("--config", type=Path, default=HERE / "configs" / "retriever.yaml",
                   help="YAML (model:/train:) every kerec system starts from; systems override parts of it")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (RecBole gets the same)")
    p.add_argument("--recbole", nargs="*", default=[], metavar="MODEL",
                   help="RecBole models to run on the split first (BPR LightGCN CKE KGAT KGIN)")
    p.add_argument("--recbole-out", nargs="+", type=Path,
                   default=[ROOT / "eval" / "results" / "recbole", ROOT / "eval" / "results" / "recbole-patience50"],
                   help="folders of RecBole result JSONs to put in the table (the first receives --recbole runs)")
    p.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "retriever")
    p.add_argument("--also", nargs="*", type=Path, default=[], metavar="DIR",
                   help="earlier --out folders on the same split: their runs of systems absent from --out join the "
                        "table, tagged with the folder's name (e.g. baselines trained with the same settings)")
    p.add_argument("--note", default="", help="a line for the table about what else ran on the machine")
    p.add_argument("--table-only", action="store_true", help="only rebuild the table from the JSONs found")
    return p.parse_args(argv)


def run_kerec(args: argparse.Namespace, system: str, seed: int) -> dict[str, Any]:
    import torch

    from kerec.gnn import (evaluate_embeddings, item_text_vectors, load_config, popularity, prepare,
                                 system_settings, train_retriever)

    torch.set_num_threads(args.threads)
    prepared = prepare(split=str(args.split), seed=seed)
    spec_over, train_over = SYSTEMS[system]
    if system == "pop":
        return {"system": system, "seed": seed, "test": popularity(prepared, "test").metrics,
                "valid": popularity(prepared, "valid").metrics, "epochs_run": 0, "best_epoch": 0,
                "seconds_per_epoch_median": 0.0}
    spec, config = system_settings(*load_config(args.config), spec_over, {**train_over, "seed": seed})
    text = item_text_vectors(prepared.dataset, progress=False) if spec.model == "kerec" and spec.use_text else None
    started = time.perf_counter()
    model, graph, state = train_retriever(prepared, spec, config, item_text=text, progress=True)
    fit = time.perf_counter() - started
    model.eval()
    with torch.no_grad():  # the one look at the test split (every setting was chosen on validation)
        emb = model(graph)
        valid = evaluate_embeddings(emb, prepared, "valid").metrics  # the final model's (with the head, fused)
        test = evaluate_embeddings(emb, prepared, "test").metrics
        # With the item head, the GNN's own figures too (reported beside, chosen by nothing).
        gnn = evaluate_embeddings(emb.without_head(), prepared, "test").metrics \
            if emb.head is not None and spec.model == "kerec" else None
    seconds = [h.seconds for h in state.history]
    return {"system": system, "seed": seed, "spec": asdict(spec), "train": config.to_dict(),
            "best_epoch": state.best_epoch, "epochs_run": len(state.history),
            "valid": valid, "test": test, "test_gnn_alone": gnn, "item_head": state.post.get("item_head"),
            "seconds_per_epoch_median": statistics.median(seconds) if seconds else 0.0, "fit_seconds": fit}


def environment(threads: int) -> dict[str, Any]:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "threads": threads,
            "cpu_count": __import__("os").cpu_count(), "platform": platform.platform()}


def export_split(folder: Path, seed: int) -> None:
    from kerec.data import load_dataset, random_split, save_split

    ds = load_dataset().with_linked_items_only()
    save_split(random_split(ds, seed=seed), ds, folder)


def run_recbole(args: argparse.Namespace) -> None:
    python = ROOT / "eval" / "recbole" / ".venv" / "bin" / "python"
    if not python.is_file():
        raise SystemExit(f"RecBole's venv is missing ({python}); run `bash eval/recbole/setup.sh` first")
    cmd = [str(python), str(ROOT / "eval" / "recbole" / "run_recbole.py"), "--split", str(args.split),
           "--models", *args.recbole, "--seeds", *map(str, args.seeds), "--threads", str(args.threads),
           "--out", str(args.recbole_out[0])]
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"


def table(args: argparse.Namespace) -> str:
    rows: list[dict[str, Any]] = []
    for folder in args.recbole_out:
        for model in ("BPR", "LightGCN", "CKE", "KGAT", "KGIN"):
            runs = [json.loads(p.read_text()) for p in sorted(folder.glob(f"{model}-seed*.json"))]
            if runs:
                tag = "" if folder == args.recbole_out[0] else f" ({folder.name})"
                rows.append(_row(f"RecBole {model}{tag}", runs, capped=sum(r.get("time_capped", False) for r in runs)))
    for system in SYSTEMS:
        for folder in [args.out, *args.also]:
            runs = [json.loads(p.read_text()) for p in sorted(folder.glob(f"{system}-seed*.json"))]
            if runs:
                rows.append(_row(LABELS[system] + ("" if folder == args.out else f" ({folder.name})"), runs))
                break
    header = ["system", "runs", *METRICS, "GNN alone: recall@20 / ndcg@20", "head λ / weight", "s/epoch",
              "epochs (best/run)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append("| " + " | ".join([r["name"], str(r["runs"]), *r["cells"], r["gnn"], r["head"], r["seconds"],
                                        r["epochs"]]) + " |")
    (args.out / "table.json").write_text(json.dumps(rows, indent=2) + "\n")
    return "\n".join(lines)


def _row(name: str, runs: list[dict[str, Any]], capped: int = 0) -> dict[str, Any]:
    cells = [mean_std([r["test"][m] for r in runs]) for m in METRICS]
    secs = statistics.median(r["seconds_per_epoch_median"] for r in runs)
    epochs = ", ".join(f"{r['best_epoch']}/{r['epochs_run']}" if r["epochs_run"] else
                       ("closed form" if r.get("item_head") else "–") for r in runs)
    alone = [r["test_gnn_alone"] for r in runs if r.get("test_gnn_alone") and r["spec"]["model"] == "kerec"]
    gnn = (f"{mean_std([a['recall@20'] for a in alone])} / {mean_std([a['ndcg@20'] for a in alone])}"
           if len(alone) == len(runs) else "–")
    heads = [r["item_head"] for r in runs if r.get("item_head")]
    head = ", ".join(f"{h['reg']:g} / {h['weight']:g}" for h in heads) if heads else "–"
    return {"name": name + (f" [{capped} time-capped]" if capped else ""), "runs": len(runs), "cells": cells,
            "gnn": gnn, "head": head, "seconds": f"{secs:.2f}" if secs else "–", "epochs": epochs,
            "mean": {m: statistics.fmean(r["test"][m] for r in runs) for m in METRICS}, "seeds": [r["seed"] for r in runs]}


def _claim(target: Path) -> bool:
    """Take ``<target>.lock`` (atomically), so that several processes can share one benchmark; a stale
    lock from a killed run is removed by hand."""
    import os

    try:
        os.close(os.open(target.with_suffix(".lock"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        if args.export_split:
            export_split(args.split, args.seeds[0])
        if args.recbole:
            run_recbole(args)
        for system in args.systems:
            for seed in args.seeds:
                target = args.out / f"{system}-seed{seed}.json"
                if target.is_file():
                    print(f"[kerec] {target.name} exists: skipped", flush=True)
                    continue
                if not _claim(target):
                    print(f"[kerec] {target.name} is being made by another process: skipped", flush=True)
                    continue
                print(f"[kerec] === {system} seed {seed} ===", flush=True)
                record = run_kerec(args, system, seed)
                record.update(split=str(args.split), environment=environment(args.threads),
                              finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
                target.write_text(json.dumps(record, indent=2) + "\n")
                target.with_suffix(".lock").unlink(missing_ok=True)
                print(f"[kerec] {system} seed {seed}: test " +
                      ", ".join(f"{m} {record['test'][m]:.4f}" for m in METRICS), flush=True)
    text = table(args)
    command = recorded_command("python eval/bench_retriever.py", argv)
    md = (f"# Retriever benchmark: kerec next to RecBole 1.2.1 on one split\n\nSplit: `{args.split}`. "
          f"Test metrics, full ranking, mean ± std over seeds; selection on valid NDCG@10.\n"
          f"Made by: `{command}`\n\n{text}\n\n{args.note}\n")
    (args.out / "table.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
