"""Run RecBole 1.2.1's BPR, LightGCN, CKE, KGAT and KGIN on kerec's exact split.

Runs inside RecBole's own venv (``bash eval/recbole/setup.sh``), never imports kerec, and writes
one JSON per (model, seed) to ``--out`` (default ``eval/results/recbole/``)::

    eval/recbole/.venv/bin/python eval/recbole/run_recbole.py \
        --split eval/anchors/ml100k-recbole-split \
        --models BPR LightGCN CKE KGAT KGIN --seeds 2020 2021 2022

The parent process writes the dataset folder once and starts one child process per run (RecBole
configures logging, RNGs and the working directory process-wide, so runs must not share one).
The child builds Config -> create_dataset -> data_preparation -> get_model -> get_trainer itself
(``recbole.quick_start`` imports ray), checks that RecBole holds exactly the split's pairs, trains
with RecBole's defaults, selects on valid NDCG@10 and tests once on the best checkpoint.
See README.md beside this file for the workarounds and the output format.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "results" / "recbole"
DEFAULT_WORK = HERE / "work"
MODELS = ("BPR", "LightGCN", "CKE", "KGAT", "KGIN")
KG_MODELS = frozenset({"CKE", "KGAT", "KGIN"})
# KGIN's GraphConv drops half the KG edges at random in every forward pass, evaluation included,
# so one test pass is one random draw: the test metrics are averaged over several passes.
STOCHASTIC_EVAL_MODELS = frozenset({"KGIN"})
METRICS = ("Recall", "NDCG", "Hit", "MRR")
TOPK = (10, 20)
VALID_METRIC = "NDCG@10"
RESULT_KEYS = tuple(f"{m.lower()}@{k}" for m in METRICS for k in TOPK)
SCHEMA_VERSION = 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--split", type=Path, required=True,
                   help="folder with train.tsv/valid.tsv/test.tsv (header user_id<TAB>item_id)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--seeds", nargs="+", type=int, default=[2020, 2021, 2022])
    p.add_argument("--epochs", type=int, default=300, help="maximum training epochs")
    p.add_argument("--time-cap-minutes", type=float, default=20.0,
                   help="stop training after the first validation past this many minutes "
                        "(the best checkpoint so far is tested); 0 = no cap")
    p.add_argument("--train-batch-size", type=int, default=4096)
    p.add_argument("--stopping-step", type=int, default=10, help="early-stopping patience (epochs)")
    p.add_argument("--test-passes", type=int, default=10,
                   help=f"test passes averaged for models with random evaluation "
                        f"({', '.join(sorted(STOCHASTIC_EVAL_MODELS))}); others are tested once")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads for each run; unset = torch's own choice")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the result JSONs")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK,
                   help="scratch folder: dataset files, RecBole logs and checkpoints")
    p.add_argument("--force", action="store_true", help="rerun runs whose JSON already exists")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep RecBole's .pth checkpoints under --work (deleted by default)")
    # Internal: one run in a child process.
    p.add_argument("--single", nargs=2, metavar=("MODEL", "SEED"), help=argparse.SUPPRESS)
    p.add_argument("--split-info", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error("--epochs must be at least 1")
    if args.time_cap_minutes < 0:
        p.error("--time-cap-minutes must be >= 0")
    if args.test_passes < 1:
        p.error("--test-passes must be at least 1")
    return args


def result_path(out: Path, model: str, seed: int) -> Path:
    return out / f"{model}-seed{seed}.json"


# --------------------------------------------------------------------------- parent process


def orchestrate(args: argparse.Namespace) -> int:
    from split_to_atomic import SplitError, write_atomic

    try:
        split_info = write_atomic(args.split, args.work.resolve() / "data")
    except SplitError as exc:
        print(f"[recbole] ERROR: {exc}", file=sys.stderr)
        return 2
    info = split_info.as_dict()
    print(f"[recbole] split {info['split_dir']} sha256 {info['sha256'][:12]}: "
          f"{info['train']}/{info['valid']}/{info['test']} train/valid/test pairs, "
          f"{info['users']} users, {info['items']} items ({info['linked_items']} KG-linked)")
    kg_asked = sorted(set(args.models) & KG_MODELS)
    if kg_asked and info["unlinked_items"]:
        print(f"[recbole] ERROR: {info['unlinked_items']} items of the split have no KG link; "
              f"{', '.join(kg_asked)} need every item linked (write the split with "
              "`kerec data split --linked-only`).", file=sys.stderr)
        return 2
    info_path = Path(info["dataset_dir"]) / "split_info.json"
    info_path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    args.out.mkdir(parents=True, exist_ok=True)

    failed: list[str] = []
    for model in args.models:
        for seed in args.seeds:
            target = result_path(args.out, model, seed)
            if not args.force and _up_to_date(target, info["sha256"]):
                print(f"[recbole] {target.name} exists for this split: skipped (--force reruns)")
                continue
            print(f"[recbole] === {model} seed {seed} ===", flush=True)
            command = [sys.executable, str(Path(__file__).resolve()),
                       *_child_args(args, model, seed), "--split-info", str(info_path)]
            if subprocess.run(command, check=False).returncode != 0:
                failed.append(f"{model}/seed {seed}")
    _print_summary(args.out, args.models, args.seeds)
    if failed:
        print(f"[recbole] FAILED: {', '.join(failed)} (see the output above and the logs "
              f"under {args.work / 'runs'})", file=sys.stderr)
        return 1
    return 0


def _up_to_date(target: Path, sha: str) -> bool:
    if not target.is_file():
        return False
    old = json.loads(target.read_text(encoding="utf-8"))
    if old.get("split", {}).get("sha256") != sha:
        raise SystemExit(f"[recbole] ERROR: {target} holds a result for another split "
                         f"({old.get('split', {}).get('split_dir')}); use another --out or --force")
    return True


def _child_args(args: argparse.Namespace, model: str, seed: int) -> list[str]:
    child = ["--split", str(args.split.resolve()), "--single", model, str(seed),
             "--epochs", str(args.epochs), "--time-cap-minutes", str(args.time_cap_minutes),
             "--train-batch-size", str(args.train_batch_size),
             "--stopping-step", str(args.stopping_step), "--test-passes", str(args.test_passes),
             "--out", str(args.out.resolve()), "--work", str(args.work.resolve())]
    if args.threads is not None:
        child += ["--threads", str(args.threads)]
    if args.keep_checkpoints:
        child.append("--keep-checkpoints")
    return child


def _print_summary(out: Path, models: list[str], seeds: list[int]) -> None:
    header = ["model", "runs", *RESULT_KEYS[:4], "s/epoch", "epochs", "capped"]
    print("\n[recbole] test results (mean over the seeds found in " + str(out) + ")")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for model in models:
        runs = [json.loads(p.read_text(encoding="utf-8"))
                for p in (result_path(out, model, s) for s in seeds) if p.is_file()]
        if not runs:
            continue
        mean = {k: statistics.fmean(r["test"][k] for r in runs) for k in RESULT_KEYS[:4]}
        row = [model, str(len(runs)), *(f"{mean[k]:.4f}" for k in RESULT_KEYS[:4]),
               f"{statistics.median(r['seconds_per_epoch_median'] for r in runs):.2f}",
               "/".join(str(r["epochs_run"]) for r in runs),
               str(sum(r["time_capped"] for r in runs))]
        print("| " + " | ".join(row) + " |")


# --------------------------------------------------------------------------- child process


class _TimeCapReached(Exception):
    """Raised from the trainer's end-of-validation callback to end training early."""


