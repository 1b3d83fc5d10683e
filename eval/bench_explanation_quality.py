"""What the explanations say, before and after a change: over every test user's top-10 list of one
retriever (``kerec recommend --llm none``: templated explanations), with the explanation code of two
commits (``eval/explanation_dump.py`` run under each), measured the same way with this tree's code:

* **low-information only**: the share of explanations whose cited facts are all catalogue metadata
  (genre, language, country, release year, content rating: :data:`kerec.kg.information.LOW_INFORMATION`);
  explanations citing nothing (no fact links the pick) are counted apart;
* **history items named**: distinct items of the user's history whose full title the text writes, and the
  share of texts writing one of them more than once ("… with Heat and Kull [3], and … with Kull [4]");
* **grounding**: the share of cited facts found in the graph store, the share of cited path evidence whose
  facts link the user's history to the item, and the share of texts passing :func:`kerec.explain.check`
  with the catalogue's titles. True by construction for templated text: a regression check, not evidence;
* **undescribed entities**: the share of texts (and of evidence lines) showing a node as "unnamed", a raw
  Freebase id, or "share(s) an actor"-style with no film that says which.

    python eval/bench_explanation_quality.py --checkpoint runs/ret-explain/retriever.pt

writes eval/results/explanation_quality/{results.json,report.md}, recording the command, the commit and
whether the tree was clean.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kerec.data import load_dataset
from kerec.explain import TitleIndex, check
from kerec.kg import MemoryStore, build_ckg
from kerec.kg.evidence import Evidence
from kerec.kg.information import ROLES, role
from kerec.kg.model import NodeRef

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "eval" / "results" / "explanation_quality"
_ROLE_WORDS = "|".join(sorted((re.escape(r) for r in ROLES), key=len, reverse=True))
# "share an actor" with nothing after it that says which (a citation, punctuation or the end follows)
UNDESCRIBED = re.compile(rf"\bunnamed\b|\bm\.0[0-9a-z_]+\b|\bshares? an? (?:{_ROLE_WORDS})(?=\s*(?:\[|[.,;]|$))")


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def dump(code: Path, checkpoint: str, out: Path, users: int) -> dict[str, Any]:
    """Run eval/explanation_dump.py with the kerec package found under ``code``."""
    cmd = [sys.executable, str(ROOT / "eval" / "explanation_dump.py"), "--checkpoint", checkpoint, "--out", str(out)]
    if users:
        cmd += ["--users", str(users)]
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def export(commit: str, into: Path) -> Path:
    """The kerec package of ``commit`` unpacked under ``into`` (git archive; nothing else is touched)."""
    archive = into / "kerec.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "archive", commit, "kerec"], cwd=ROOT, check=True, stdout=f)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def measure(records: Iterable[Mapping[str, Any]], store: MemoryStore, titles: TitleIndex) -> dict[str, Any]:
    """The figures of the module docstring over ``records`` (eval/explanation_dump.py's lines)."""
    n = low_only = none = named_total = named_explained = 0
    cited_total = cited_found = paths_total = paths_linking = passed = checked = 0
    undescribed_texts = evidence_lines = undescribed_lines = repeating = 0
    roles: Counter[str] = Counter()
    lengths: list[int] = []
    for record in records:
        history = {h.item for h in store.history(record["user"])}
        history_titles = {titles.titles[h]: h for h in history}
        for r in record["recommendations"]:
            n += 1
            text = r["explanation"] or ""
            lengths.append(len(text))
            undescribed_texts += bool(UNDESCRIBED.search(text))
            for e in r["evidence"]:
                evidence_lines += 1
                undescribed_lines += bool(UNDESCRIBED.search(e["text"]))
            named = {h for t, h in history_titles.items() if t in text}
            repeating += any(text.count(t) > 1 for t, h in history_titles.items() if h in named)
            named_total += len(named)
            if r["explanation_source"] == "none" or not r["cited_facts"]:
                none += 1
                continue
            named_explained += len(named)
            found = store.facts(list(dict.fromkeys(r["cited_facts"])))
            cited_total += len(set(r["cited_facts"]))
            cited_found += len(found)
            said = {role(f.relation).noun for f in found.values()}
            roles.update(said)
            low_only += bool(said) and all(role(x).low for x in said)
            target = NodeRef("Item", r["item_id"])
            for number in r["cited"]:
                e = r["evidence"][number - 1]
                if e["kind"] != "path":
                    continue
                paths_total += 1
                ends = {node for fid in e["fact_ids"] if fid in found for node in (found[fid].head, found[fid].tail)}
                paths_linking += target in ends and any(x.label == "Item" and x.id in history for x in ends - {target})
            evidence = _evidence(r, store)
            if evidence is not None:
                checked += 1
                passed += check(text, evidence, store, history, r["item_id"], titles)[1] is None
    explained = n - none
    return {
        "explanations": n, "no_evidence": none, "share_no_evidence": _share(none, n),
        "low_information_only": low_only, "share_low_information_only": _share(low_only, n),
        "share_low_information_only_of_explained": _share(low_only, explained),
        "mean_history_items_named": round(named_total / n, 3) if n else None,
        "mean_history_items_named_of_explained": round(named_explained / explained, 3) if explained else None,
        "share_texts_repeating_a_film": _share(repeating, n),
        "grounding_cited_facts_found": _share(cited_found, cited_total),
        "grounding_cited_paths_linking_history": _share(paths_linking, paths_total),
        "grounding_check_passed": _share(passed, checked), "checked": checked,
        "share_texts_undescribed_entity": _share(undescribed_texts, n),
        "share_evidence_lines_undescribed_entity": _share(undescribed_lines, evidence_lines),
        "mean_explanation_chars": round(sum(lengths) / n, 1) if n else None,
        "explanations_citing_role": dict(roles.most_common()),
    }


def _evidence(r: Mapping[str, Any], store: MemoryStore) -> list[Evidence] | None:
    """The recommendation's evidence rebuilt from the store for :func:`check` (None if a fact is missing:
    the fact-level figure reports that)."""
    out = []
    for e in r["evidence"]:
        facts = store.facts(e["fact_ids"])
        if len(facts) != len(set(e["fact_ids"])):
            return None
        out.append(Evidence(r["item_id"], e["kind"], e["text"], tuple(facts[f] for f in dict.fromkeys(e["fact_ids"])), None))
    return out


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


ROWS = (("share_low_information_only", "explanations resting only on genre/year/language/country/rating", "%"),
        ("share_no_evidence", "explanations with no KG fact at all", "%"),
        ("mean_history_items_named", "distinct history items named per explanation", ""),
        ("share_texts_repeating_a_film", "texts naming one of the user's films twice or more", "%"),
        ("grounding_cited_facts_found", "cited facts found in the store", "%"),
        ("grounding_cited_paths_linking_history", "cited path evidence linking the history to the item", "%"),
        ("grounding_check_passed", "texts passing kerec.explain.check with titles", "%"),
        ("share_texts_undescribed_entity", "texts showing an entity as 'an actor'/'unnamed'/an id", "%"),
        ("share_evidence_lines_undescribed_entity", "evidence lines showing such an entity", "%"),
        ("mean_explanation_chars", "mean explanation length (characters)", ""))


def report(results: dict[str, Any]) -> str:
    fmt = {"%": lambda v: "n/a" if v is None else f"{100 * v:.1f}%", "": lambda v: "n/a" if v is None else f"{v:g}"}
    b, a = results["before"]["figures"], results["after"]["figures"]
    lines = ["# Explanation quality: before / after\n",
             f"Command: `{results['command']}`  ",
             f"Commit (after): {results['commit']} (tree clean: {results['clean']}); before: {results['before']['commit']}  ",
             f"Retriever: {results['checkpoint']}; {b['explanations']} / {a['explanations']} explanations "
             f"(top-10 of {results['users']} test users), templated (`--llm none`)\n",
             "| figure | before | after |", "|---|---|---|"]
    lines += [f"| {label} | {fmt[kind](b.get(key))} | {fmt[kind](a.get(key))} |" for key, label, kind in ROWS]
    lines += ["", "Roles of the cited facts (explanations citing each):", "",
              "| role | before | after |", "|---|---|---|"]
    for r in sorted(set(b["explanations_citing_role"]) | set(a["explanations_citing_role"]),
                    key=lambda x: -a["explanations_citing_role"].get(x, 0)):
        lines.append(f"| {r} | {b['explanations_citing_role'].get(r, 0)} | {a['explanations_citing_role'].get(r, 0)} |")
    lines += ["", "Grounding is true by construction for templated text (a regression check, not evidence).",
              f"Dump time (shared 2-core machine, noisy): before {results['before']['seconds']} s, "
              f"after {results['after']['seconds']} s.", "", "## User 1, first three picks", ""]
    for label in ("before", "after"):
        lines.append(f"**{label}**\n")
        lines += [f"- {r['title']}: {r['explanation']}" for r in results[label]["user_1"][:3]]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="retriever.pt both commits recommend with")
    p.add_argument("--before", default=None, help="commit of the 'before' code (default: merge-base of HEAD and main)")
    p.add_argument("--users", type=int, default=0, help="only the first N test users (default: all)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    before = git("rev-parse", args.before or git("merge-base", "HEAD", "main"))
    results: dict[str, Any] = {"command": "python " + " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]]),
                               "commit": git("rev-parse", "HEAD"), "clean": git("status", "--porcelain") == "",
                               "checkpoint": args.checkpoint}
    dataset = load_dataset()
    store = MemoryStore()
    store.load(build_ckg(dataset), progress=False)
    titles = TitleIndex({dataset.items.external(i): dataset.item_title(i) for i in range(len(dataset.items))})
    with tempfile.TemporaryDirectory(prefix="kerec-explain-") as tmp:
        for label, code, commit in (("before", export(before, Path(tmp)), before), ("after", ROOT, results["commit"])):
            start = time.perf_counter()
            path = Path(tmp) / f"{label}.jsonl"
            info = dump(code, args.checkpoint, path, args.users)
            records = _read(path)
            results["users"] = len(records)
            user_1 = next((r["recommendations"] for r in records if r["user"] == "1"), [])
            results[label] = {"commit": commit, "seconds": info["seconds"], "settings": info["settings"],
                              "figures": measure(records, store, titles),
                              "user_1": [{"title": r["title"], "explanation": r["explanation"]} for r in user_1]}
            print(f"{label}: {json.dumps(results[label]['figures'])} ({time.perf_counter() - start:.0f} s)", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (args.out / "report.md").write_text(report(results) + "\n", encoding="utf-8")
    print(f"wrote {args.out / 'results.json'} and {args.out / 'report.md'}")


if __name__ == "__main__":
    main()
