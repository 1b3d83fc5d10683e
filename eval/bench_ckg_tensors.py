"""Time and peak memory of the KG tensors training reads: straight from the dataset against through a store.

    python eval/bench_ckg_tensors.py --data DIR [--out eval/results/ckg_tensors]

Each path runs in its own child process after reading the dataset (``load_dataset``; its time and memory
are reported apart): ``direct`` is :func:`kerec.kg.ckg_tensors`, what ``prepare`` uses for training;
``store`` is :func:`kerec.kg.build_ckg`, loading a :class:`~kerec.kg.MemoryStore` and its ``to_tensors()``,
what training used before (and what serving still loads). The two are checked equal. Peak memory is the
child's ``ru_maxrss``. Writes ``results.json`` and ``table.md`` with the command, commit and tree state.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from kerec.eval.command import recorded_command


def child(data: str, path: str) -> dict[str, object]:
    from kerec.data import load_dataset
    from kerec.kg import MemoryStore, build_ckg, ckg_tensors

    t0 = time.perf_counter()
    ds = load_dataset(data)
    read = time.perf_counter() - t0
    read_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t0 = time.perf_counter()
    if path == "direct":
        tensors = ckg_tensors(ds)
    else:
        store = MemoryStore()
        store.load(build_ckg(ds), progress=False)
        tensors = store.to_tensors()
    seconds = time.perf_counter() - t0
    import hashlib

    digest = hashlib.sha256(tensors.edge_index.numpy().tobytes() + tensors.edge_type.numpy().tobytes()
                            + "\n".join(tensors.relations).encode()).hexdigest()
    return {"read_seconds": read, "read_peak_gib": read_rss, "seconds": seconds,
            "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "edges": int(tensors.edge_type.numel()),
            "digest": digest}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--out", default="eval/results/ckg_tensors")
    p.add_argument("--child", choices=("direct", "store"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.data, args.child)))
        return
    command = recorded_command("python eval/bench_ckg_tensors.py", argv)
    rows = {}
    for path in ("direct", "store"):
        out = subprocess.run([sys.executable, __file__, "--data", args.data, "--child", path], capture_output=True,
                             text=True, check=True)
        rows[path] = json.loads(out.stdout.strip().splitlines()[-1])
        print(path, rows[path], flush=True)
    same = rows["direct"]["digest"] == rows["store"]["digest"]
    result = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "data": args.data,
              "equal": same, "rows": rows}
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    r = rows
    lines = ["# KG tensors for training: from the dataset vs through a store", "", f"`{command}`, {result['date']}.", "",
             f"Dataset `{args.data}`: reading it took {r['direct']['read_seconds']:.0f} s (peak {r['direct']['read_peak_gib']:.1f} GiB); "
             f"{r['direct']['edges']:,} edges (inverses included); the two exports are "
             + ("byte-identical." if same else "**different**."), "",
             "| path | seconds | peak memory of the process (GiB) |", "|---|---|---|",
             f"| `ckg_tensors(dataset)` (training, now) | {r['direct']['seconds']:.1f} | {r['direct']['peak_gib']:.1f} |",
             f"| `build_ckg` → `MemoryStore` → `to_tensors()` (training before; serving) | {r['store']['seconds']:.1f} | {r['store']['peak_gib']:.1f} |"]
    (out_dir / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if not same:
        raise SystemExit("the two exports differ")


if __name__ == "__main__":
    main()
