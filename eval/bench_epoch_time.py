"""Seconds per training epoch, kerec's retriever next to RecBole's KGAT, timed back to back on one machine.

    .venv/bin/python eval/bench_epoch_time.py --split eval/anchors/ml100k-recbole-split

Both train a few epochs on the same split with the same number of torch threads (1 by default) and the
same batch size (4096), one after the other, so neither shares the machine with the other; the median
time of an epoch's training steps is reported (validation excluded on both sides).
Run it on an otherwise idle machine: the table records the load average at the start and the end.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--split", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=5, help="kerec epochs (RecBole: --recbole-epochs)")
    p.add_argument("--recbole-epochs", type=int, default=3)
    p.add_argument("--recbole-models", nargs="+", default=["KGAT"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--config", type=Path, default=ROOT / "eval" / "configs" / "retriever-head.yaml",
                   help="kerec's settings (model:/train: YAML)")
    p.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "epoch_time")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()

    import torch

    from kerec.gnn.train import TrainConfig
    from kerec.gnn import RetrieverSpec, item_text_vectors, load_config, prepare, train_retriever

    torch.set_num_threads(args.threads)
    prepared = prepare(split=str(args.split))
    text = item_text_vectors(prepared.dataset, progress=False)
    spec, config = load_config(args.config)
    rows = []
    for name, over in (("kerec (text + KG, L_R + λ_K·L_K)", {}), ("kerec without KG", {"use_kg": False})):
        s = RetrieverSpec(**{**spec.__dict__, **over})
        _, _, state = train_retriever(prepared, s, TrainConfig(**{**config.to_dict(), "epochs": args.epochs,
                                                                  "patience": args.epochs}),
                                      item_text=text, progress=False)
        rows.append({"system": name, "seconds_per_epoch": statistics.median(h.seconds for h in state.history),
                     "epochs": len(state.history), "head_seconds": state.post.get("item_head", {}).get("seconds")})
    python = ROOT / "eval" / "recbole" / ".venv" / "bin" / "python"
    rec_out = args.out / "recbole"
    subprocess.run([str(python), str(ROOT / "eval" / "recbole" / "run_recbole.py"), "--split", str(args.split),
                    "--models", *args.recbole_models, "--seeds", "2020", "--epochs", str(args.recbole_epochs),
                    "--threads", str(args.threads), "--out", str(rec_out), "--force"], check=True)
    for model in args.recbole_models:
        r = json.loads((rec_out / f"{model}-seed2020.json").read_text())
        rows.append({"system": f"RecBole {model}", "seconds_per_epoch": r["seconds_per_epoch_median"],
                     "epochs": r["epochs_run"]})
    load_end = os.getloadavg()
    kgat = next(r["seconds_per_epoch"] for r in rows if r["system"] == "RecBole KGAT") if "KGAT" in args.recbole_models else None
    from kerec.eval.command import recorded_command

    lines = ["# Seconds per training epoch on one machine, back to back", "",
             f"`{recorded_command('python eval/bench_epoch_time.py', argv)}`; "
             f"{args.threads} torch thread(s); batch 4096; load average {load_start[0]:.2f} at the start, "
             f"{load_end[0]:.2f} at the end; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", "",
             "| system | s/epoch | epochs timed | vs KGAT | item head fit after training (s, once) |",
             "|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['seconds_per_epoch'] / kgat:.2f}×" if kgat else "–"
        head = f"{r['head_seconds']:.1f}" if r.get("head_seconds") is not None else "–"
        lines.append(f"| {r['system']} | {r['seconds_per_epoch']:.2f} | {r['epochs']} | {ratio} | {head} |")
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    (args.out / "table.json").write_text(json.dumps({"rows": rows, "load": [load_start, load_end]}, indent=2) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
