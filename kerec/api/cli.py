"""``kerec recommend`` and ``kerec train fusion``: the Recommender's commands."""
from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kerec.data.cli import add_data_args
from kerec.paths import default_checkpoint
from kerec.process import freeze_long_lived_objects


def cmd_train_fusion(args: argparse.Namespace) -> None:
    from kerec.api import Recommender
    from kerec.api.tuning import choose_fusion_weight, save_fusion_choice

    checkpoint = default_checkpoint() if args.checkpoint is None else Path(args.checkpoint)
    rec = Recommender.load(checkpoint, data=args.data, llm=args.llm)
    choice, sweep = choose_fusion_weight(rec, args.llm, users=args.users, seed=args.seed)
    print("validation ACC by weight: " + ", ".join(f"{w} {v:.3f}" for w, v in sweep.items()))
    save_fusion_choice(checkpoint, choice)
    print(f"fusion weight {choice.weight} for LLM {choice.llm!r} (valid ACC {choice.valid_acc:.3f} over "
          f"{choice.users} users) saved in {checkpoint}; `kerec recommend` with this LLM uses it")


def cmd_recommend(args: argparse.Namespace) -> None:
    from kerec.api import Recommender, Settings, checkpoint_path
    from kerec.gnn.checkpoint import Checkpoint

    overrides = {"candidates": args.candidates, "fusion_weight": args.fusion_weight, "explanations": args.explanations}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    # Bad ids, k and settings fail here, from the checkpoint's id lists, not after seconds of loading models.
    Settings(**overrides)
    Checkpoint.load(checkpoint_path(args.checkpoint, args.tuned)).check_request(
        users=args.user, items=args.candidates_list or (), k=args.k)
    rec = Recommender.load(args.checkpoint, data=args.data, store=args.store, llm=None if args.llm == "none" else args.llm,
                           tuned=args.tuned, tuned_engine=args.tuned_engine)
    rec = rec.with_settings(**overrides)
    freeze_long_lived_objects()
    results = rec.recommend_many(args.user, args.k, candidates=args.candidates_list, explain=not args.no_explain)
    if args.json:
        print(json.dumps({u: [r.to_dict() for r in recs] for u, recs in results.items()}, indent=2))
        return
    for user, recs in results.items():
        _print_recommendations(user, recs)
        if args.show:
            from kerec.kg.show import render, user_subgraph

            sub = user_subgraph(rec.store, user, [r.item_id for r in recs[:5]], popularity=rec.item_popularity)
            path = render(sub, Path(args.show) / f"user-{user}-recommended.{args.image_format}")
            print(f"       picture of the history, linking KG nodes and the top 5: {path}")


def _print_recommendations(user: str, recs: Sequence[Any]) -> None:
    print(f"\nuser {user}: top {len(recs)}")
    for r in recs:
        llm = f"  llm {r.llm_logprob:6.2f}" if r.llm_logprob is not None else ""
        print(f"{r.rank:>3}. {r.title}  [item {r.item_id}]  score {r.score:+.2f}  gnn {r.gnn_score:.2f}{llm}")
        if r.explanation:
            for line in textwrap.wrap(f"{r.explanation} ({r.explanation_source})", 100):
                print(f"       {line}")
        for n in r.cited:
            print(f"       [{n}] {r.evidence[n - 1].text}  ({', '.join(r.evidence[n - 1].fact_ids)})")


def add_train_parser(trainp: argparse._SubParsersAction) -> None:
    """``kerec train fusion``."""
    p = trainp.add_parser("fusion", help="choose the GNN + LLM fusion weight on validation and save it in the checkpoint",
                          description="Score validation users' 20 candidates (a held-out item + 19 never-seen items) "
                                      "with the GNN and the LLM, keep the fusion weight with the best ACC, and save it "
                                      "in the retriever checkpoint for that LLM; `kerec recommend`/`serve` with the "
                                      "same --llm use it (Settings.fusion_weight overrides).")
    add_data_args(p)
    p.add_argument("--checkpoint", default=None, help="retriever.pt (default: $KEREC_HOME/retriever/retriever.pt)")
    p.add_argument("--llm", default="auto", help="LLM spec (kerec.llm.load_llm), saved with the weight (default: auto)")
    p.add_argument("--users", type=int, default=300, help="validation users sampled (0 = all; default 300)")
    p.add_argument("--seed", type=int, default=2020, help="sampling seed (default 2020)")
    p.set_defaults(func=cmd_train_fusion)



def add_parsers(top: argparse._SubParsersAction) -> None:
    """``kerec recommend``."""
    p = top.add_parser("recommend", help="explained top-k recommendations for users (GNN → KG evidence → LLM)",
                       description="Recommend with a trained retriever, KG evidence and the LLM ranker; every "
                                   "explanation's citations are checked against the graph store.")
    p.add_argument("--user", action="append", required=True, help="user id (repeat for several users)")
    p.add_argument("-k", type=int, default=10, help="items per user (default 10; checked with the user ids before any model loads)")
    p.add_argument("--checkpoint", default="default",
                   help="retriever.pt (default: the one `kerec train retriever` wrote under $KEREC_HOME/retriever)")
    p.add_argument("--data", default=None, help="dataset the retriever was trained on (default: the embedded ml-100k)")
    p.add_argument("--store", default=None, help="graph store URI holding that dataset (default: an in-process store)")
    p.add_argument("--llm", default="auto",
                   help="LLM spec: 'auto' (default+bf16 on a CPU with native bf16, else default), "
                        "'default' (SmolLM2-135M-Instruct, transformers on CPU, float32), 'default+bf16' (the same "
                        "in bfloat16: ~2x faster on CPUs with AVX512-BF16, same ranking), 'default+int8' (int8 weights: "
                        "~2.7x faster, ranking moved a little), 'transformers:<id or path>', 'vllm:<id>', "
                        "'openai:<url>#<model>', or 'none' (GNN ranking, templated explanations)")
    p.add_argument("--tuned", default=None, metavar="DIR",
                   help="a `kerec finetune` run or step folder: its LLM ranks with the graph soft prompt, and its GNN is "
                        "the retriever unless --checkpoint is given (explanations: --llm, e.g. default@DIR/step-N/adapter)")
    p.add_argument("--tuned-engine", choices=("transformers", "vllm"), default="transformers",
                   help="what runs the --tuned LLM: the joint model in transformers, or vLLM (LoRA adapter via "
                        "enable_lora, the graph soft prompt as prompt embeddings)")
    p.add_argument("--candidates", type=int, default=None, help="GNN candidates the LLM ranks (≤ 20, default 20)")
    p.add_argument("--candidates-list", nargs="+", default=None, metavar="ITEM", help="rank only these item ids")
    p.add_argument("--fusion-weight", type=float, default=None,
                   help="LLM share of the fused score, 0..1 (default: the weight saved beside the checkpoint, else 0)")
    p.add_argument("--no-explain", action="store_true", help="skip explanations")
    p.add_argument("--explanations", choices=("auto", "llm", "template"), default=None,
                   help="'llm': written by the LLM, citations checked, templated when they fail; 'template': built "
                        "from the GNN's top facts, no generation; 'auto' (default): 'llm' unless the LLM runs on "
                        "this CPU, where writing ten takes 14-20 s with the 135M model and most fail the check")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--show", default=None, metavar="DIR",
                   help="also draw each user's history, linking KG nodes and recommended items into DIR")
    p.add_argument("--image-format", choices=("png", "svg", "html"), default="png", help="picture format for --show")
    p.set_defaults(func=cmd_recommend)