def run_single(args: argparse.Namespace) -> int:
    import recbole_compat

    recbole_compat.install()  # before any RecBole import
    model_name, seed = args.single[0], int(args.single[1])
    info = json.loads(args.split_info.read_text(encoding="utf-8"))
    run_dir = args.work.resolve() / "runs" / f"{model_name}-seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)  # no stale checkpoint or cached dataset
    run_dir.mkdir(parents=True)
    os.chdir(run_dir)  # RecBole writes log/ and log_tensorboard/ into the working directory
    sys.argv = sys.argv[:1]  # RecBole's Config parses --key=value from sys.argv itself

    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    config, trainer, loaders, dataset_summary = _build(args, info, model_name, seed, run_dir)
    setup_seconds = time.perf_counter() - started
    train_log = _train(args, trainer, loaders)
    test, test_spread = _test(args, trainer, model_name, loaders[2])
    record = _record(args, info, config, model_name, seed, dataset_summary, train_log,
                     test, test_spread, setup_seconds, time.perf_counter() - started)
    if not args.keep_checkpoints:
        Path(trainer.saved_model_file).unlink(missing_ok=True)
    target = result_path(args.out, model_name, seed)
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(target)
    print(f"[recbole] {model_name} seed {seed}: test recall@20 {test['recall@20']:.4f} "
          f"ndcg@20 {test['ndcg@20']:.4f}; {train_log['epochs_run']} epochs, "
          f"{record['seconds_per_epoch_median']:.2f} s/epoch -> {target}", flush=True)
    return 0


