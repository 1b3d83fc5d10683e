"""External id ↔ contiguous index maps, saved alongside anything trained."""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from kerec.errors import DataFormatError, UnknownIdError


class IdMap:
    """A bijection between external string ids and indices ``0..n-1``, in first-seen order.

    ``kind`` ("user", "item", …) only serves error messages and the saved file.
    """

    __slots__ = ("kind", "_ids", "_index")

    def __init__(self, kind: str, ids: Iterable[str] = ()) -> None:
        self.kind = kind
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        for external in ids:
            self.add(external)

    def add(self, external: str) -> int:
        """Index of ``external``, adding it at the end if new."""
        idx = self._index.get(external)
        if idx is None:
            idx = len(self._ids)
            self._index[external] = idx
            self._ids.append(external)
        return idx

    def index(self, external: str) -> int:
        try:
            return self._index[external]
        except KeyError:
            raise UnknownIdError(self.kind, external, f"the dataset has {len(self)} {self.kind}s") from None

    def indices(self, externals: Iterable[str]) -> np.ndarray:
        """shape: (n,), dtype: int64. Raises :class:`UnknownIdError` on the first unknown id."""
        return np.fromiter((self.index(e) for e in externals), dtype=np.int64)

    def external(self, idx: int) -> str:
        if not 0 <= idx < len(self._ids):
            raise UnknownIdError(self.kind, idx, f"index out of range 0..{len(self._ids) - 1}")
        return self._ids[idx]

    def __contains__(self, external: object) -> bool:
        return external in self._index

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self.kind == other.kind and self._ids == other._ids

    def __repr__(self) -> str:
        return f"IdMap(kind={self.kind!r}, size={len(self)})"

    @property
    def ids(self) -> Sequence[str]:
        return tuple(self._ids)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "ids": list(self._ids)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> IdMap:
        ids = data.get("ids")
        if not isinstance(data.get("kind"), str) or not isinstance(ids, list):
            raise ValueError("an IdMap needs 'kind' (str) and 'ids' (list of str)")
        out = cls(str(data["kind"]), (str(i) for i in ids))
        if len(out) != len(ids):
            raise ValueError(f"IdMap {data['kind']!r} holds duplicate ids")
        return out

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> IdMap:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls.from_dict(data)
        except (json.JSONDecodeError, ValueError) as exc:
            raise DataFormatError(path, None, f"not a saved IdMap: {exc}") from None
