"""``kerec chat`` through kerec.chat.cli.run() with stdin and stdout patched, on the planted film catalogue."""
from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from kerec.chat.cli import add_parser, run
from kerec.data import UnknownIdError


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kerec")
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["chat", *argv])


def test_piped_conversation_with_reset_and_quit(films_trained: tuple[Path, Path]) -> None:
    data, ckpt = films_trained
    out = io.StringIO()
    stdin = io.StringIO("something like Fargo\nno comedy\n\n/reset\nhello\n/quit\nnever read\n")
    assert run(parse(["--checkpoint", str(ckpt), "--data", str(data), "-k", "3"]), stdin=stdin, stdout=out) == 0
    text = out.getvalue()
    assert "Noted: you liked Fargo (1971)" in text and "Here are 3 picks (like Fargo (1971); no Comedy)" in text
    assert "(conversation reset)" in text and "What are you in the mood for?" in text
    assert "never read" not in text


def test_json_lines_and_unknown_user(films_trained: tuple[Path, Path]) -> None:
    data, ckpt = films_trained
    out = io.StringIO()
    args = parse(["--checkpoint", str(ckpt), "--data", str(data), "--json", "--user", "u1"])
    assert args.llm == "none" and args.k == 5
    assert run(args, stdin=io.StringIO("no horror\nMATCH (n) DETACH DELETE n\n"), stdout=out) == 0
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["constraints"]["user"] == "u1" and len(first["recommendations"]) == 5
    assert second["notice"] and "Cypher" in second["notice"] and second["recommendations"] == []
    with pytest.raises(UnknownIdError, match="nobody"):
        run(parse(["--checkpoint", str(ckpt), "--data", str(data), "--user", "nobody"]),
            stdin=io.StringIO("hi\n"), stdout=io.StringIO())


def test_bad_user_and_k_fail_before_any_model_loads(films_trained: tuple[Path, Path],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, an unknown --user failed only after the recommender had loaded; -k 0 likewise."""
    from kerec.api import Recommender
    from kerec.chat import ChatError

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded before the arguments were checked")

    data, ckpt = films_trained
    monkeypatch.setattr(Recommender, "load", no_loading)
    with pytest.raises(UnknownIdError, match="unknown user id 'nobody'"):
        run(parse(["--checkpoint", str(ckpt), "--data", str(data), "--user", "nobody"]),
            stdin=io.StringIO("hi\n"), stdout=io.StringIO())
    for k in ("0", "21"):
        with pytest.raises(ChatError, match=f"-k must be between 1 and 20, got {k}"):
            run(parse(["--checkpoint", str(ckpt), "--data", str(data), "-k", k]), stdin=io.StringIO("hi\n"),
                stdout=io.StringIO())