def _recbole_config_dict(args: argparse.Namespace, info: dict[str, Any], seed: int,
                         run_dir: Path) -> dict[str, Any]:
    """RecBole's defaults, spelled out where they matter for the comparison."""
    return {
        "data_path": str(Path(info["dataset_dir"]).parent),
        "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id"], "kg": ["head_id", "relation_id", "tail_id"],
                     "link": ["item_id", "entity_id"]},
        "checkpoint_dir": str(run_dir / "saved"),
        "seed": seed, "reproducibility": True, "show_progress": False, "state": "INFO",
        "epochs": args.epochs, "train_batch_size": args.train_batch_size,
        "learner": "adam", "learning_rate": 1e-3, "weight_decay": 0.0,
        "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1, "alpha": 1.0,
                                  "dynamic": False, "candidate_num": 0},
        "eval_step": 1, "stopping_step": args.stopping_step,
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "group_by": "user", "order": "RO",
                      "mode": "full"},  # split/order are ignored with benchmark_filename
        "metrics": list(METRICS), "topk": list(TOPK), "valid_metric": VALID_METRIC,
        "eval_batch_size": 4096, "threshold": None,  # every interaction is a positive
        "save_dataset": False, "save_dataloaders": False, "log_wandb": False,
    }


def _build(args: argparse.Namespace, info: dict[str, Any], model_name: str, seed: int,
           run_dir: Path) -> tuple[Any, Any, tuple[Any, Any, Any], dict[str, Any]]:
    from logging import getLogger

    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    config = Config(model=model_name, dataset=info["dataset_name"],
                    config_dict=_recbole_config_dict(args, info, seed, run_dir))
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(config)
    dataset = create_dataset(config)
    logger.info(dataset)
    loaders = data_preparation(config, dataset)
    dataset_summary = _check_dataset(dataset, loaders, info, model_name)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, loaders[0]._dataset).to(config["device"])
    logger.info(model)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    return config, trainer, loaders, dataset_summary


