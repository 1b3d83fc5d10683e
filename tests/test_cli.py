"""The ``kerec`` command: each subcommand on tiny data (and the embedded default where it is cheap)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kerec.cli import build_parser, main
from kerec.data import load_dataset, load_split
from kerec.kg import open_store

from .conftest import TINY_ATOMIC, TINY_KGAT, BoltTarget, interrupt_load


def test_data_info_default_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "info"]) == 0
    out = capsys.readouterr().out
    for line in ("users                 943", "items                 1,682", "interactions          100,000",
                 "kg_triples            91,631", "item_entity_links     1,598"):
        assert line in out


def test_data_info_kgat(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "info", "--data", str(TINY_KGAT)]) == 0
    assert "split shipped with the data: {'train': 8, 'valid': 0, 'test': 3}" in capsys.readouterr().out


def test_bad_path_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["data", "info", "--data", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kerec: error: ") and "no such dataset folder" in err and "Traceback" not in err


def test_data_split_writes_loadable_tsv(tmp_path: Path) -> None:
    assert main(["data", "split", "--data", str(TINY_ATOMIC), "--protocol", "loo", "--out", str(tmp_path)]) == 0
    split = load_split(load_dataset(TINY_ATOMIC), tmp_path)
    assert split.sizes() == {"train": 6, "valid": 3, "test": 3}


def test_kg_show_and_stats_in_memory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "u1.svg"
    assert main(["kg", "show", "--data", str(TINY_ATOMIC), "--user", "u2", "--out", str(out)]) == 0
    assert out.read_text().lstrip().startswith("<?xml")
    assert main(["kg", "stats", "--data", str(TINY_ATOMIC)]) == 0
    assert "facts         30" in capsys.readouterr().out
    assert main(["kg", "show", "--data", str(TINY_ATOMIC), "--user", "u9", "--out", str(out)]) == 2
    assert "unknown user id 'u9'" in capsys.readouterr().err


def test_quickstart_on_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quickstart", "--data", str(TINY_ATOMIC), "--user", "u2", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "user-u2-subgraph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "[3/3] user u2" in capsys.readouterr().out


@pytest.mark.bolt
def test_kg_load_into_bolt(bolt: BoltTarget, capsys: pytest.CaptureFixture[str]) -> None:
    assert bolt.auth is not None
    auth = ["--db-user", bolt.auth[0], "--db-password", bolt.auth[1], "--database", str(bolt.database)]
    args = ["kg", "load", "--uri", bolt.uri, *auth, "--data", str(TINY_ATOMIC), "--replace"]
    assert main(args) == 0
    assert main(args) == 0  # the second load finds the same dataset and changes nothing
    out = capsys.readouterr().out
    assert "already loaded tiny" in out and "facts         30" in out
    with open_store(bolt.uri, auth=bolt.auth, database=bolt.database) as store:
        assert store.stats().facts == 30


def test_every_command_has_help() -> None:
    parser = build_parser()
    for argv in (["--help"], ["quickstart", "--help"], ["data", "info", "--help"], ["data", "split", "--help"],
                 ["kg", "serve", "--help"], ["kg", "load", "--help"], ["kg", "stats", "--help"], ["kg", "show", "--help"],
                 ["train", "retriever", "--help"], ["eval", "retriever", "--help"], ["recommend", "--help"],
                 ["finetune", "--help"], ["chat", "--help"], ["serve", "--help"], ["eval", "--help"]):
        with pytest.raises(SystemExit) as info:
            parser.parse_args(argv)
        assert info.value.code == 0


PASSWORD = "test-password-4a1f"


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (read from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _gone(pid: int, timeout: float = 60.0) -> bool:
    """Whether process ``pid`` has exited (or is a zombie) within ``timeout`` seconds: a bound, not a timing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.2)
    return False


