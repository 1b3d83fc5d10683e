#!/usr/bin/env bash
# Build RecBole 1.2.1's own virtual environment in eval/recbole/.venv (never kerec's venv).
#
# Recipe (DESIGN.md, "Running RecBole 1.2.1 anchors here"):
#   1. torch==2.13.0 first (resolves to the 2.13.0+cpu wheel on this machine's disk);
#   2. recbole==1.2.1 and dgl==1.0.4 with --no-deps (their own pins would pull old torch/numpy);
#   3. the libraries RecBole and DGL really import, pinned where it matters
#      (scipy < 1.12: LightGCN/KGIN call dok_matrix._update, removed in 1.12).
# torch_scatter is NOT installed (no build for torch 2.13): run_recbole.py injects a shim.
#
# Idempotent: rerunning reuses the venv, and pip leaves satisfied pins alone.
# Usage: bash eval/recbole/setup.sh          (PYTHON=python3.11 by default)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
PYTHON="${PYTHON:-python3.11}"

say() { printf '[recbole-setup] %s\n' "$*"; }
die() { printf '[recbole-setup] ERROR: %s\n' "$*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found; set PYTHON=/path/to/python3.11"

if [[ -x "$VENV/bin/python" ]]; then
    say "reusing $VENV"
else
    say "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check)

say "step 1/3: torch==2.13.0"
"${PIP[@]}" "torch==2.13.0"

say "step 2/3: recbole==1.2.1 dgl==1.0.4 (--no-deps)"
"${PIP[@]}" --no-deps "recbole==1.2.1" "dgl==1.0.4"

say "step 3/3: runtime libraries"
"${PIP[@]}" \
    "numpy==1.26.4" "scipy==1.11.4" "pandas==2.1.4" "scikit-learn==1.5.2" \
    "colorlog==4.7.2" "colorama==0.4.4" \
    tqdm pyyaml tensorboard thop tabulate plotly texttable psutil requests

say "checking the environment"
DGLBACKEND=pytorch "$PY" - <<'PY'
import importlib, sys
import torch, numpy, scipy
errors = []
if not torch.__version__.startswith("2.13.0"):
    errors.append(f"torch {torch.__version__}, expected 2.13.0")
if not torch.__version__.endswith("+cpu"):
    print(f"[recbole-setup] note: torch {torch.__version__} is not the +cpu build")
if tuple(int(x) for x in scipy.__version__.split(".")[:2]) >= (1, 12):
    errors.append(f"scipy {scipy.__version__}, need < 1.12 (dok_matrix._update)")
if not numpy.__version__.startswith("1."):
    errors.append(f"numpy {numpy.__version__}, RecBole 1.2.1 needs numpy 1.x")
from importlib.metadata import version
for dist, want in (("recbole", "1.2.1"), ("dgl", "1.0.4")):
    if version(dist) != want:
        errors.append(f"{dist} {version(dist)}, expected {want}")
# The modules run_recbole.py uses (torch_scatter is shimmed there, so only the rest here).
for mod in ("recbole.config", "recbole.data", "recbole.utils",
            "recbole.model.general_recommender.bpr",
            "recbole.model.general_recommender.lightgcn",
            "recbole.model.knowledge_aware_recommender.cke",
            "recbole.model.knowledge_aware_recommender.kgat",
            "dgl"):
    try:
        importlib.import_module(mod)
    except Exception as exc:  # report every failure, not just the first
        errors.append(f"import {mod}: {type(exc).__name__}: {exc}")
if errors:
    print("[recbole-setup] ERROR:\n  " + "\n  ".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"[recbole-setup] ok: torch {torch.__version__}, numpy {numpy.__version__}, "
      f"scipy {scipy.__version__}, recbole {version('recbole')}, dgl {version('dgl')}")
PY
say "done: $VENV  (run: $VENV/bin/python eval/recbole/run_recbole.py --help)"
