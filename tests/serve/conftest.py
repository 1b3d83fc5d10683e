"""A recommender the service tests share: the synthetic dataset of tests/gnn/synthetic.py (40 users, each
liking one of 4 genres) with genre names and hostile item titles (markup that would run script if a page
inserted it as HTML), a small retriever trained here in seconds, and a graph store that can be switched
off and on to test the 503 path and recovery."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from kerec.api import Recommender
from kerec.kg import MemoryStore, build_ckg
from kerec.kg.ckg import CollaborativeKG
from kerec.kg.errors import GraphStoreUnavailable
from kerec.kg.model import Fact, Label, NodeRef
from kerec.kg.store import GraphStore, HistoryItem, StoreInfo, StoreStats

from ..gnn.synthetic import GENRES, ITEMS, write_synthetic
from ..tiny_retriever import train_tiny_retriever

GENRE_NAMES = ("Comedy", "Drama", "Action", "Horror")
XSS_IMG = '<img src=x onerror="window.__xss=1">'
XSS_SCRIPT = "<script>window.__xss=2</script>"


def title(i: int) -> str:
    """Two items in three carry markup: any top 3 shows some."""
    return f"Movie {i} " + (XSS_IMG if i % 3 == 0 else XSS_SCRIPT if i % 3 == 1 else "")


def genre_name(item: str) -> str:
    return GENRE_NAMES[int(item[1:]) % GENRES]


class SwitchableStore(GraphStore):
    """A real :class:`MemoryStore` behind a switch: while ``down`` every read raises
    :class:`GraphStoreUnavailable`, as the Bolt store does when its server is gone. It stands in for
    stopping a database server; the app's code path (the error it gets and what it answers) is real."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner, self.down, self.uri = inner, False, "switchable+memory://test"

    def _live(self) -> MemoryStore:
        if self.down:
            raise GraphStoreUnavailable(self.uri, "cannot connect (switched off by the test)")
        return self.inner

    def ping(self) -> None:
        self._live().ping()

    def info(self) -> StoreInfo | None:
        return self._live().info()

    def clear(self) -> None:
        self._live().clear()

    def _begin(self, ckg: CollaborativeKG) -> None:
        self._live()._begin(ckg)

    def _write(self, kind: str, rows: Sequence[dict[str, object]]) -> None:
        self._live()._write(kind, rows)

    def _complete(self) -> None:
        self._live()._complete()

    def existing(self, label: Label, ids: Sequence[str]) -> set[str]:
        return self._live().existing(label, ids)

    def incident_facts(self, nodes: Sequence[NodeRef]) -> dict[NodeRef, list[Fact]]:
        return self._live().incident_facts(nodes)

    def facts(self, fact_ids: Sequence[str]) -> dict[str, Fact]:
        return self._live().facts(fact_ids)

    def _history_rows(self, user: str) -> list[HistoryItem]:
        return self._live()._history_rows(user)

    def _names(self, label: Label, ids: Sequence[str]) -> dict[str, str | None]:
        return self._live()._names(label, ids)

    def stats(self) -> StoreStats:
        return self._live().stats()

    def _node_index(self, label: Label) -> dict[str, int]:
        return self._live()._node_index(label)

    def _all_facts(self) -> Iterable[Fact]:
        return self._live()._all_facts()


@pytest.fixture(scope="session")
def serve_trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("serve")
    data = write_synthetic(root / "synth")
    (data / "synth.item").write_text("item_id:token\tmovie_title:token_seq\tclass:token_seq\n" + "".join(
        f"i{i}\t{title(i)}\t{GENRE_NAMES[i % GENRES]}\n" for i in range(ITEMS)))
    out = root / "run"
    return data, train_tiny_retriever(data, out)


@pytest.fixture(scope="session")
def serve_rec(serve_trained: tuple[Path, Path]) -> Recommender:
    """The recommender over a switchable store (switched back on by every test that turns it off)."""
    from kerec.gnn.checkpoint import Checkpoint
    from kerec.gnn import prepare_from_checkpoint

    data, ckpt = serve_trained
    inner = MemoryStore()
    inner.load(build_ckg(prepare_from_checkpoint(Checkpoint.load(ckpt), str(data)).dataset), progress=False)
    return Recommender.load(ckpt, data=str(data), store=SwitchableStore(inner), llm=None)
