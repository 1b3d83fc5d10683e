"""A clone with nothing beside it runs everything: no tracked file outside the recorded results names a
path outside the repository (the steering repo's shared folder beside the checkout, where the anchor split
came from)."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# eval/results/* are records of past runs: they keep the command and config exactly as they were run.
RECORDS = ("eval/results/",)


def test_no_tracked_file_names_a_folder_outside_the_repository() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert files, "git ls-files listed nothing"
    offenders = []
    for name in files:
        if name.startswith(RECORDS) or name == "tests/test_self_contained.py":
            continue
        path = ROOT / name
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        # spelt in two parts so that this file does not name the folder it looks for
        for needle in (".." + "/shared", "/work" + "/shared"):
            if needle in text:
                offenders.append(f"{name}: {needle}")
    assert not offenders, "files name a folder outside the repository:\n" + "\n".join(offenders)
