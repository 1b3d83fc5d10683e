from __future__ import annotations

from pathlib import Path

import pytest

from kerec.finetune.checkpoint import fingerprint
from kerec.finetune.errors import FinetuneCheckpointError


def test_fingerprint_follows_the_checkpoints_content_not_its_path(tmp_path: Path) -> None:
    run = tmp_path / "run"
    step = run / "step-4"
    (step / "adapter").mkdir(parents=True)
    (step / "finetune.pt").write_bytes(b"projector and gnn")
    (step / "adapter" / "adapter_model.safetensors").write_bytes(b"lora")
    (step / "optimizer.pt").write_bytes(b"moments")
    (run / "latest").write_text("step-4", encoding="utf-8")
    first = fingerprint(run)
    assert first == fingerprint(step)  # the run folder resolves to its latest step
    (step / "optimizer.pt").write_bytes(b"other moments")
    assert fingerprint(run) == first  # the optimizer does not change what the checkpoint scores
    (step / "adapter" / "adapter_model.safetensors").write_bytes(b"retrained lora")
    assert fingerprint(run) != first  # retrained into the same folder: a new key
    with pytest.raises(FinetuneCheckpointError, match="no fine-tuning checkpoint here"):
        fingerprint(tmp_path / "missing")
