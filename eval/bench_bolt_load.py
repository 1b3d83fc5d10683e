"""One Bolt load of a whole dataset into a fresh local ArcadeDB server, timed: issue 23's "a Bolt load ≤ 10 min".

    python eval/bench_bolt_load.py --data DIR [--heap 6g] [--work /tmp/kerec-bolt] [--out eval/results/bolt_load]

Reads the dataset, builds its collaborative KG (:func:`kerec.kg.build_ckg`), starts ``LocalBoltServer`` on a
fresh database folder and loads the CKG over Bolt (``open_store(...).load``, as ``kerec kg load`` does);
then reads the store's counts back to check nothing is missing. Writes ``results.json`` and ``table.md``
under ``--out`` with the command, the commit and whether the tree was clean.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from pathlib import Path

from kerec.eval.command import recorded_command


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--heap", default="6g", help="Java heap of the ArcadeDB server")
    p.add_argument("--work", default="/tmp/kerec-bolt", help="folder for the server's database (emptied first)")
    p.add_argument("--out", default="eval/results/bolt_load")
    args = p.parse_args(argv)
    from kerec.data import load_dataset
    from kerec.kg import build_ckg, open_store
    from kerec.kg.server import LocalBoltServer

    command = recorded_command("python eval/bench_bolt_load.py", argv)
    t0 = time.perf_counter()
    ds = load_dataset(args.data)
    ckg = build_ckg(ds)
    counts = ckg.counts()
    prepare_seconds = time.perf_counter() - t0
    root = Path(args.work)
    shutil.rmtree(root, ignore_errors=True)
    server = LocalBoltServer(root, heap=args.heap)
    try:
        t0 = time.perf_counter()
        server.start(timeout=300)
        start = time.perf_counter() - t0
        with open_store(server.uri, auth=server.auth, database="graph") as bolt:
            report = bolt.load(ckg, progress=True, replace=True)
            stats = bolt.stats()
    finally:
        server.stop()
    rows = sum(counts.values())
    result = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "data": args.data,
              "counts": counts, "rows": rows, "prepare_seconds": prepare_seconds, "start_seconds": start,
              "load_seconds": report.seconds, "rows_per_s": rows / report.seconds, "heap": args.heap,
              "stats": str(stats), "client_peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    lines = ["# A Bolt load of a whole dataset (local ArcadeDB)", "", f"`{command}`, {result['date']}.", "",
             "Counts: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()) + f" = {rows:,} rows.", "",
             "| step | seconds |", "|---|---|",
             f"| read + collaborative KG (client) | {prepare_seconds:.0f} |",
             f"| server start (heap {args.heap}) | {start:.0f} |",
             f"| Bolt load | **{report.seconds:.0f}** ({rows / report.seconds:,.0f} rows/s) |", "",
             f"Read back: {stats}. Client peak memory {result['client_peak_gib']:.1f} GiB."]
    (out / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
