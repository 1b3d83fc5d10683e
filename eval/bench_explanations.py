"""Who writes explanations that pass the grounding check: ``recommend(user, k)`` with LLM-written
explanations for a few test users, per LLM spec; counts of sources and of rejection kinds, the passing texts.

    .venv/bin/python eval/bench_explanations.py --checkpoint runs/retriever-anchor/retriever.pt \\
        --llm default "default@runs/finetune-cpu-tiny-anchor/step-128/adapter"

Users are those of the default report's explain protocol (seed 2020 sample); ``history="train"`` as there.
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", default="default", help="retriever.pt (default: $KEREC_HOME/retriever)")
    p.add_argument("--llm", nargs="+", default=["default"], help="LLM specs that write the explanations")
    p.add_argument("--users", nargs="+", default=["19", "24", "48", "53"])
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--tokens", type=int, default=None, help="explanation_tokens (default: Settings' default)")
    p.add_argument("--attempts", type=int, default=None, help="explanation_attempts (default: Settings' default)")
    p.add_argument("--out", default=str(ROOT / "eval" / "results" / "explanations"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    from kerec.api import Recommender, Settings
    from kerec.explain import rejection_kind

    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    chosen = {"explanation_tokens": args.tokens, "explanation_attempts": args.attempts}
    settings = Settings(history="train", explanations="llm", **{k: v for k, v in chosen.items() if v is not None})
    for spec in args.llm:
        rec = Recommender.load(args.checkpoint, llm=spec, settings=settings)
        sources: Counter[str] = Counter()
        rejections: Counter[str] = Counter()
        passed, seconds = [], []
        for user in args.users:
            start = time.perf_counter()
            recs = rec.recommend(user, args.k)
            seconds.append(time.perf_counter() - start)
            for r in recs:
                sources[r.explanation_source] += 1
                rejections.update(rejection_kind(t) for t in r.rejected)
                if r.explanation_source in ("llm", "llm-retry"):
                    passed.append({"user": user, "title": r.title, "text": r.explanation})
        results.append({"llm": spec, "users": args.users, "k": args.k, "tokens": settings.explanation_tokens,
                        "attempts": settings.explanation_attempts, "sources": dict(sources),
                        "rejections": dict(rejections.most_common()), "passed": passed,
                        "seconds_p50": sorted(seconds)[len(seconds) // 2]})
        print(json.dumps(results[-1], indent=1))
    (out / "results.json").write_text(json.dumps({"checkpoint": args.checkpoint, "results": results}, indent=1))
    from kerec.eval.command import recorded_command

    lines = ["# LLM-written explanations against the grounding check", "",
             f"`{recorded_command('python eval/bench_explanations.py', argv)}` "
             f"(explanation_tokens {settings.explanation_tokens}, explanation_attempts {settings.explanation_attempts})", "",
             "| LLM | items | passed (llm / llm-retry) | templated | rejections | p50 s per recommend |", "|---|---|---|---|---|---|"]
    for r in results:
        n = sum(r["sources"].values())
        lines.append(f"| `{r['llm']}` | {n} | {r['sources'].get('llm', 0)} / {r['sources'].get('llm-retry', 0)} | "
                     f"{r['sources'].get('template', 0)} | "
                     + "; ".join(f"{k} {v}" for k, v in r["rejections"].items()) + f" | {r['seconds_p50']:.1f} |")
    lines += ["", "Texts that passed:", ""] + [f"- `{r['llm']}`, {p['title']}: {p['text']}" for r in results for p in r["passed"]]
    (out / "README.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