def _check_dataset(dataset: Any, loaders: tuple[Any, Any, Any], info: dict[str, Any],
                   model_name: str) -> dict[str, Any]:
    """Fail loudly unless RecBole holds exactly the split's pairs, users and items."""
    from split_to_atomic import PARTS, read_split

    parts, _ = read_split(Path(info["split_dir"]))
    problems = []
    summary: dict[str, Any] = {"users": dataset.user_num - 1, "items": dataset.item_num - 1}
    for part, loader in zip(PARTS, loaders):
        feat = loader._dataset.inter_feat
        users = dataset.id2token(dataset.uid_field, feat[dataset.uid_field].numpy())
        items = dataset.id2token(dataset.iid_field, feat[dataset.iid_field].numpy())
        summary[part] = len(feat)
        if len(feat) != info[part]:
            problems.append(f"{part}: RecBole has {len(feat)} pairs, the split {info[part]}")
        elif set(zip(users.tolist(), items.tolist())) != set(parts[part]):
            problems.append(f"{part}: RecBole's pairs differ from {part}.tsv")
    for key in ("users", "items"):
        if summary[key] != info[key]:
            problems.append(f"{key}: RecBole has {summary[key]}, the split {info[key]}")
    if model_name in KG_MODELS:
        summary.update(entities=dataset.entity_num - 1, relations=dataset.relation_num - 1,
                       triples=len(dataset.kg_feat), linked_items=len(dataset.item2entity))
        if summary["linked_items"] != info["items"]:
            problems.append(f"KG: {summary['linked_items']} of {info['items']} items linked")
    if problems:
        raise SystemExit("[recbole] ERROR: RecBole's dataset does not match the split:\n  "
                         + "\n  ".join(problems))
    print(f"[recbole] dataset check ok: {summary}", flush=True)
    return summary


