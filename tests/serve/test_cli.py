"""``kerec serve`` as a user runs it: ``python -m kerec.serve`` (the same ``run`` the ``kerec`` command
calls) in a subprocess on a loopback port with the test retriever; it prints its URL, answers, and stops
gracefully on SIGTERM."""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from kerec.serve.cli import add_parser, url_of


def test_parser_defaults_and_url() -> None:
    parser = argparse.ArgumentParser(prog="kerec")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    args = parser.parse_args(["serve", "--llm", "none"])
    assert (args.host, args.port, args.checkpoint, args.llm, args.workers, args.data, args.store) == (
        "127.0.0.1", 8000, "default", "none", 2, None, None)
    assert url_of("127.0.0.1", 8000) == "http://127.0.0.1:8000/"
    assert url_of("::1", 9000) == "http://[::1]:9000/"
    assert url_of("localhost", 80) == "http://localhost:80/"


def test_bad_numbers_fail_before_any_model_loads(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from kerec.api import Recommender
    from kerec.serve.cli import run

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(Recommender, "load", no_loading)
    parser = argparse.ArgumentParser(prog="kerec")
    add_parser(parser.add_subparsers(dest="command"))
    for flag, value, says in (("--k", "0", "--k must be between 1 and 20, got 0"),
                              ("--max-sessions-per-client", "0", "--max-sessions-per-client must be positive")):
        assert run(parser.parse_args(["serve", flag, value])) == 2
        assert says in capsys.readouterr().err


@pytest.mark.slow
def test_serve_command_starts_answers_and_stops(serve_trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, ckpt = serve_trained
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "kerec.serve", "--port", str(port), "--checkpoint", str(ckpt), "--data", str(data),
           "--llm", "none", "--k", "2", "--log-level", "info"]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "not ready in 120 s:\n" + log.read_text()
            try:
                with urllib.request.urlopen(base + "/ready", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        assert f"on {base}/ (chat page)" in log.read_text()
        request = urllib.request.Request(base + "/chat", data=json.dumps({"session": "cli", "message": "a comedy"}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as r:
            reply = json.load(r)
        assert len(reply["recommendations"]) == 2  # --k 2
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    # uvicorn shuts down gracefully, then re-raises the signal it caught: the conventional -SIGTERM exit
    assert proc.returncode in (0, -signal.SIGTERM), log.read_text()
    assert "Finished server process" in log.read_text()
