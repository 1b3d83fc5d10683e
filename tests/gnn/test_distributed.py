"""`torchrun --nproc_per_node 2`, and two torchrun launchers as two nodes, must train the same model as one
process (gloo on CPU)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .synthetic import write_synthetic


def _args(data: Path, out: Path) -> list[str]:
    return ["-m", "kerec", "train", "retriever", "--data", str(data), "--model", "kerec", "--no-text", "--dim", "8",
            "--epochs", "4", "--batch-size", "128", "--out", str(out)]


def _train(data: Path, out: Path, procs: int) -> dict[str, torch.Tensor]:
    args = _args(data, out)
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


@pytest.mark.slow
def test_two_nodes_match_one(tmp_path: Path) -> None:
    """What a cluster runs: one torchrun per node (``--nnodes 2 --node_rank R``, rank 0's address as master);
    here both "nodes" are local launchers talking over loopback."""
    data = write_synthetic(tmp_path / "synth")
    one = _train(data, tmp_path / "one", 1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [subprocess.Popen([torchrun, "--nnodes", "2", "--node_rank", str(rank), "--nproc_per_node", "1",
                               "--master_addr", "127.0.0.1", "--master_port", str(port),
                               *_args(data, tmp_path / "two")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for rank in (0, 1)]
    outputs = [node.communicate(timeout=240)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    two = torch.load(tmp_path / "two" / "retriever.pt", weights_only=True)["state_dict"]
    for name in one:
        assert torch.allclose(one[name], two[name], atol=1e-5), (name, (one[name] - two[name]).abs().max())
