"""``kerec data …``: dataset counts and splits; the dataset options every command shares."""
from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from kerec.data import FORMATS, Dataset, leave_one_out, load_dataset, random_split, save_split
from kerec.data.synth import MIN_PER_USER, SynthConfig, synthesize


# ---- shared options -------------------------------------------------------------------------------
def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None, metavar="PATH",
                   help="dataset folder (RecBole atomic or KGAT files); default: embedded MovieLens-100k + Freebase KG")
    p.add_argument("--format", default="auto", choices=FORMATS, help="dataset format (default: auto-detect)")


def dataset_of(args: argparse.Namespace) -> Dataset:
    return load_dataset(args.data, format=args.format)


def print_table(rows: Sequence[tuple[str, object]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value:,}" if isinstance(value, int) else f"  {key:<{width}}  {value}")


def cmd_data_info(args: argparse.Namespace) -> None:
    ds = dataset_of(args)
    print(f"dataset {ds.name} ({ds.source})")
    print_table(list(ds.describe().items()))
    attrs = ", ".join(f"{k}: {', '.join(v) or '-'}" for k, v in ds.attribute_fields.items())
    print(f"  attribute fields as KG facts: {attrs or '-'}")
    if ds.given_split is not None:
        print(f"  split shipped with the data: {ds.given_split.sizes()}")


def cmd_data_split(args: argparse.Namespace) -> None:
    ds = dataset_of(args)
    if args.linked_only:
        ds = ds.with_linked_items_only()
    split = random_split(ds, tuple(args.ratios), seed=args.seed) if args.protocol == "random" else leave_one_out(ds)
    for path in save_split(split, ds, args.out):
        print(f"wrote {path}")
    print(f"{split.protocol}: {split.sizes()}")


def cmd_data_synth(args: argparse.Namespace) -> None:
    config = SynthConfig(users=args.users, items=args.items, interactions=args.interactions, triples=args.triples,
                         seed=args.seed, tastes=args.tastes, friends=args.friends, name=args.name)
    started = time.perf_counter()
    report = synthesize(config, args.out)
    counts = ", ".join(f"{suffix} {n:,}" for suffix, n in report.rows.items())
    print(f"wrote {config.name} into {report.directory} in {time.perf_counter() - started:.1f} s: {counts} rows")


def add_parsers(top: argparse._SubParsersAction) -> None:
    """``kerec data info|split|synth``."""
    data = top.add_parser("data", help="inspect datasets and make splits").add_subparsers(dest="sub", required=True, metavar="SUB")
    p = data.add_parser("info", help="print dataset counts", description="Print a dataset's counts.")
    add_data_args(p)
    p.set_defaults(func=cmd_data_info)
    p = data.add_parser("split", help="make a deterministic split and write it as TSV",
                        description="Write train.tsv/valid.tsv/test.tsv (user_id, item_id) for other systems.")
    add_data_args(p)
    p.add_argument("--protocol", choices=("random", "loo"), default="random",
                   help="random: per-user random split with --ratios (RecBole); loo: leave-one-out by time")
    p.add_argument("--ratios", type=float, nargs=3, default=(0.8, 0.1, 0.1), metavar=("TRAIN", "VALID", "TEST"))
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--linked-only", action="store_true", help="keep only interactions with KG-linked items")
    p.add_argument("--out", required=True, help="folder for the three TSV files")
    p.set_defaults(func=cmd_data_split)
    p = data.add_parser(
        "synth", help="generate a synthetic dataset of any size (RecBole atomic files)",
        description="Write <name>.inter/.item/.kg/.link/.net with power-law popularity and latent tastes that "
                    "the KG (directors, subjects, actors) and item text (titles, genres) carry; friend links "
                    "between users of similar taste. The same --seed gives the same bytes.")
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--items", type=int, required=True)
    p.add_argument("--interactions", type=int, required=True,
                   help=f"distinct (user, item) pairs; at least {MIN_PER_USER} per user")
    p.add_argument("--triples", type=int, required=True,
                   help="KG triples: at least 2 per item plus one per person (the error states the minimum)")
    p.add_argument("--out", required=True, help="folder to write the files into (created)")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--tastes", type=int, default=20, help="latent tastes (default 20)")
    p.add_argument("--friends", type=float, default=5.0, help="mean friend links per user in .net; 0: no .net (default 5)")
    p.add_argument("--name", default="synth", help="file stem of the dataset (default synth)")
    p.set_defaults(func=cmd_data_synth)
