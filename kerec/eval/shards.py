"""Resumable per-user results: one JSON-lines shard file per (system, seed, protocol, config hash).

The first line is a header holding the key (the config section that determines the results); every
further line is one finished batch ``{"users": [...], ...per-user lists...}``, appended and flushed as
soon as it is computed. A run that is interrupted leaves whole lines (a torn last line is dropped on
reading), so the next run skips every user already in the file. The hash in the file name and the key in
the header keep results of other seeds or settings apart: a header that does not match is an error,
never a silent mix.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from kerec.eval.config import EvalConfigError, digest


class Shard:
    """One shard file. ``records()`` reads back finished batches; ``append`` adds one."""

    def __init__(self, folder: str | Path, name: str, key: dict[str, Any]) -> None:
        self.key = key
        self.path = Path(folder) / f"{name}-{digest(key)}.jsonl"

    def records(self) -> list[dict[str, Any]]:
        """Finished batches in the order written; [] for a new shard."""
        if not self.path.is_file():
            return []
        lines = self.path.read_text(encoding="utf-8").split("\n")
        out: list[dict[str, Any]] = []
        for n, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if n >= len(lines) - 2:  # the torn last line of an interrupted write
                    break
                raise EvalConfigError(f"{self.path}:{n + 1}: not a JSON line; delete the shard to recompute it") from None
            if n == 0:
                if record.get("key") != json.loads(json.dumps(self.key, default=str)):
                    raise EvalConfigError(f"{self.path} was written for other settings; delete it or use --fresh")
                continue
            out.append(record)
        return out

    def done_users(self) -> set[Any]:
        return {u for r in self.records() for u in r.get("users", [])}

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_torn_tail()
        new = not self.path.is_file() or self.path.stat().st_size == 0
        with self.path.open("a", encoding="utf-8") as f:
            if new:
                f.write(json.dumps({"key": self.key}, default=str) + "\n")
            f.write(json.dumps(record, default=float) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _drop_torn_tail(self) -> None:
        """Cut a last line left without its newline by an interrupted write, so appends stay one per line."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            self.path.write_bytes(data[: data.rfind(b"\n") + 1])

    def merged(self) -> dict[str, list[Any]]:
        """All batches joined: ``{"users": [...], field: [...]}`` for every list-valued field."""
        out: dict[str, list[Any]] = {}
        for record in self.records():
            for name, value in record.items():
                if isinstance(value, list):
                    out.setdefault(name, []).extend(value)
        return out


def batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
