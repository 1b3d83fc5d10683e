"""Bad checkpoint files: each way a file can be unusable gets a CheckpointError that names the path and what
is wrong (before this, a 0-byte file raised a bare IndexError from the error formatting itself, and a text file
a KeyError "is it truncated?"). The loader is the one ``kerec eval retriever --checkpoint``, ``serve`` and
``recommend`` share."""
from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import pytest
import torch

from kerec.cli import main
from kerec.finetune.checkpoint import load_adapter, load_state
from kerec.finetune.errors import FinetuneCheckpointError
from kerec.gnn.checkpoint import FORMAT, Checkpoint, CheckpointError


def _zip_checkpoint(path: Path) -> bytes:
    torch.save({"format": FORMAT, "state_dict": {"w": torch.zeros(4096)}}, path)
    return path.read_bytes()


@pytest.mark.parametrize(("make", "says"), [
    (lambda p: p.write_bytes(b""), "the file is empty (0 bytes)"),
    (lambda p: p.write_bytes(_zip_checkpoint(p)[:2000]), "truncated (2000 bytes)"),
    (lambda p: p.write_text("user_id\titem_id\n1\t2\n"), "not a torch checkpoint file (it starts with b'user')"),
    (lambda p: torch.save({"weights": torch.zeros(2), "epoch": 3}, p),
     "not a kerec retriever checkpoint (expected format 'kerec-retriever/1'; it holds a dict with keys ['epoch', "
     "'weights'])"),
    (lambda p: torch.save([torch.zeros(2)], p), "it holds a list"),
    (lambda p: torch.save({"args": argparse.Namespace(lr=0.1)}, p),
     "holds pickled Python objects (Unsupported global: GLOBAL argparse.Namespace)"),
    (lambda p: p.write_bytes(pickle.dumps({"x": 1}, protocol=4)), "holds pickled Python objects"),
    (lambda p: p.mkdir(), "is a folder, not a checkpoint file"),
], ids=["empty", "truncated", "text", "foreign-dict", "foreign-list", "foreign-object", "plain-pickle", "folder"])
def test_each_bad_file_gets_a_specific_error_naming_it(tmp_path: Path, make, says: str) -> None:
    path = tmp_path / "retriever.pt"
    make(path)
    with pytest.raises(CheckpointError) as caught:
        Checkpoint.load(path)
    assert str(caught.value).startswith(f"{path}: ") and says in str(caught.value), str(caught.value)


def test_the_cli_reports_an_empty_checkpoint_without_a_traceback(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    assert main(["eval", "retriever", "--checkpoint", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kerec: error: ") and f"{empty}: the file is empty" in err and "Traceback" not in err


def test_fine_tuning_checkpoints_share_the_checks(tmp_path: Path) -> None:
    step = tmp_path / "step-1"
    (step / "adapter").mkdir(parents=True)
    (step / "finetune.pt").write_bytes(b"")
    with pytest.raises(FinetuneCheckpointError, match=r"finetune.pt: the file is empty \(0 bytes\)"):
        load_state(step)
    torch.save({"weights": torch.zeros(2)}, step / "finetune.pt")
    with pytest.raises(FinetuneCheckpointError, match=r"finetune.pt holds a dict with keys \['weights'\]"):
        load_state(step)
    (step / "adapter" / "adapter_model.safetensors").write_bytes(b"")
    # The adapter file is read before the model is touched, so no LLM is needed to see its error.
    with pytest.raises(FinetuneCheckpointError, match=r"adapter_model.safetensors: cannot be read.*header too small"):
        load_adapter(None, step)