def _train(args: argparse.Namespace, trainer: Any,
           loaders: tuple[Any, Any, Any]) -> dict[str, Any]:
    """``trainer.fit`` with RecBole's early stopping, timed epochs and the time cap."""
    epoch_seconds: list[float] = []
    valid_seconds: list[float] = []
    state = {"best_epoch": None, "epochs_run": 0, "time_capped": False}
    train_epoch, valid_epoch = trainer._train_epoch, trainer._valid_epoch

    def timed_train_epoch(*a: Any, **kw: Any) -> Any:  # the outer call: KGAT's is RS + KG + A
        t0 = time.perf_counter()
        loss = train_epoch(*a, **kw)
        epoch_seconds.append(time.perf_counter() - t0)
        state["epochs_run"] += 1
        return loss

    def timed_valid_epoch(*a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        result = valid_epoch(*a, **kw)
        valid_seconds.append(time.perf_counter() - t0)
        return result

    trainer._train_epoch, trainer._valid_epoch = timed_train_epoch, timed_valid_epoch
    cap = args.time_cap_minutes * 60
    fit_start = time.perf_counter()

    def after_validation(epoch_idx: int, valid_score: float) -> None:
        if trainer.cur_step == 0:  # early_stopping just recorded a new best (and saved it)
            state["best_epoch"] = epoch_idx
        if cap and time.perf_counter() - fit_start > cap:
            state["time_capped"] = True
            raise _TimeCapReached

    try:
        trainer.fit(loaders[0], loaders[1], saved=True, show_progress=False,
                    callback_fn=after_validation)
    except _TimeCapReached:
        print(f"[recbole] time cap of {args.time_cap_minutes} min reached after "
              f"{state['epochs_run']} epochs; testing the best checkpoint so far", flush=True)
    return {**state, "epoch_seconds": epoch_seconds, "valid_seconds": valid_seconds,
            "fit_seconds": time.perf_counter() - fit_start,
            "best_valid": dict(trainer.best_valid_result or {}),
            "best_valid_score": float(trainer.best_valid_score)}


def _test(args: argparse.Namespace, trainer: Any, model_name: str,
          test_data: Any) -> tuple[dict[str, float], dict[str, float] | None]:
    """Test once on the best checkpoint (mean of ``--test-passes`` for random-eval models)."""
    if model_name not in STOCHASTIC_EVAL_MODELS:
        result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
        return {k: float(result[k]) for k in RESULT_KEYS}, None
    import torch

    # RecBole's evaluate() reloads the weights but KGIN keeps the embeddings cached by the last
    # validation pass (it saves no other_parameter), so it would test the last epoch's model.
    checkpoint = torch.load(trainer.saved_model_file, map_location=trainer.device)
    trainer.model.load_state_dict(checkpoint["state_dict"])
    trainer.model.load_other_parameter(checkpoint.get("other_parameter"))
    passes = []
    for _ in range(args.test_passes):
        trainer.model.restore_user_e = trainer.model.restore_entity_e = None
        result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
        passes.append({k: float(result[k]) for k in RESULT_KEYS})
    mean = {k: round(statistics.fmean(p[k] for p in passes), 6) for k in RESULT_KEYS}
    spread = {k: round(statistics.pstdev(p[k] for p in passes), 6) for k in RESULT_KEYS}
    return mean, spread


def _record(args: argparse.Namespace, info: dict[str, Any], config: Any, model_name: str,
            seed: int, dataset_summary: dict[str, Any], train_log: dict[str, Any],
            test: dict[str, float], test_spread: dict[str, float] | None,
            setup_seconds: float, wall_seconds: float) -> dict[str, Any]:
    from importlib.metadata import version

    import torch

    epochs_run = train_log["epochs_run"]
    return {
        "schema": SCHEMA_VERSION,
        "model": model_name,
        "seed": seed,
        "test": test,
        "test_passes": args.test_passes if test_spread is not None else 1,
        "test_std_over_passes": test_spread,
        "best_valid_ndcg@10": float(train_log["best_valid"].get("ndcg@10", float("nan"))),
        "best_valid": {k: float(v) for k, v in train_log["best_valid"].items()},
        "best_epoch": train_log["best_epoch"],
        "epochs_run": epochs_run,
        "max_epochs": args.epochs,
        "stopped_early": epochs_run < args.epochs and not train_log["time_capped"],
        "time_cap_minutes": args.time_cap_minutes,
        "time_capped": train_log["time_capped"],
        "seconds_per_epoch_median": statistics.median(train_log["epoch_seconds"]),
        "epoch_seconds": [round(s, 4) for s in train_log["epoch_seconds"]],
        "valid_seconds_median": statistics.median(train_log["valid_seconds"]),
        "fit_seconds": train_log["fit_seconds"],
        "setup_seconds": setup_seconds,
        "wall_seconds": wall_seconds,
        "split": {k: info[k] for k in ("split_dir", "sha256", "train", "valid", "test", "users",
                                       "items")},
        "recbole_dataset": dataset_summary,
        "config": _config_record(config, model_name),
        "environment": {
            "python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "device": str(config["device"]),
            **{dist: version(dist) for dist in ("recbole", "torch", "dgl", "numpy", "scipy")},
            "torch_scatter": getattr(sys.modules.get("torch_scatter"), "__name__", None),
        },
        "recbole_log": _log_file(),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _config_record(config: Any, model_name: str) -> dict[str, Any]:
    """The training/evaluation settings and the model's own hyperparameters, as plain data."""
    import yaml
    import recbole

    keys = ["epochs", "train_batch_size", "learner", "learning_rate", "weight_decay",
            "train_neg_sample_args", "stopping_step", "eval_step", "valid_metric", "metrics",
            "topk", "eval_args", "eval_batch_size", "reproducibility"]
    model_yaml = Path(recbole.__file__).parent / "properties" / "model" / f"{model_name}.yaml"
    model_keys = list((yaml.safe_load(model_yaml.read_text(encoding="utf-8")) or {}).keys())
    return json.loads(json.dumps({k: config[k] for k in keys + model_keys}, default=str))


def _log_file() -> str | None:
    import logging

    for handler in logging.getLogger().handlers:
        if hasattr(handler, "baseFilename"):
            return str(handler.baseFilename)
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.single:
        if args.single[0] not in MODELS or args.split_info is None:
            raise SystemExit("--single is internal: use --models/--seeds instead")
        return run_single(args)
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
