"""``kerec.evaluate(config)``: every system × seed × protocol of one config, into one report.

Work goes to ``runs/eval/<name>/`` (trained retrievers, per-user shards; resumable), the report to
``eval/results/<name>/`` (``results.json``, ``report.md``, plots). Model selection uses the validation
split only (early stopping; the fusion weight); the test split is scored once per system and seed.
"""
from __future__ import annotations

import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np

from kerec.eval.config import (CHECKPOINT_SYSTEMS, FUSED, JOINT, LLM_SYSTEMS, RECENCY, RETRIEVER_SYSTEMS, TUNED_GNN, EvalConfig,
                               EvalConfigError, dataset_key, load_eval_config)
from kerec.eval.report import EvalReport, environment, write_report
from kerec.eval.shards import Shard
from kerec.fusion import fuse_all
from kerec.metrics.stats import paired_test


def evaluate(config: EvalConfig | str | Path, *, out: str | Path | None = None, work: str | Path | None = None,
             fresh: bool = False, progress: bool = True, command: str | None = None,
             loaded: Callable[[], None] | None = None) -> EvalReport:
    """Run the evaluation a config describes and write its report. ``config``: an :class:`EvalConfig` or
    a YAML path; ``out``: report folder (default ``eval/results/<name>``); ``work``: run folder (default
    ``runs/eval/<name>``); ``fresh``: delete the run folder first instead of resuming from it; ``loaded``:
    called after each Recommender is loaded, before it is timed (``kerec eval`` passes
    :func:`kerec.process.freeze_long_lived_objects`: a process-wide effect is the entry point's to choose)."""
    import torch

    if not isinstance(config, EvalConfig):
        config = load_eval_config(config)
    out = Path(out) if out is not None else Path("eval") / "results" / config.name
    work = Path(work) if work is not None else Path("runs") / "eval" / config.name
    if fresh and work.exists():
        shutil.rmtree(work)
    torch.set_num_threads(config.threads)
    started = time.perf_counter()
    run = _Run(config, work, progress, loaded)
    results: dict[str, Any] = {"name": config.name, "config": config.to_dict(), "config_file": config.source,
                               "command": command or "kerec.evaluate(" + repr(config.source or config.name) + ")",
                               "dataset_key": dataset_key(config), "work": str(work)}
    if config.anchors.run_recbole:
        run_recbole(config)
    phases: dict[str, float] = {}
    if config.workers > 1:
        from kerec.eval.systems import pretrain

        start = time.perf_counter()
        pretrain(config, work, progress=progress)
        phases["training"] = time.perf_counter() - start
        torch.set_num_threads(config.threads * config.workers)  # one process from here on: all the cores
    for name, step in (("full", run.full), ("candidates", run.candidates), ("explain", run.explain),
                       ("cold_start", run.cold_start), ("sparsity", run.sparsity), ("cold_users", run.cold_users),
                       ("long_tail", run.long_tail)):
        if getattr(config.protocols, name) is not None:
            start = time.perf_counter()
            results[name] = step()
            phases[name] = time.perf_counter() - start  # includes training the retrievers it needs first
    results["phase_seconds"] = phases
    results["training"] = run.training()
    results["wall_seconds"] = time.perf_counter() - started
    results["environment"] = environment(config.threads)
    return write_report(results, run, out)


