"""The cost curve: how each stage of kerec grows with the catalogue, on synthetic data (``kerec data synth``).

    nice -n 10 /path/to/python eval/bench_scale.py --items 10000 30000 100000 1000000

At each size (``items``; users = items/2, interactions = 10·items, triples = 5·items, 20 tastes, 5 friends
per user) the data is generated once into ``--work``, then one child process per size runs the stages
in order, each under a wall-clock budget (SIGALRM) and the whole child under a resident-memory guard
(a watchdog ends it above ``--max-rss-gib``), writing its record after every stage, so a size that
hits a wall still reports the stages before it and which stage it died in:

* ``read``: :func:`kerec.data.load_dataset` (parse and validate the atomic files);
* ``split``: the per-user 8:1:1 random split; ``ckg``: :func:`kerec.kg.build_ckg`;
* ``memory_store``: loading the in-process store; ``tensors``: its export for the GNN;
* ``bolt``: starting a local ArcadeDB Bolt server and loading the same CKG (skipped above ``--bolt-max-rows``);
* ``text``: item texts for every item, then encoding a sample of ``--text-sample`` with all-MiniLM-L6-v2
  (the full catalogue's time is projected from that rate, and marked so);
* ``train``: kerec's retriever (KG on, text input off: its encoding cost is the text stage), full-catalogue
  softmax at temperature 0.5 as ``kerec train retriever`` trains by default, where a (batch × items)
  logit matrix fits ``--softmax-gib``; else the in-batch softmax with logQ correction in the recipe of
  eval/results/convergence (batch 16,384 in groups of 4,096, lr 0.01, patience 3), and the record says so;
  ``train_epoch_inbatch``: that recipe's epoch at every size (projected from its steps), for comparison.
  Validation on at most ``--eval-users`` users each epoch, patience 5 (3 in the recipe), within ``--train-budget``
  seconds: "converged" only if early stopping ended it. Where not even two epochs fit the budget, the epoch is
  projected: seconds per step (forward over the whole graph, losses, backward, Adam; mean of two after a
  warm-up) × steps per epoch, and marked "projected";
* ``item_head``: EASE's Gram and dense inverse over all items, or above :data:`kerec.gnn.item_head.MAX_ITEMS`
  over the head's support (the most popular MAX_ITEMS items; the share of training pairs they hold is
  recorded), with a sweep of the inverse alone over leading blocks of the Gram matrix, for its growth order;
* ``full_eval``: test full ranking on at most ``--eval-users`` users (time per user, and projected to all);
* ``recommend``: ``Recommender.recommend(user, 10)`` without an LLM (templated explanations), the Recommender
  loaded as a user loads it (``Recommender.load`` of a checkpoint saved here, with the in-process store),
  p50/p95 over ``--requests`` users and the mean milliseconds per stage; ``evidence``:
  ``Recommender.evidence_for`` alone (history → the GNN's top 20) for the same users.

Peak memory is the child's ``ru_maxrss`` after each stage. Growth orders are least-squares slopes of
log(seconds) against log(items) over the sizes where a stage ran (every size grows users, interactions
and triples in proportion, so the slope is against data size as a whole). Writes ``results.json``,
``table.md`` and ``curve.png`` under ``--out`` with the command, the commit and whether the tree was clean.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("synth", "read", "split", "ckg", "memory_store", "tensors", "bolt", "text", "train_epoch", "validation",
          "train_epoch_inbatch", "item_head", "full_eval", "recommend_p50", "recommend_p95", "evidence_p50")


class StageTimeout(Exception):
    pass


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sizes(items: int) -> dict[str, int]:
    return {"items": items, "users": items // 2, "interactions": 10 * items, "triples": 5 * items}


# ---- the child: one size, stage by stage ------------------------------------------------------------------
class Recorder:
    """The child's record, rewritten to disk after every stage so a killed child still reports."""

    def __init__(self, path: Path, sizes: dict[str, int]) -> None:
        self.path, self.data = path, {"sizes": sizes, "stages": {}, "running": None, "notes": []}

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=float))
        tmp.replace(self.path)

    def ok(self, *names: str) -> bool:
        """Whether every named stage finished; later stages need their results."""
        failed = [n for n in names if self.data["stages"].get(n, {}).get("status") != "ok"]
        if failed:
            self.data["notes"].append(f"later stages not run: {', '.join(failed)} did not finish")
            self.save()
        return not failed

    @contextmanager
    def stage(self, name: str, budget: float) -> Iterator[dict[str, object]]:
        record: dict[str, object] = {"status": "running"}
        self.data["stages"][name] = record
        self.data["running"] = name
        self.save()
        started = time.perf_counter()

        def alarm(*_: object) -> None:
            raise StageTimeout

        signal.signal(signal.SIGALRM, alarm)
        signal.alarm(max(int(budget), 1))
        try:
            yield record
            record.setdefault("seconds", time.perf_counter() - started)
            record["status"] = record.get("status") if record.get("status") != "running" else "ok"
        except StageTimeout:
            record.update(status=f"timeout after {budget:.0f} s", seconds=None)
        except Exception as exc:  # a wall met at this size is a result, recorded with its message
            record.update(status=f"error: {type(exc).__name__}: {str(exc)[:300]}", seconds=None)
        finally:
            signal.alarm(0)
            record["peak_rss_mib"] = _peak_mib()
            self.data["running"] = None
            self.save()


