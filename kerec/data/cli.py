"""``kerec data …``: dataset counts and splits; the dataset options every command shares."""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from kerec.data import FORMATS, Dataset, leave_one_out, load_dataset, random_split, save_split


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


def add_parsers(top: argparse._SubParsersAction) -> None:
    """``kerec data info|split``."""
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