class _Run:
    """The state of one evaluation: systems, per-user results, the LLM when needed."""

    def __init__(self, config: EvalConfig, work: Path, progress: bool, loaded: Callable[[], None] | None) -> None:
        from kerec.eval.systems import Systems

        self.config, self.work, self.progress, self.loaded = config, work, progress, loaded
        self.systems = Systems(config, work, progress=progress)
        self.per_user: dict[tuple[str, int], Any] = {}  # (system, seed) -> FullResult
        self._llm: Any = None
        self._recs: dict[int, Any] = {}
        self._tuned: Any = None
        self.fusion_weight: float | None = None
        self.sample_users: list[int] = []

    def shard(self, name: str, key: dict[str, Any]) -> Shard:
        return Shard(self.work / "shards", name, key)

    # ------------------------------------------------------------------------------------ full ranking
    def full(self) -> dict[str, Any]:
        from kerec.eval.full import full_ranking
        from kerec.eval.systems import train_key

        section = self.config.protocols.full
        assert section is not None
        out: dict[str, Any] = {"per_seed": {}, "curve": {}}
        for seed in self.config.seeds:
            for system in self.config.retriever_systems:
                trained = self.systems.get(system, seed)
                key = {"train": train_key(self.config, system, seed), "full": asdict(section)}
                result = full_ranking(trained, section, self.shard(f"{system}-seed{seed}-full", key),
                                      progress=self.progress)
                self.per_user[(system, seed)] = result
                out["per_seed"].setdefault(system, {})[str(seed)] = {**result.means, "users": int(result.users.size)}
                out["curve"].setdefault(system, []).append(result.curve.tolist())
        out["curve"] = {s: np.mean(np.asarray(c), axis=0).tolist() for s, c in out["curve"].items()}
        return out

    # -------------------------------------------------------------------------------- 20 candidates
    def candidates(self) -> dict[str, Any]:
        from kerec.eval import candidates as cp

        section = self.config.protocols.candidates
        assert section is not None
        out: dict[str, Any] = {"all_users": {}, "llm_stage": {}, "fusion": {}}
        for seed in self.config.seeds:  # every retriever system, every held-out user: cheap
            prepared = self.systems.prepared()
            users = cp.sample_users(prepared, "test", 0, seed)
            tasks = cp.negative_tasks(prepared, "test", users, seed, section.negatives)
            for system in self.config.retriever_systems:
                m = cp.rank_metrics(cp.retriever_scores(self.systems.get(system, seed), tasks), tasks)
                out["all_users"].setdefault(system, {})[str(seed)] = {k: float(v.mean()) for k, v in m.items()} | {"users": len(tasks)}
        if self.config.llm_systems:
            for seed in self.config.seeds[: section.llm_seeds]:
                out["fusion"][str(seed)], stage = self._llm_stage(seed)
                for variant, rows in stage.items():
                    for system, m in rows.items():
                        out["llm_stage"].setdefault(variant, {}).setdefault(system, {})[str(seed)] = m
        return out

    def _llm_stage(self, seed: int) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        from kerec.eval import candidates as cp
        from kerec.eval.systems import train_key

        section = self.config.protocols.candidates
        assert section is not None
        cand = self.systems.get(section.retriever, seed)
        prepared = cand.prepared
        ids = (prepared.dataset.users, prepared.dataset.items)
        users = cp.sample_users(prepared, "test", section.users, seed)
        self.sample_users = self.sample_users or users
        variants = {"random negatives": cp.negative_tasks(prepared, "test", users, seed, section.negatives),
                    "GNN top-20": cp.top_tasks(cand, users, seed)}
        base_key = {"train": train_key(self.config, section.retriever, seed), "candidates": asdict(section),
                    "llm": asdict(self.config.llm), "finetune": self._finetune_id()}
        llm_systems = [s for s in self.config.systems if s in LLM_SYSTEMS]
        checkpoint_systems = [s for s in self.config.systems if s in CHECKPOINT_SYSTEMS]
        if JOINT in checkpoint_systems and self.tuned().residual <= 0:
            raise EvalConfigError(f"{self.config.source or self.config.name}: system 'joint' ranks by a residual run's "
                                  f"ℓ + β·z, but {self.config.llm.finetune} was tuned without train.residual; "
                                  "drop 'joint' (use 'fused')")
        fused_with = llm_systems[0] if llm_systems else None
        fusion: dict[str, Any] = {"llm": fused_with}
        vtasks, vgnn = [], []  # validation tasks and GNN scores, for the weights chosen on validation
        if (FUSED in self.config.systems and section.fusion_weight is None) or RECENCY in self.config.systems:
            vusers = cp.sample_users(prepared, "valid", section.valid_users, seed)
            vtasks = cp.negative_tasks(prepared, "valid", vusers, seed, section.negatives)
            vgnn = cp.retriever_scores(cand, vtasks)
        if FUSED in self.config.systems:
            if section.fusion_weight is not None:
                fusion["weight"], fusion["chosen_on"] = section.fusion_weight, "config"
            else:
                vllm = cp.llm_scores(self._scorer(fused_with, seed), vtasks, ids,
                                     self.shard(f"{fused_with}-seed{seed}-valid-negatives", base_key | {"part": "valid"}),
                                     batch=section.batch, label=f"{fused_with} valid seed {seed}", progress=self.progress)
                weight, sweep = cp.choose_weight(vgnn, vllm, vtasks)
                fusion.update(weight=weight, chosen_on=f"valid ACC, {len(vtasks)} users", sweep=sweep)
            if self.fusion_weight is None and fused_with == "llm":
                # The explanation protocol ranks with the untuned LLM: a weight chosen for a tuned one is not its.
                self.fusion_weight = fusion["weight"]
        histories = None
        if RECENCY in self.config.systems:
            from kerec.data.history import training_histories

            histories = training_histories(prepared.dataset, prepared.split.train)
            weight, sweep = cp.choose_weight(vgnn, cp.recency_scores(cand.embeddings.items, vtasks, histories,
                                                                     section.recency), vtasks)
            fusion.update(recency_weight=weight, recency_chosen_on=f"valid ACC, {len(vtasks)} users",
                          recency_sweep=sweep, recency_items=section.recency)
        stage: dict[str, dict[str, Any]] = {}
        for variant, tasks in variants.items():
            gnn = cp.retriever_scores(cand, tasks)
            rows = {section.retriever: cp.rank_metrics(gnn, tasks),
                    "random": cp.rank_metrics(cp.retriever_scores(self.systems.get("random", seed), tasks), tasks)}
            slug = "negatives" if variant == "random negatives" else "top20"
            for system in llm_systems:
                llm = cp.llm_scores(self._scorer(system, seed), tasks, ids,
                                    self.shard(f"{system}-seed{seed}-test-{slug}", base_key | {"part": "test", "variant": slug}),
                                    batch=section.batch, label=f"{system} {variant} seed {seed}", progress=self.progress)
                rows[system] = cp.rank_metrics(llm, tasks)
                if system == fused_with and FUSED in self.config.systems:
                    rows[FUSED] = cp.rank_metrics(fuse_all(gnn, llm, fusion["weight"]), tasks)
            if histories is not None:
                recency = cp.recency_scores(cand.embeddings.items, tasks, histories, section.recency)
                rows[RECENCY] = cp.rank_metrics(fuse_all(gnn, recency, fusion["recency_weight"]), tasks)
            if checkpoint_systems:
                tuned_gnn = self._tuned_gnn_scores(tasks, ids)
                rows[TUNED_GNN] = cp.rank_metrics(tuned_gnn, tasks)
                if JOINT in checkpoint_systems:  # the soft-prompt letters (cached if llm-soft was scored) + β·z
                    llm = cp.llm_scores(self._scorer("llm-soft", seed), tasks, ids,
                                        self.shard(f"llm-soft-seed{seed}-test-{slug}", base_key | {"part": "test", "variant": slug}),
                                        batch=section.batch, label=f"llm-soft {variant} seed {seed}", progress=self.progress)
                    beta = self.tuned().residual
                    rows[JOINT] = cp.rank_metrics([lp + beta * z for lp, z in zip(llm, tuned_gnn)], tasks)
                rows = {s: m for s, m in rows.items() if s != TUNED_GNN or s in checkpoint_systems}
            stage[variant] = {s: {k: float(v.mean()) for k, v in m.items()} | {"users": len(tasks)} for s, m in rows.items()}
            for system in [*llm_systems, FUSED, *checkpoint_systems, RECENCY]:
                if system in rows:  # paired over the sampled users: ACC of this system vs the GNN alone
                    test = paired_test(rows[system]["acc"], rows[section.retriever]["acc"], metric="acc",
                                       test=self.config.significance.test, permutations=self.config.significance.permutations)
                    stage[variant][system]["vs_gnn"] = {"test": test.test, "p_value": test.p_value,
                                                        "wins": test.a_wins, "losses": test.b_wins}
            if FUSED in rows and RECENCY in rows:  # does the LLM add more than the feature it was handed?
                test = paired_test(rows[FUSED]["acc"], rows[RECENCY]["acc"], metric="acc",
                                   test=self.config.significance.test, permutations=self.config.significance.permutations)
                stage[variant][FUSED]["vs_recency"] = {"test": test.test, "p_value": test.p_value,
                                                       "wins": test.a_wins, "losses": test.b_wins}
        return fusion, stage

    def llm(self) -> Any:
        if self._llm is None:
            from kerec.llm import load_llm

            self._llm = load_llm(self.config.llm.spec, batch_size=self.config.llm.batch_size, progress=False)
        return self._llm

    def recommender(self, seed: int) -> Any:
        """The API object over the candidate retriever at ``seed``, with the LLM (history: training split)."""
        if seed not in self._recs:
            from kerec.api import Recommender, Settings

            section = self.config.protocols.candidates
            assert section is not None
            trained = self.systems.get(section.retriever, seed)
            data = self.config.dataset.folder
            # explanations="llm": the explain protocol measures the LLM's texts, which "auto" skips on a CPU
            self._recs[seed] = Recommender.load(trained.checkpoint, data=data, llm=self.llm(),
                                                settings=Settings(history="train", explanations="llm"))
            if self.loaded is not None:
                self.loaded()
        return self._recs[seed]

    def tuned(self) -> Any:
        """The finetune checkpoint's :class:`~kerec.finetune.scoring.TunedRanker` (loaded once)."""
        if self._tuned is None:
            from kerec.finetune.scoring import TunedRanker

            data = self.config.dataset.folder
            self._tuned = TunedRanker.load(self.config.llm.finetune, data=data, batch_size=self.config.llm.batch_size,
                                           engine=self.config.llm.tuned_engine)
        return self._tuned

    def _finetune_id(self) -> str | None:
        """The tuned checkpoint's content hash (LLM scores are keyed by it, not by its path alone)."""
        if not self.config.llm.finetune:
            return None
        from kerec.finetune.checkpoint import fingerprint

        return fingerprint(self.config.llm.finetune)

    def _scorer(self, system: str, seed: int) -> Any:
        if system == "llm":
            rec = self.recommender(seed)
            return lambda users, cands: [s.llm for s in rec.score_candidates(users, cands)]
        _, soft, facts = LLM_SYSTEMS[system]
        tuned = self.tuned()
        return lambda users, cands: tuned.letter_logprobs(users, cands, soft_prompt=soft,
                                                          facts_in_prompt=tuned.text_facts if facts else 0)

    def _tuned_gnn_scores(self, tasks: list[Any], ids: tuple[Any, Any]) -> list[np.ndarray]:
        """The tuned GNN's standardised scores of each task's candidates (no LLM: cheap, not sharded)."""
        users_map, items_map = ids
        tuned, out = self.tuned(), []
        for start in range(0, len(tasks), 256):
            chunk = tasks[start:start + 256]
            z = tuned.gnn_scores([users_map.external(t.user) for t in chunk],
                                 [[items_map.external(int(i)) for i in t.items] for t in chunk])
            out.extend(row[: len(t.items)] for row, t in zip(z, chunk))
        return out

    # -------------------------------------------------------------------------- explanations, latency
    def explain(self) -> dict[str, Any]:
        from kerec.eval import candidates as cp
        from kerec.eval.explain import explain_users, summarise
        from kerec.eval.systems import train_key

        section, cand = self.config.protocols.explain, self.config.protocols.candidates
        assert section is not None and cand is not None
        seed = self.config.seeds[0]
        rec = self.recommender(seed)
        weight = self.fusion_weight if self.fusion_weight is not None else (cand.fusion_weight or 0.0)
        rec = rec.with_settings(fusion_weight=weight)
        prepared = rec.prepared
        users = (self.sample_users or cp.sample_users(prepared, "test", cand.users, seed))[: section.users]
        ext = [prepared.dataset.users.external(u) for u in users]
        key = {"train": train_key(self.config, cand.retriever, seed), "explain": asdict(section),
               "llm": asdict(self.config.llm), "fusion_weight": weight, "users": ext}
        records = explain_users(rec, ext, section.k, self.shard(f"explain-seed{seed}", key), progress=self.progress)
        self.explained = records
        everyone = self._ground_all(rec, cand.retriever, seed, section.k) if section.all_users else None
        return {"seed": seed, "k": section.k, "fusion_weight": weight, **summarise(records), "all_users": everyone,
                "per_user": [{"user": r["users"][0], "ms": r["ms"], "sources": r["sources"]} for r in records]}

    def _ground_all(self, ranked: Any, retriever: str, seed: int, k: int) -> dict[str, Any]:
        """Every held-out test user's top ``k`` from the GNN with templated explanations, re-checked;
        ``ranked``: the explain protocol's Recommender, whose retriever, graph store and data are reused."""
        from kerec.eval import candidates as cp
        from kerec.eval.explain import ground_users
        from kerec.eval.systems import train_key

        rec = ranked.with_llm(None).with_settings(history="train", explanations="template")
        users = [rec.prepared.dataset.users.external(u) for u in cp.sample_users(rec.prepared, "test", 0, seed)]
        key = {"train": train_key(self.config, retriever, seed), "k": k, "explanations": "template"}
        return ground_users(rec, users, k, self.shard(f"ground-all-seed{seed}", key), progress=self.progress)

    # ----------------------------------------------------------------------------------- cold start
    def cold_start(self) -> dict[str, Any]:
        from kerec.eval.full import FullResult
        from kerec.eval.regimes import kg_gain
        from kerec.eval.systems import Regime, train_key
        from kerec.gnn import evaluate_cold_start

        section = self.config.protocols.cold_start
        assert section is not None
        regime = Regime("cold_items", section.fraction)
        out: dict[str, Any] = {"fraction": section.fraction, "systems": {}}
        per_user: dict[tuple[str, int], FullResult] = {}
        for seed in self.config.seeds[: section.seeds]:
            for system in section.systems:
                key = {"train": train_key(self.config, system, seed, regime), "per_user": True}
                shard = self.shard(f"cold-{system}-seed{seed}", key)
                records = shard.records()
                if not records:
                    t = self.systems.get(system, seed, regime)
                    res = evaluate_cold_start(t.model, t.graph, t.prepared, keep_per_user=True)
                    model = res["model"]
                    assert model.per_user is not None and model.users is not None
                    shard.append({"users": model.users.tolist(),
                                  "per_user": {k: v.tolist() for k, v in model.per_user.items()},
                                  "result": {name: {**r.metrics, "users": r.num_users} for name, r in res.items()},
                                  "cold_items": int(t.prepared.cold.cold_items.size)})
                    records = shard.records()
                record = records[0]
                per_user[(system, seed)] = FullResult(np.asarray(record["users"], dtype=np.int64),
                                                      {k: np.asarray(v) for k, v in record["per_user"].items()},
                                                      np.zeros(0))
                out["systems"].setdefault(system, {})[str(seed)] = record["result"]
                out["cold_items"] = record["cold_items"]
        out["kg_gain"] = kg_gain(per_user, replace(self.config, seeds=self.config.seeds[: section.seeds]))
        return out

    def sparsity(self) -> dict[str, Any]:
        from kerec.eval.regimes import sparsity

        return sparsity(self)

    def cold_users(self) -> dict[str, Any]:
        from kerec.eval.regimes import cold_user_regime

        return cold_user_regime(self)

    def long_tail(self) -> dict[str, Any]:
        from kerec.eval.regimes import long_tail

        return long_tail(self)

    # ------------------------------------------------------------------------------------- training
    def training(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        order = {s: n for n, s in enumerate(self.config.systems)}
        ranked = sorted(self.systems.trained.items(), key=lambda kv: (kv[0][2] is not None, order.get(kv[0][0], 99), kv[0][1]))
        for (system, seed, regime), trained in ranked:
            if trained.record:
                name = f"{system} ({regime.label})" if regime is not None else system
                out.setdefault(name, {})[str(seed)] = {k: trained.record.get(k) for k in
                                                       ("best_epoch", "epochs_run", "seconds_per_epoch_median",
                                                        "fit_seconds", "tensorboard", "item_head")}
        return out


def run_recbole(config: EvalConfig) -> None:
    """Run the configured RecBole models on the config's split folder (``eval/recbole/run_recbole.py``, in
    RecBole's own venv); results land in the first ``anchors.recbole`` folder."""
    import subprocess

    split = config.dataset.split
    if split in ("random", "loo"):
        raise EvalConfigError(f"{config.source}: anchors.run_recbole needs dataset.split to be a split folder "
                              "(RecBole is fed the identical pairs)")
    python = Path("eval/recbole/.venv/bin/python")
    if not python.is_file():
        raise EvalConfigError(f"RecBole's venv is missing ({python}); run `bash eval/recbole/setup.sh` first")
    cmd = [str(python), "eval/recbole/run_recbole.py", "--split", split, "--models", *config.anchors.run_recbole,
           "--seeds", *map(str, config.seeds), "--threads", str(config.threads), "--out", config.anchors.recbole[0]]
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True)


__all__ = ["evaluate", "RETRIEVER_SYSTEMS"]
