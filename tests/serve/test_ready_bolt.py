"""/ready against a real Bolt server (ArcadeDB from the arcadedb-embedded wheel) that is stopped and started
again under a running app: the 503 answer comes from the store's own one-try probe (the driver's "cannot
connect"), not from /ready's own time limit after the driver's retries, and the app is ready again once the
server is back."""
from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kerec.api import Recommender
from kerec.gnn import prepare_from_checkpoint
from kerec.gnn.checkpoint import Checkpoint
from kerec.kg import build_ckg, open_store
from kerec.kg.server import LocalBoltServer
from kerec.serve import ServeConfig, create_app

pytestmark = pytest.mark.bolt


def test_ready_is_503_while_the_bolt_server_is_down_and_200_when_it_is_back(serve_trained: tuple[Path, Path],
                                                                              tmp_path: Path) -> None:
    data, ckpt = serve_trained
    with LocalBoltServer(tmp_path / "db") as server:  # its own server: this test stops it
        with open_store(server.uri, auth=server.auth, database="graph") as store:
            store.load(build_ckg(prepare_from_checkpoint(Checkpoint.load(ckpt), str(data)).dataset), progress=False)
        rec = Recommender.load(ckpt, data=str(data), llm=None,
                               store=open_store(server.uri, auth=server.auth, database="graph"))
        # The driver retries a dead server for at least 5 s (BoltStore's max_transaction_retry_time): had /ready
        # waited for that, as it did before, its reason would be this 4 s limit's, not the store's own error.
        app = create_app(rec, config=ServeConfig(ready_timeout_s=4.0))
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get("/ready").json()["status"] == "ready"
            server.stop()
            down = client.get("/ready")
            assert down.status_code == 503, down.text
            reason = down.json()["reason"]
            assert server.uri in reason and "cannot connect" in reason and "did not answer within" not in reason
            assert client.get("/health").status_code == 200
            server.start()  # same folder, port and password
            assert client.get("/ready").json()["status"] == "ready"
            assert client.post("/recommend", json={"user": "u1", "k": 3}).status_code == 200
