"""One small retriever for the tests that need a trained checkpoint on a tiny dataset (API, chat, serve)."""
from __future__ import annotations

from pathlib import Path

from kerec.cli import main


def train_tiny_retriever(data: Path, out: Path) -> Path:
    """``kerec train retriever`` on ``data`` (no text encoder, 16 dims, 40 epochs: seconds); returns the checkpoint."""
    assert main(["train", "retriever", "--data", str(data), "--no-text", "--dim", "16", "--epochs", "40",
                 "--batch-size", "64", "--lr", "0.01", "--out", str(out)]) == 0
    return out / "retriever.pt"