def _serve(tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    """Start `kerec kg serve` on a free port; returns the process and its URI once it is ready.
    The child starts with SIGINT ignored, as under any parent that ignores Ctrl-C (some libraries in a test
    session do): `kg serve` must still stop on it."""
    cmd = [sys.executable, "-m", "kerec", "kg", "serve", "--dir", str(tmp_path), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "KEREC_NEO4J_PASSWORD": PASSWORD},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("ArcadeDB Bolt server on bolt://127.0.0.1:"), first
    lines = [proc.stdout.readline() for _ in range(2)]
    assert "press Ctrl-C to stop" in lines[-1]
    return proc, first.split()[4]


@pytest.mark.bolt
def test_kg_serve_runs_until_interrupted(tmp_path: Path) -> None:
    proc, uri = _serve(tmp_path)
    try:
        with open_store(uri, auth=("root", PASSWORD), database="graph") as store:
            assert store.info() is None
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.bolt
def test_kg_stats_reports_a_load_that_did_not_finish(bolt: BoltTarget, capsys: pytest.CaptureFixture[str]) -> None:
    """Before, `kg stats` said "dataset tiny" with partial counts and exit 0, and nothing said incomplete."""
    assert bolt.auth is not None
    auth = ["--db-user", bolt.auth[0], "--db-password", bolt.auth[1], "--database", str(bolt.database)]
    with open_store(bolt.uri, auth=bolt.auth, database=bolt.database) as store:
        interrupt_load(store, load_dataset(TINY_ATOMIC))
    try:
        assert main(["kg", "stats", "--uri", bolt.uri, *auth]) == 1
        captured = capsys.readouterr()
        assert "holds an INCOMPLETE load of dataset 'tiny'" in captured.err and "kerec kg load` again" in captured.err
        assert "dataset tiny (INCOMPLETE: partial counts)" in captured.out
    finally:  # leave the shared server holding a complete dataset for the tests after this one
        assert main(["kg", "load", "--uri", bolt.uri, *auth, "--data", str(TINY_ATOMIC)]) == 0
    assert main(["kg", "stats", "--uri", bolt.uri, *auth]) == 0
    assert "INCOMPLETE" not in capsys.readouterr().out


@pytest.mark.bolt
def test_malformed_data_leaves_the_store_untouched(bolt: BoltTarget, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert bolt.auth is not None
    auth = ["--db-user", bolt.auth[0], "--db-password", bolt.auth[1], "--database", str(bolt.database)]
    assert main(["kg", "load", "--uri", bolt.uri, *auth, "--data", str(TINY_ATOMIC), "--replace"]) == 0
    for f in TINY_ATOMIC.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    with (tmp_path / "tiny.inter").open("a") as fh:
        fh.write("u1\ti2\tnot-a-number\t5\n")
    assert main(["kg", "load", "--uri", bolt.uri, *auth, "--data", str(tmp_path), "--replace"]) == 2
    assert "tiny.inter:14: field 'rating' (float) expects a number" in capsys.readouterr().err
    with open_store(bolt.uri, auth=bolt.auth, database=bolt.database) as store:
        info, stats = store.info(), store.stats()
    assert info is not None and info.complete and (stats.facts, stats.interactions) == (30, 12)


@pytest.mark.bolt
def test_kg_serve_stops_its_server_on_sigterm(tmp_path: Path) -> None:
    proc, uri = _serve(tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", int(uri.rsplit(":", 1)[1]))) != 0, "the Java server outlived kerec kg serve"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_train_and_eval_retriever(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEREC_HOME", str(tmp_path / "home"))
    from .gnn.synthetic import write_synthetic

    data = str(write_synthetic(tmp_path / "synth"))
    out = tmp_path / "run"
    assert main(["train", "retriever", "--data", data, "--model", "kerec", "--no-text", "--dim", "8",
                 "--epochs", "3", "--batch-size", "128", "--out", str(out)]) == 0
    assert (out / "retriever.pt").is_file() and any((out / "tensorboard").iterdir())
    assert "best validation epoch" in capsys.readouterr().out
    assert main(["eval", "retriever", "--data", data, "--checkpoint", str(out / "retriever.pt")]) == 0
    report = capsys.readouterr().out
    assert "test split, full ranking over 48 items, 40 users" in report and "recall" in report
    assert main(["eval", "retriever", "--data", data, "--model", "pop", "--part", "valid"]) == 0
    assert main(["eval", "retriever", "--data", data]) == 2  # KEREC_HOME is empty here: no default checkpoint
    assert "run `kerec train retriever` first" in capsys.readouterr().err
    assert main(["train", "retriever", "--data", data, "--gnn-holdout-order", "latest", "--out", str(out)]) == 2
    assert "give --gnn-holdout FRACTION too" in capsys.readouterr().err
    grouped = tmp_path / "grouped"
    assert main(["train", "retriever", "--data", data, "--no-text", "--dim", "8", "--epochs", "1", "--batch-size", "128",
                 "--loss", "inbatch", "--inbatch-group", "32", "--out", str(grouped)]) == 0
    from kerec.gnn.checkpoint import Checkpoint

    trained = Checkpoint.load(grouped / "retriever.pt").train_config
    assert (trained["loss"], trained["batch_size"], trained["inbatch_group"]) == ("inbatch", 128, 32)


def test_recommend_prints_explained_lists_and_draws(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from .gnn.synthetic import write_synthetic

    monkeypatch.setenv("KEREC_HOME", str(tmp_path / "home"))
    data = str(write_synthetic(tmp_path / "synth"))
    assert main(["recommend", "--data", data, "--user", "u0", "--llm", "none"]) == 2
    assert "run `kerec train retriever` first" in capsys.readouterr().err
    assert main(["train", "retriever", "--data", data, "--no-text", "--dim", "8", "--epochs", "3",
                 "--batch-size", "128"]) == 0  # into $KEREC_HOME/retriever, where recommend looks
    capsys.readouterr()
    assert main(["recommend", "--data", data, "--user", "u0", "--user", "u1", "-k", "3", "--llm", "none",
                 "--show", str(tmp_path / "pics")]) == 0
    out = capsys.readouterr().out
    assert "user u0: top 3" in out and "user u1: top 3" in out and "[1]" in out and "(template)" in out
    assert (tmp_path / "pics" / "user-u0-recommended.png").stat().st_size > 1000
    assert main(["recommend", "--data", data, "--user", "nobody", "--llm", "none"]) == 2
    assert "nobody" in capsys.readouterr().err
    assert main(["recommend", "--data", data, "--user", "u0", "-k", "2", "--llm", "none", "--json", "--no-explain"]) == 0
    import json

    recs = json.loads(capsys.readouterr().out)["u0"]
    assert [r["rank"] for r in recs] == [1, 2] and recs[0]["explanation"] is None


def test_recommend_checks_ids_and_k_before_loading_any_model(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, `recommend --user nosuchuser` and `-k 0` failed only after the GNN (and the LLM) had loaded.
    Recommender.load is made to fail loudly here: each bad argument must be reported without reaching it."""
    from kerec.api import Recommender

    from .gnn.synthetic import write_synthetic
    from .tiny_retriever import train_tiny_retriever

    data = write_synthetic(tmp_path / "synth")
    ckpt = train_tiny_retriever(data, tmp_path / "run")

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(Recommender, "load", no_loading)
    capsys.readouterr()  # the training's progress bars
    common = ["recommend", "--checkpoint", str(ckpt), "--data", str(data), "--llm", "default"]
    for extra, says in ((["--user", "nosuchuser"], "unknown user id 'nosuchuser'; not in dataset 'synth'"),
                        (["--user", "u0", "--user", "nobody"], "unknown user id 'nobody'"),
                        (["--user", "u0", "-k", "0"], "k must be between 1 and the 48 items of dataset 'synth', got 0"),
                        (["--user", "u0", "-k", "49"], "got 49"),
                        (["--user", "u0", "--candidates-list", "i1", "i999"], "unknown item id 'i999'"),
                        (["--user", "u0", "--candidates", "21"], "candidates must be between 1 and 20")):
        assert main([*common, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("kerec: error: ") and says in err, (extra, err)


def test_eval_takes_a_config_or_a_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsystems: [kerec, sasrec]\nprotocols: {full: {}}\n")
    assert main(["eval", "--config", str(bad)]) == 2
    assert "unknown system(s) 'sasrec'" in capsys.readouterr().err
    assert main(["eval"]) == 2
    assert "give --config FILE" in capsys.readouterr().err
    args = build_parser().parse_args(["eval", "retriever", "--part", "valid"])
    assert args.func.__name__ == "cmd_eval_retriever" and args.part == "valid"


def test_top_level_exports() -> None:
    import kerec
    from kerec.api import Recommender
    from kerec.eval.harness import evaluate

    assert kerec.evaluate is evaluate and kerec.Recommender is Recommender
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        kerec.nope  # noqa: B018


@pytest.mark.bolt
def test_kg_serve_never_shows_its_password_and_its_server_dies_with_it(tmp_path: Path) -> None:
    """Before, the password was printed and passed to Java as -Darcadedb.server.rootPassword=… (readable by
    anyone in `ps`), and a SIGKILLed wrapper left its Java server running."""
    proc, uri = _serve(tmp_path)
    try:
        [java] = _children(proc.pid)
        for pid in (proc.pid, java):
            assert PASSWORD.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
        password_file = tmp_path / "root-password"
        assert password_file.read_text() == PASSWORD and password_file.stat().st_mode & 0o777 == 0o600
        with open_store(uri, auth=("root", PASSWORD), database="graph") as store:
            assert store.info() is None
        proc.kill()  # SIGKILL: no handler of kerec's runs
        proc.wait(timeout=10)
        assert proc.stdout is not None
        printed = proc.stdout.read()
        assert _gone(java), "the Java server outlived a SIGKILLed kerec kg serve"
        assert PASSWORD not in printed
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.bolt
def test_kg_serve_reports_when_its_server_dies(tmp_path: Path) -> None:
    """Before, the wrapper exited 0 without a word when Java died."""
    proc, _ = _serve(tmp_path)
    try:
        [java] = _children(proc.pid)
        os.kill(java, signal.SIGKILL)
        assert proc.wait(timeout=60) == 2
        assert proc.stdout is not None
        out = proc.stdout.read()
        assert "kerec: error: the ArcadeDB server exited on its own (exit code -9)" in out, out
        last = (tmp_path / "server.log").read_text().rstrip().splitlines()[-1]
        assert f"the end of its log {tmp_path / 'server.log'}:" in out and last in out, out
    finally:
        if proc.poll() is None:
            proc.kill()


def test_kg_serve_password_file_errors_come_before_java_starts(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kg", "serve", "--dir", str(tmp_path / "db"), "--password-file", str(tmp_path / "nope")]) == 2
    assert f"--password-file {tmp_path / 'nope'}: cannot be read (No such file or directory)" in capsys.readouterr().err
    (tmp_path / "empty").write_text("\n")
    assert main(["kg", "serve", "--dir", str(tmp_path / "db"), "--password-file", str(tmp_path / "empty")]) == 2
    assert "the file is empty" in capsys.readouterr().err and not (tmp_path / "db").exists()