def _watch_memory(limit_gib: float, recorder: Recorder) -> None:
    import psutil

    proc = psutil.Process()

    def loop() -> None:
        while True:
            rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
            if rss > limit_gib * 2**30:
                recorder.data["killed"] = (f"resident memory {rss / 2**30:.1f} GiB passed the {limit_gib} GiB guard "
                                           f"during {recorder.data['running']}")
                recorder.save()
                for c in proc.children(recursive=True):
                    c.kill()
                os._exit(3)
            time.sleep(0.5)

    threading.Thread(target=loop, daemon=True).start()


def _step_seconds(model: object, graph: object, config: object, repeats: int = 2) -> float:
    """Seconds of one training step (forward over the whole graph, L_R + L_reg + λ_K·L_K, backward, Adam),
    the mean of ``repeats`` after a warm-up step: what an epoch pays ``ceil(pairs / batch)`` times."""
    import torch

    from kerec.gnn.distributed import Objective
    from kerec.gnn.train import item_log_share, ranking_loss

    allowed = torch.ones(graph.num_items, dtype=torch.bool)
    objective = Objective(model, ranking_loss(config, allowed, item_log_share(graph.train_pairs, graph.num_items)))
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(repeats + 1):
        batch = graph.train_pairs[torch.randint(0, len(graph.train_pairs), (config.batch_size,), generator=gen)]
        neg = (torch.zeros(len(batch), 0, dtype=torch.long) if config.loss in ("full", "inbatch")
               else torch.randint(0, graph.num_items, (len(batch), config.negatives), generator=gen))
        pick = torch.randint(0, max(len(graph.kg_triples), 1), (min(config.kg_batch_size, len(graph.kg_triples)),), generator=gen)
        corrupt = torch.randint(0, graph.num_kg_nodes, (len(pick),), generator=gen)
        t0 = time.perf_counter()
        loss_r, loss_reg, loss_k, loss_a, _ = objective(graph, batch[:, 0], batch[:, 1], neg, graph.kg_triples[pick], corrupt)
        loss = loss_r + config.reg * loss_reg + config.lambda_k * loss_k + config.lambda_a * loss_a
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        times.append(time.perf_counter() - t0)
    return float(np.mean(times[1:]))


