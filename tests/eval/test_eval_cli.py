"""``python -m kerec.eval``: a bad config fails with the reason and exit status 2, before any work."""
from __future__ import annotations

from pathlib import Path

import pytest

from kerec.eval.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def test_check_accepts_the_shipped_quick_config(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    config = ROOT / "eval" / "configs" / "quick.yaml"
    assert main(["--config", str(config), "--check"]) == 0
    assert "ok (8 systems, 1 seed(s))" in capsys.readouterr().out
    assert main(["--quick", "--check"]) == 0  # --quick is that config
    assert "eval/configs/quick.yaml: ok (8 systems, 1 seed(s))" in capsys.readouterr().out


def test_bad_config_exits_2_with_the_valid_choices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsystems: [kerec, sasrec]\nprotocols: {full: {}}\n")
    assert main(["--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown system(s) 'sasrec'" in err and "kerec-no-kg" in err


def test_options_sit_beside_subcommands_as_kerec_cli_wires_them(tmp_path: Path) -> None:
    import argparse

    from kerec.eval.cli import configure, run
    from kerec.eval.config import EvalConfigError

    parser = argparse.ArgumentParser(prog="kerec eval")
    configure(parser, required=False)
    sub = parser.add_subparsers(dest="sub", required=False)
    sub.add_parser("retriever").add_argument("--part", default="test")
    args = parser.parse_args(["--config", "x.yaml", "--fresh", "--no-progress"])
    assert (args.config, args.fresh, args.no_progress, args.sub) == ("x.yaml", True, True, None)
    assert parser.parse_args(["--quick"]).config == "eval/configs/quick.yaml"
    with pytest.raises(SystemExit):  # one or the other
        parser.parse_args(["--quick", "--config", "x.yaml"])
    args = parser.parse_args(["retriever", "--part", "valid"])
    assert args.sub == "retriever" and args.config is None
    with pytest.raises(EvalConfigError, match="give --config FILE"):
        run(args)
