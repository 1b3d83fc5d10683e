"""``kerec finetune --recipe FILE`` (wired into ``kerec.cli`` with :func:`add_parser` / :func:`run`) and
``python -m kerec.finetune --recipe FILE``."""
from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``finetune`` command to an argparse ``subparsers`` object; returns its parser."""
    parser = subparsers.add_parser("finetune", help="jointly tune the LLM (LoRA/QLoRA), soft prompt and GNN",
                                   description="Run a fine-tuning recipe (finetune/*.yaml).")
    configure(parser)
    return parser


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", required=True, help="recipe YAML, e.g. finetune/cpu-tiny.yaml")
    parser.add_argument("--resume", help="checkpoint folder (step-N) or run folder (its latest) to continue from")
    parser.add_argument("--out", help="output folder (overrides the recipe's out)")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimiser steps (overrides train.max_steps)")
    parser.add_argument("--samples", type=int, help="ranking samples (overrides data.ranking_samples)")
    parser.add_argument("--retriever", metavar="CHECKPOINT",
                        help="start from this trained retriever (`kerec train retriever`'s retriever.pt; its dataset "
                             "and split are used); overrides retriever.checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    from kerec.finetune.recipe import load_recipe
    from kerec.finetune.train import finetune

    recipe = load_recipe(args.recipe)
    changes: dict[str, Any] = {}
    if args.max_steps is not None:
        changes["train"] = {"max_steps": args.max_steps}
    if args.samples is not None:
        changes["data"] = {"ranking_samples": args.samples}
    if args.retriever is not None:
        changes["retriever"] = {"checkpoint": args.retriever}
    if args.out:
        changes["out"] = args.out
    if changes:
        recipe = recipe.replace(**changes)
    result = finetune(recipe, resume=args.resume, progress=not args.no_progress)
    first, last = (result.history[0], result.history[-1]) if result.history else (None, None)
    print(f"{result.steps} steps, {result.samples} samples ({result.dropped} too long), "
          f"{result.seconds_per_step:.2f} s/step (median)")
    if first and last:
        print(f"loss {first.loss:.4f} -> {last.loss:.4f} (L_LLM {first.loss_llm:.4f} -> {last.loss_llm:.4f})")
    print(f"checkpoint: {result.checkpoint}")
    print(f"TensorBoard: tensorboard --logdir {result.out}")
    return 0