def run_child(args: argparse.Namespace) -> None:
    import torch

    from kerec.api import Recommender
    from kerec.data import Split, load_dataset, random_split
    from kerec.gnn.item_head import MAX_ITEMS, ease_weights, item_gram, on_support, popular_support
    from kerec.gnn.train import TrainConfig, TrainState, train
    from kerec.kg import MemoryStore, build_ckg, open_store
    from kerec.kg.server import LocalBoltServer
    from kerec.gnn.pipeline import Prepared, RetrieverSpec, _build, build_graph, evaluate_embeddings, make_checkpoint
    from kerec.process import freeze_long_lived_objects
    from kerec.text import SentenceTransformerEncoder, item_texts

    torch.set_num_threads(args.threads)
    sizes = _sizes(args.point)
    rec = Recorder(Path(args.record), sizes)
    _watch_memory(args.max_rss_gib, rec)
    budget = args.stage_budget
    rng = np.random.default_rng(0)

    with rec.stage("read", budget) as r:
        ds = load_dataset(args.data)
        r["counts"] = ds.describe()
    with rec.stage("split", budget):
        split = random_split(ds, seed=2020)
    if not rec.ok("read", "split"):
        return
    users = np.unique(split.valid[:, 0])
    sample = np.sort(rng.choice(users, size=min(args.eval_users, len(users)), replace=False))
    sampled = Split(split.train, split.valid[np.isin(split.valid[:, 0], sample)],
                    split.test[np.isin(split.test[:, 0], sample)], protocol=split.protocol)
    with rec.stage("ckg", budget) as r:
        ckg = build_ckg(ds)
        r["counts"] = ckg.counts()
    rows = sum(ckg.counts().values())
    with rec.stage("memory_store", budget):
        store = MemoryStore()
        store.load(ckg, progress=False)
    with rec.stage("tensors", budget):
        tensors = store.to_tensors(add_inverse=True)
    if not rec.ok("ckg", "memory_store", "tensors"):
        return
    with rec.stage("bolt", args.bolt_budget) as r:
        if rows > args.bolt_max_rows:
            r.update(status=f"skipped: {rows:,} rows > --bolt-max-rows {args.bolt_max_rows:,}", seconds=None)
        else:
            root = Path(args.work) / f"arcadedb-{args.point}"
            shutil.rmtree(root, ignore_errors=True)  # a fresh database each run: the load is what is timed
            server = LocalBoltServer(root, heap=args.bolt_heap)
            try:
                t0 = time.perf_counter()
                server.start(timeout=180)
                r["start_seconds"] = time.perf_counter() - t0
                r["server_pid"] = server._process.pid if server._process else None  # for the parent to end on a timeout
                rec.save()
                with open_store(server.uri, auth=server.auth, database="graph") as bolt:
                    report = bolt.load(ckg, progress=False, replace=True)
                r.update(seconds=time.perf_counter() - t0, load_seconds=report.seconds, rows=rows,
                         rows_per_s=rows / report.seconds)
            finally:
                server.stop()
    del ckg
    gc.collect()
    with rec.stage("text", budget) as r:
        t0 = time.perf_counter()
        texts = item_texts(ds)
        build = time.perf_counter() - t0
        n = min(args.text_sample, len(texts))
        pick = rng.choice(len(texts), size=n, replace=False)
        encoder = SentenceTransformerEncoder("default")
        encoder.encode([texts[0]], progress=False)  # load the model outside the timing
        t0 = time.perf_counter()
        encoder.encode([texts[i] for i in pick], progress=False)
        rate = n / (time.perf_counter() - t0)
        r.update(texts_seconds=build, encoded=n, texts_per_s=rate, seconds=build + len(texts) / rate,
                 projected=n < len(texts))
        del texts
    prepared = Prepared(ds, sampled, tensors, np.ones(ds.num_items, dtype=bool))
    spec = RetrieverSpec(item_head=False, use_text=False)
    logits_gib = 4096 * ds.num_items * 4 * 3 / 2**30  # logits, their softmax and gradient, float32
    config = TrainConfig(loss="full", temperature=0.5, epochs=args.max_epochs, patience=5)
    # the large-catalogue recipe of eval/results/convergence: batch 16,384 in groups of 4,096, lr 0.01, patience 3
    inbatch = {"loss": "inbatch", "batch_size": 16384, "inbatch_group": 4096, "lr": 0.01, "patience": 3}
    if logits_gib > args.softmax_gib:
        config = replace(config, **inbatch)
        rec.data["notes"].append(f"full softmax needs ~{logits_gib:.1f} GiB per batch of 4096 > --softmax-gib "
                                 f"{args.softmax_gib}: trained with the in-batch softmax with logQ correction")
    with rec.stage("train", args.train_budget + 120) as r:
        graph = build_graph(prepared, spec, None)
        torch.manual_seed(config.seed)
        model = _build(spec, graph)
        steps = -(-len(sampled.train) // config.batch_size)
        step = _step_seconds(model, graph, config)
        r.update(loss=config.loss, step_seconds=step, steps_per_epoch=steps)
        state = TrainState(model, config)
        if 2 * steps * step > args.train_budget:  # not even two epochs fit: the epoch is projected from its steps
            r.update(epoch_seconds_median=steps * step, projected=True, converged=False)
        else:
            valid_seconds: list[float] = []
            deadline = time.perf_counter() + args.train_budget

            def validate(emb: object) -> dict[str, float]:
                t0 = time.perf_counter()
                out = evaluate_embeddings(emb, prepared, "valid").metrics  # type: ignore[arg-type]
                valid_seconds.append(time.perf_counter() - t0)
                return out

            def budget_stop(state: TrainState, _: object) -> None:
                if time.perf_counter() > deadline:
                    state.stop = True
                    r["budget_reached"] = True

            state = train(model, graph, config, validate=validate, callbacks=[budget_stop], progress=False)
            epochs = [h.seconds for h in state.history]
            r.update(epochs_run=len(epochs), best_epoch=state.best_epoch,
                     converged=not r.get("budget_reached") and len(epochs) < config.epochs,
                     epoch_seconds_median=float(np.median(epochs)),
                     validation_seconds_median=float(np.median(valid_seconds)),
                     valid_users=len(sample), best_valid=state.best_score)
    if not rec.ok("train"):
        return
    with rec.stage("train_inbatch", budget) as r:  # the remedy's epoch at every size, from its steps
        grouped = replace(config, **inbatch)
        step = _step_seconds(_build(spec, graph), graph, grouped)
        steps = -(-len(sampled.train) // grouped.batch_size)
        r.update(step_seconds=step, steps_per_epoch=steps, epoch_seconds_median=steps * step, projected=True)
    with rec.stage("item_head", budget) as r:
        # EASE's Gram and dense inverse over all items, or above MAX_ITEMS over the most popular MAX_ITEMS (the
        # head's support, as kerec.gnn.item_head fits it), plus a sweep of the inverse over leading blocks
        t0 = time.perf_counter()
        support = popular_support(split.train, ds.num_items) if ds.num_items > MAX_ITEMS else None
        pairs = split.train if support is None else on_support(split.train, support, ds.num_items)
        size = ds.num_items if support is None else len(support)
        gram = item_gram(pairs, ds.num_users, size)
        ease_weights(gram, 400.0)
        r.update(seconds=time.perf_counter() - t0, support_items=size, support_pair_share=len(pairs) / len(split.train))
        sweep = {}
        for n in (1000, 2000, 4000, 8000):
            if n < size:
                t0 = time.perf_counter()
                ease_weights(gram[:n, :n].contiguous(), 400.0)
                sweep[n] = time.perf_counter() - t0
        r["inverse_sweep"] = sweep
        del gram
    model.eval()
    with torch.no_grad():
        emb = model(graph)
    with rec.stage("full_eval", budget) as r:
        t0 = time.perf_counter()
        result = evaluate_embeddings(emb, prepared, "test")
        took = time.perf_counter() - t0
        all_users = len(np.unique(split.test[:, 0]))
        r.update(users=result.num_users, seconds_per_user=took / result.num_users, measured_seconds=took,
                 seconds=took * all_users / result.num_users, projected=result.num_users < all_users,
                 all_users=all_users, recall20=result.metrics.get("recall@20"))
    # The serving path as a user meets it: a checkpoint, loaded with the in-process store already holding the data.
    checkpoint = make_checkpoint(model, graph, prepared, spec, config, state).save(Path(args.work) / f"retriever-{args.point}.pt")
    recommender = Recommender.load(checkpoint, data=args.data, store=store, llm=None)
    freeze_long_lived_objects()  # as kerec's entry points do
    asked = [ds.users.external(int(u)) for u in rng.choice(sample, size=min(args.requests + 3, len(sample)), replace=False)]
    with rec.stage("recommend", budget) as r:
        for user in asked[:3]:  # warm-up
            recommender.recommend(user, 10)
        lat, stages = [], {}
        for user in asked[3:]:
            t0 = time.perf_counter()
            recommender.recommend(user, 10, timings=stages)
            lat.append(time.perf_counter() - t0)
        r.update(p50=float(np.percentile(lat, 50)), p95=float(np.percentile(lat, 95)), requests=len(lat),
                 mean_ms_by_stage={k: v / len(lat) for k, v in stages.items()})
    with rec.stage("evidence", budget) as r:
        lat = []
        for user in asked[3:]:
            history = recommender.history(user)[-20:]
            top = [ds.items.external(int(i)) for i in np.argsort(-recommender.gnn_scores(user))[:20]]
            t0 = time.perf_counter()
            recommender.evidence_for(history, top, user=user)
            lat.append(time.perf_counter() - t0)
        r.update(p50=float(np.percentile(lat, 50)), p95=float(np.percentile(lat, 95)), requests=len(lat))
    rec.data["done"] = True
    rec.save()


# ---- the parent: data, children, table, fit, plot ----------------------------------------------------------
def _git() -> dict[str, object]:
    def run(*cmd: str) -> str:
        return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {"commit": run("rev-parse", "--short", "HEAD"), "clean": run("status", "--porcelain") == ""}


def _synth(items: int, work: Path) -> tuple[Path, float | None]:
    from kerec.data.synth import SynthConfig, synthesize

    s = _sizes(items)
    out = work / f"synth-{items}"
    if (out / "synth.net").is_file():
        return out, None  # made by an earlier run with the same sizes and seed (the generator is deterministic)
    t0 = time.perf_counter()
    synthesize(SynthConfig(users=s["users"], items=items, interactions=s["interactions"], triples=s["triples"]), out)
    return out, time.perf_counter() - t0


def flat(point: dict[str, object]) -> dict[str, float | None]:
    """Seconds per stage of one size (None where it did not run), as the table and the fit use them."""
    st = point.get("stages", {})

    def ok(name: str, key: str = "seconds") -> float | None:
        r = st.get(name, {})
        return r.get(key) if r.get("status") == "ok" else None

    return {"synth": point.get("synth_seconds"), "read": ok("read"), "split": ok("split"), "ckg": ok("ckg"),
            "memory_store": ok("memory_store"), "tensors": ok("tensors"), "bolt": ok("bolt"), "text": ok("text"),
            "train_epoch": ok("train", "epoch_seconds_median"), "validation": ok("train", "validation_seconds_median"),
            "train_epoch_inbatch": ok("train_inbatch", "epoch_seconds_median"),
            "item_head": ok("item_head"), "full_eval": ok("full_eval"), "recommend_p50": ok("recommend", "p50"),
            "recommend_p95": ok("recommend", "p95"), "evidence_p50": ok("evidence", "p50")}


def slopes(points: list[dict[str, object]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for stage in STAGES:
        xs = [(p["sizes"]["items"], flat(p)[stage]) for p in points]
        xs = [(x, y) for x, y in xs if y]
        out[stage] = float(np.polyfit(np.log([x for x, _ in xs]), np.log([y for _, y in xs]), 1)[0]) if len(xs) >= 2 else None
    return out


def _fmt(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.3g}" if v < 100 else f"{v:,.0f}"


def write_report(out: Path, result: dict[str, object]) -> None:
    points, fit = result["points"], result["slopes"]
    sizes = [p["sizes"]["items"] for p in points]
    lines = [f"# Cost curve on synthetic data ({result['machine']})", "",
             f"`{result['command']}` at commit {result['git']['commit']} "
             f"({'clean tree' if result['git']['clean'] else 'uncommitted changes'}), {result['date']}.", "",
             "Seconds per stage (recommend/evidence: seconds per request; train_epoch/validation: median per epoch); "
             "— where the stage did not run at that size (why: below). Slope: growth order, log–log least squares "
             "over the sizes where it ran.", "",
             "| stage | " + " | ".join(f"{s:,} items" for s in sizes) + " | slope |",
             "|---|" + "---|" * (len(sizes) + 1)]
    for stage in STAGES:
        lines.append(f"| {stage} | " + " | ".join(_fmt(flat(p)[stage]) for p in points)
                     + f" | {'—' if fit[stage] is None else f'{fit[stage]:.2f}'} |")
    lines.append("| projected (p) | " + " | ".join(", ".join(n for n, r in p.get("stages", {}).items() if r.get("projected"))
                                               or "—" for p in points) + " | |")
    lines.append("| peak RSS (GiB) | " + " | ".join(f"{p.get('peak_rss_mib', 0) / 1024:.1f}" for p in points) + " | |")
    lines += ["", "## Per size", ""]
    for p in points:
        s = p["sizes"]
        lines.append(f"### {s['items']:,} items, {s['users']:,} users, {s['interactions']:,} interactions, "
                     f"{s['triples']:,} triples")
        if p.get("git") and (p["git"] != result["git"] or p.get("command") != result["command"]):
            lines.append(f"- run by `{p['command']}` at commit {p['git']['commit']} "
                         f"({'clean tree' if p['git']['clean'] else 'uncommitted changes'})")
        if p.get("killed"):
            lines.append(f"- **stopped**: {p['killed']}")
        if p.get("child_status"):
            lines.append(f"- child: {p['child_status']}")
        for note in p.get("notes", []):
            lines.append(f"- {note}")
        for name, r in p.get("stages", {}).items():
            extra = {k: v for k, v in r.items() if k not in ("status", "seconds", "peak_rss_mib")}
            peak = f"{r['peak_rss_mib'] / 1024:.1f} GiB" if "peak_rss_mib" in r else "not recorded"
            lines.append(f"- {name}: {r['status']}, {_fmt(r.get('seconds'))} s, peak {peak}"
                         + (f" — {json.dumps(extra, default=float)}" if extra else ""))
        lines.append("")
    (out / "table.md").write_text("\n".join(lines), encoding="utf-8")


def plot(out: Path, points: list[dict[str, object]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, mem) = plt.subplots(1, 2, figsize=(13, 5.5))
    for stage in STAGES:
        xs = [(p["sizes"]["items"], flat(p)[stage]) for p in points]
        xs = [(x, y) for x, y in xs if y]
        if xs:
            ax.loglog(*zip(*xs), marker="o", label=stage)
    ax.set_xlabel("items (users = items/2, interactions = 10·items, triples = 5·items)")
    ax.set_ylabel("seconds")
    ax.set_title("kerec stage cost on synthetic data")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    mem.loglog([p["sizes"]["items"] for p in points], [p.get("peak_rss_mib", np.nan) / 1024 for p in points], marker="o")
    mem.set_xlabel("items")
    mem.set_ylabel("peak RSS of the run (GiB)")
    mem.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "curve.png", dpi=120)


def run_parent(args: argparse.Namespace) -> None:
    git = _git()  # the code every size runs: commit first, then run
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    points: list[dict[str, object]] = []
    if args.keep and (out / "results.json").is_file():  # earlier sizes stay, each with the command and commit it ran at
        old = json.loads((out / "results.json").read_text(encoding="utf-8"))
        points = [{"git": old["git"], "command": old["command"], **q} for q in old["points"]
                  if q["sizes"]["items"] not in args.items]
    for items in args.items:
        data, synth_seconds = _synth(items, work)
        record = work / f"record-{items}.json"
        record.unlink(missing_ok=True)
        cmd = [sys.executable, __file__, "--child", "--point", str(items), "--data", str(data), "--record", str(record)]
        cmd += [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                if k in CHILD_OPTIONS]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, timeout=args.point_budget, capture_output=True, text=True)
            status = f"exit {proc.returncode}" + (f": {proc.stderr.strip().splitlines()[-1][:300]}"
                                                  if proc.returncode and proc.stderr.strip() else "")
        except subprocess.TimeoutExpired:
            status = f"ended after --point-budget {args.point_budget} s"
        point = json.loads(record.read_text()) if record.is_file() else {"sizes": _sizes(items), "stages": {}}
        bolt = point["stages"].get("bolt", {})
        if bolt.get("status") == "running" and bolt.get("server_pid"):  # the child died with its server up
            try:
                os.kill(bolt["server_pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass
        point.update(synth_seconds=synth_seconds, child_status=status, child_seconds=time.perf_counter() - t0)
        if synth_seconds is None:
            point["notes"] = point.get("notes", []) + ["data reused from an earlier run (same sizes and seed)"]
        # A stage ended by the memory guard has no peak of its own: the guard's limit is its peak.
        peaks = [r.get("peak_rss_mib", 0) for r in point["stages"].values()]
        point["peak_rss_mib"] = max(peaks + ([args.max_rss_gib * 1024] if point.get("killed") else []) or [0])
        point.update(git=git, command=args.command_line)
        points = sorted([q for q in points if q["sizes"]["items"] != items] + [point], key=lambda q: q["sizes"]["items"])
        print(f"{items:,} items: {status}; " + ", ".join(f"{k} {_fmt(v)}" for k, v in flat(point).items()), flush=True)
        result = {"command": args.command_line, "git": git, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), torch threads {args.threads}",
                  "python": platform.python_version(), "points": points, "slopes": slopes(points)}
        (out / "results.json").write_text(json.dumps(result, indent=1, default=float), encoding="utf-8")
        write_report(out, result)
        plot(out, points)


CHILD_OPTIONS = ("work", "threads", "max_rss_gib", "stage_budget", "train_budget", "bolt_budget", "bolt_max_rows",
                 "bolt_heap", "text_sample", "eval_users", "requests", "max_epochs", "softmax_gib")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, nargs="+", default=[10_000, 30_000, 100_000, 1_000_000])
    p.add_argument("--out", default=str(ROOT / "eval" / "results" / "scale"))
    p.add_argument("--work", default="/tmp/kerec-scale", help="folder for the generated data and servers")
    p.add_argument("--threads", type=int, default=1, help="torch threads (2 shared cores here)")
    p.add_argument("--keep", action="store_true",
                   help="keep the sizes of --out's results.json that --items does not name (each with its own commit)")
    p.add_argument("--max-rss-gib", type=float, default=12.0, help="end a size's run above this resident memory")
    p.add_argument("--point-budget", type=int, default=2400, help="seconds for one size's child, all stages")
    p.add_argument("--stage-budget", type=int, default=600, help="seconds for one stage")
    p.add_argument("--train-budget", type=int, default=600, help="seconds of training before it is stopped")
    p.add_argument("--max-epochs", type=int, default=100)
    p.add_argument("--bolt-budget", type=int, default=600)
    p.add_argument("--bolt-max-rows", type=int, default=3_000_000)
    p.add_argument("--bolt-heap", default="4g")
    p.add_argument("--text-sample", type=int, default=1000)
    p.add_argument("--eval-users", type=int, default=5000)
    p.add_argument("--requests", type=int, default=50)
    p.add_argument("--softmax-gib", type=float, default=4.0)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--point", type=int, help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--record", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.command_line = "python eval/bench_scale.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if args.child:
        run_child(args)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
