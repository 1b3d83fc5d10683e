"""`torchrun --nproc_per_node 2` must train the same model as one process (gloo on CPU)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .synthetic import write_synthetic


def _train(data: Path, out: Path, procs: int) -> dict[str, torch.Tensor]:
    args = ["-m", "kerec", "train", "retriever", "--data", str(data), "--model", "kerec", "--no-text", "--dim", "8",
            "--epochs", "4", "--batch-size", "128", "--out", str(out)]
    launcher = ([str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node", str(procs)]
                if procs > 1 else [sys.executable])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(launcher + args, capture_output=True, text=True, env=env, timeout=240)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return torch.load(out / "retriever.pt", weights_only=True)["state_dict"]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "synth")
    one = _train(data, tmp_path / "one", 1)
    two = _train(data, tmp_path / "two", 2)
    assert one.keys() == two.keys()
    for name in one:
        assert torch.allclose(one[name], two[name], atol=1e-5), (name, (one[name] - two[name]).abs().max())
