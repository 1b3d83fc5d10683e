"""Shards: finished batches survive an interruption; other settings are never mixed in."""
from __future__ import annotations

from pathlib import Path

import pytest

from kerec.eval.config import EvalConfigError
from kerec.eval.shards import Shard, batches


def test_append_read_and_torn_tail(tmp_path: Path) -> None:
    shard = Shard(tmp_path, "kerec-seed1-full", {"seed": 1})
    shard.append({"users": [1, 2], "recall@10": [0.5, 1.0]})
    shard.append({"users": [3], "recall@10": [0.0]})
    with shard.path.open("a") as f:
        f.write('{"users": [4], "recal')  # a write cut short
    assert shard.done_users() == {1, 2, 3}
    shard.append({"users": [4], "recall@10": [0.25]})
    assert shard.merged() == {"users": [1, 2, 3, 4], "recall@10": [0.5, 1.0, 0.0, 0.25]}


def test_other_settings_get_another_file_and_a_wrong_header_is_an_error(tmp_path: Path) -> None:
    one, two = Shard(tmp_path, "x", {"seed": 1}), Shard(tmp_path, "x", {"seed": 2})
    assert one.path != two.path
    one.append({"users": [1]})
    forged = Shard(tmp_path, "x", {"seed": 2})
    forged.path = one.path
    with pytest.raises(EvalConfigError, match="other settings"):
        forged.records()


def test_batches() -> None:
    assert list(batches(range(5), 2)) == [[0, 1], [2, 3], [4]]
