"""Open a source file as text: refuse binary and empty files, detect the encoding, decode per line.

The whole file is scanned once in fixed-size chunks before it is read, so memory stays flat
however large it is: a NUL byte means a binary file (or UTF-16, which Excel calls "Unicode
text"); a UTF-8 BOM means UTF-8. Otherwise the file is UTF-8 unless it is Windows-1252 (what
Swedish Excel writes) as a whole: some byte is not UTF-8 AND not one valid multi-byte UTF-8
sequence (å, ä, ö written as UTF-8) occurs anywhere. So one stray byte in a UTF-8 file does not
turn every å into "Ã¥": the file is read as UTF-8 and the lines holding invalid bytes are known
(`Text.invalid`) so the readers reject those rows alone, naming the byte.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

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


UTF8, UTF8_BOM, CP1252 = "utf-8", "utf-8-sig", "cp1252"
ENCODING_NAMES = {UTF8: "UTF-8", UTF8_BOM: "UTF-8 med BOM", CP1252: "Windows-1252"}

# A well-formed multi-byte UTF-8 sequence (RFC 3629, table 3-7 of Unicode): å, ä, ö in UTF-8.
_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]"
    rb"|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_CANDIDATE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")  # a cheap pre-check: 10 times faster
_LONE_CR = re.compile(rb"(?<=\r)(?!\n)")  # split after a \r that ends a line on its own


class Text:
    """The lines of a source (endings kept, as `open(newline="")` gives them), numbered from 1,
    decoded one by one as they are iterated (once).

    In a UTF-8 file a line with an invalid byte is decoded with U+FFFD in its place, so the
    structure (delimiters, quotes, line count) stays; `invalid` says which lines those were:
    line -> 1-based position of the first invalid byte in the line."""

    def __init__(self, lines: Iterator[str] | None, encoding: str, stream: BinaryIO) -> None:
        """`lines` already decoded (a clean file), or None: decode `stream` line by line."""
        self.encoding = encoding
        self.invalid: dict[int, int] = {}
        self._lines = lines if lines is not None else self._decoded(stream)

    def __iter__(self) -> Iterator[str]:
        return self._lines

    def invalid_in(self, first: int, last: int) -> tuple[int, int] | None:
        """(line, byte position) of the first invalid byte on lines `first`..`last`, if any;
        forgets the lines up to `last` (memory stays flat however many there are)."""
        found = None
        for line in sorted(n for n in self.invalid if n <= last):
            position = self.invalid.pop(line)
            if found is None and line >= first:
                found = (line, position)
        return found

    def _decoded(self, stream: BinaryIO) -> Iterator[str]:
        bom = codecs.BOM_UTF8 if self.encoding == UTF8_BOM else b""
        for number, raw in enumerate(_raw_lines(stream), start=1):
            if number == 1 and bom and raw.startswith(bom):
                raw = raw[len(bom) :]
            try:
                yield raw.decode(UTF8)
            except UnicodeDecodeError as exc:
                self.invalid[number] = exc.start + 1
                yield raw.decode(UTF8, errors="replace")


def encoding_name(encoding: str | None) -> str:
    """How summaries name an encoding ("-" when the file was not read as text)."""
    return ENCODING_NAMES.get(encoding, encoding) if encoding else "-"


def invalid_reason(position: int, encoding: str) -> str:
    """The Swedish reason of a row with an invalid byte."""
    name = ENCODING_NAMES[encoding]
    return f"Ogiltigt tecken: byte {position} på raden är inte {name} (filen läses som {name})"


@contextmanager
def open_text(source: Source) -> Iterator[Text]:
    """The source as `Text`; raises `FileProblem` for a missing, binary or empty file."""
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
            encoding, invalid = sniff_encoding(stream)
            stream.seek(0)
        except OSError as exc:  # e.g. a pipe: the encoding scan needs to read twice
            raise FileProblem(f"Filen kan inte läsas ({exc})") from None
        if invalid and encoding != CP1252:  # the slow path: line by line, to name the lines
            yield Text(None, encoding, stream)
            return
        # A clean file (or cp1252, where the 5 undefined bytes become U+FFFD): decoded whole.
        wrapper = io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")
        try:
            yield Text(wrapper, encoding, stream)
        finally:
            wrapper.detach()
    finally:  # the binary stream is closed (or left open) by its owner
        if owned:
            stream.close()


def _raw_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Lines ended by \n, \r\n or a lone \r (universal newlines), endings kept."""
    for chunk in iter(stream.readline, b""):
        if b"\r" in chunk[:-1]:
            yield from (part for part in _LONE_CR.split(chunk) if part)
        else:
            yield chunk


def sniff_encoding(stream: BinaryIO) -> tuple[str, bool]:
    """(`utf-8-sig`, `utf-8` or `cp1252` for the rest of the stream, whether some byte is not
    valid UTF-8); raises `FileProblem`."""
    first = stream.read(_CHUNK)
    if first.startswith(_UTF16_BOMS):
        raise FileProblem("Filen är UTF-16-kodad: spara den som CSV (UTF-8) eller CSV (semikolon)")
    bom = first.startswith(codecs.BOM_UTF8)
    decoder = codecs.getincrementaldecoder(UTF8)()
    invalid = multibyte = has_text = False
    chunk = first[len(codecs.BOM_UTF8) :] if bom else first
    tail = b""  # the end of the previous chunk: a sequence may straddle two
    final = False
    while not final:
        final = not chunk
        if b"\x00" in chunk:
            raise FileProblem("Filen är inte en textfil (den innehåller NUL-tecken)")
        has_text = has_text or bool(chunk.strip())
        if not invalid:
            try:
                decoder.decode(chunk, final=final)
            except UnicodeDecodeError:
                invalid = True
        if not multibyte and _CANDIDATE.search(window := tail + chunk):
            multibyte = _MULTIBYTE.search(window) is not None
        tail = chunk[-3:]
        chunk = b"" if final else stream.read(_CHUNK)
    if not has_text:
        raise FileProblem("Filen är tom")
    if bom:
        return UTF8_BOM, invalid
    return (CP1252 if invalid and not multibyte else UTF8), invalid
