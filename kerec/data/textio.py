"""Line reading shared by the readers: UTF-8, 1-based line numbers, errors that name the line."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from kerec.errors import DataFormatError


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` without the line ending; undecodable bytes raise with the line."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataFormatError(path, number, f"not UTF-8 text ({exc.reason})") from None
            yield number, text.rstrip("\r\n")
