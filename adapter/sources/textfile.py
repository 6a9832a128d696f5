"""Open a source file as text: refuse binary and empty files, detect the encoding.

The whole file is scanned once in fixed-size chunks before it is read, so memory stays flat
however large it is: a NUL byte means a binary file (or UTF-16, which Excel calls "Unicode
text"), a UTF-8 BOM or valid UTF-8 means UTF-8, anything else is read as Windows-1252 (what
Swedish Excel writes).
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TextIO

Source = Path | str | BinaryIO  # a path, or a seekable binary stream (e.g. an uploaded file)

_CHUNK = 1 << 16  # the scan holds one chunk (and its decoded text) at a time
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class FileProblem(Exception):
    """The file as a whole cannot be read; `reason` is Swedish, `line` 0 = before any line."""

    def __init__(self, reason: str, line: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


def source_name(source: Source, name: str | None = None) -> str:
    """What error reports call the source: the given name, the path, or the stream's name."""
    if name is not None:
        return name
    if isinstance(source, str | Path):
        return str(source)
    return str(getattr(source, "name", "<ström>"))


@contextmanager
def open_text(source: Source) -> Iterator[TextIO]:
    """The source as text with universal newlines left to the csv module (`newline=""`).

    Raises `FileProblem` for a missing, binary or empty file."""
    if isinstance(source, str | Path):
        try:
            stream: BinaryIO = open(source, "rb")  # closed in the finally below
        except FileNotFoundError:
            raise FileProblem("Filen finns inte") from None
        except OSError as exc:  # permissions, a directory, ...: the OS text is the best hint
            raise FileProblem(f"Filen kan inte öppnas ({exc.strerror})") from None
        owned = True
    else:
        stream, owned = source, False
    try:
        try:
            stream.seek(0)
            encoding = sniff_encoding(stream)
            stream.seek(0)
        except OSError as exc:  # e.g. a pipe: the encoding scan needs to read twice
            raise FileProblem(f"Filen kan inte läsas ({exc})") from None
        text = io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")
        try:
            yield text
        finally:
            text.detach()  # the binary stream is closed (or left open) by its owner
    finally:
        if owned:
            stream.close()


def sniff_encoding(stream: BinaryIO) -> str:
    """`utf-8-sig`, `utf-8` or `cp1252` for the rest of the stream; raises `FileProblem`."""
    first = stream.read(_CHUNK)
    if first.startswith(_UTF16_BOMS):
        raise FileProblem("Filen är UTF-16-kodad: spara den som CSV (UTF-8) eller CSV (semikolon)")
    bom = first.startswith(codecs.BOM_UTF8)
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8 = True
    has_text = False
    chunk = first[len(codecs.BOM_UTF8) :] if bom else first
    while chunk:
        if b"\x00" in chunk:
            raise FileProblem("Filen är inte en textfil (den innehåller NUL-tecken)")
        has_text = has_text or bool(chunk.strip())
        if utf8:
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                utf8 = False
        chunk = stream.read(_CHUNK)
    if not has_text:
        raise FileProblem("Filen är tom")
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    if bom:
        return "utf-8-sig"
    return "utf-8" if utf8 else "cp1252"
