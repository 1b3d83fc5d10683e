"""``kerec eval --config FILE`` (wired into ``kerec.cli`` with :func:`configure` / :func:`run`) and
``python -m kerec.eval --config FILE``."""
from __future__ import annotations

import argparse


QUICK = "eval/configs/quick.yaml"


def configure(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """Add the options. ``required=False`` when the parser also has subcommands (``kerec eval retriever``):
    :func:`run` then fails with a clear message if ``--config`` is missing."""
    which = parser.add_mutually_exclusive_group(required=required)
    which.add_argument("--config", default=None, help="evaluation config YAML, e.g. eval/configs/default.yaml")
    which.add_argument("--quick", action="store_const", dest="config", const=QUICK,
                       help=f"every protocol once on 1 seed, in minutes: the same as --config {QUICK}")
    parser.add_argument("--out", default=None, help="report folder (default: eval/results/<name>)")
    parser.add_argument("--work", default=None, help="run folder for trained retrievers and shards "
                                                     "(default: runs/eval/<name>)")
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="fresh", action="store_false", default=False,
                        help="reuse trained retrievers and finished users from the run folder (the default)")
    resume.add_argument("--fresh", dest="fresh", action="store_true", help="delete the run folder first")
    parser.add_argument("--check", action="store_true", help="only check the config and exit")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    from kerec.eval.config import EvalConfigError, load_eval_config

    if args.config is None:
        raise EvalConfigError("give --config FILE (e.g. eval/configs/default.yaml), --quick, or a subcommand such as `retriever`")
    config = load_eval_config(args.config)
    if args.check:
        print(f"{args.config}: ok ({len(config.systems)} systems, {len(config.seeds)} seed(s))")
        return 0
    from kerec.eval.command import command_line
    from kerec.eval.harness import evaluate
    from kerec.process import freeze_long_lived_objects

    command = getattr(args, "command_line", None) or command_line("kerec")
    report = evaluate(config, out=args.out, work=args.work, fresh=args.fresh, progress=not args.no_progress,
                      command=command, loaded=freeze_long_lived_objects)
    print("\n".join(report.headline))
    print(f"report: {report.out / 'report.md'}")
    return 0
