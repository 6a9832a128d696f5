"""Personnummer in the repository's fixtures: find them, and rewrite those a real person could
have into fictional ones (the project rule in adapter/personnummer.py: födelsenummer 980–999).

    python -m tests.fixture_personnummer          # list the offenders
    python -m tests.fixture_personnummer --fix    # rewrite them in place

The rewrite keeps what expectations depend on: the birth date (masked `YYYYMMDD-****` stays
right), the sex digit's parity, the written form (12 or 10 digits, `-`, `+`, none), and the
same number gets the same replacement in every file, so distinct numbers stay distinct.
Strings that are not valid numbers (wrong check digit, impossible date: deliberate errors) are
left alone: nobody can have them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from adapter.personnummer import FICTIONAL_SERIALS, PersonnummerError, check, luhn_digit

REPO = Path(__file__).resolve().parent.parent
SCANNED = ("tests", "deploy/examples", "mappings")
SUFFIXES = {".py", ".csv", ".jsonl", ".json", ".txt", ".md", ".xml", ".ndjson", ".tsv", ".http"}
# Twelve digits (century given) or ten with a sign; not inside a longer word or number.
SHAPE = re.compile(r"(?<![\w.])(?:(\d{8})(-?)|(\d{6})([-+]))(\d{4})(?![\w])")


@dataclass(frozen=True)
class Found:
    path: Path
    line: int
    text: str

    @property
    def ten(self) -> str:
        return re.sub(r"\D", "", self.text)[-10:]


def files() -> Iterator[Path]:
    for root in SCANNED:
        for path in sorted((REPO / root).rglob("*")):
            if path.is_file() and path.suffix in SUFFIXES and "__pycache__" not in path.parts:
                yield path


def _read(path: Path) -> tuple[str, str] | None:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return None


def valid(text: str) -> bool:
    try:
        check(text)
    except PersonnummerError:
        return False
    return True


def offenders() -> list[Found]:
    """Valid personnummer/samordningsnummer in the fixtures outside the fictional series."""
    found = []
    for path in files():
        read = _read(path)
        if read is None:
            continue
        for number, line in enumerate(read[0].splitlines(), 1):
            for match in SHAPE.finditer(line):
                text = match.group(0)
                if valid(text) and int(text[-4:-1]) not in FICTIONAL_SERIALS:
                    found.append(Found(path, number, text))
    return found


def _replacement(ten: str, taken: set[str]) -> str:
    """The fictional ten digits for `ten`: same date part, same sex, not yet taken."""
    sex = int(ten[8]) % 2
    for serial in FICTIONAL_SERIALS:
        if serial % 2 != sex:
            continue
        nine = f"{ten[:6]}{serial:03d}"
        candidate = f"{nine}{luhn_digit(nine)}"
        if candidate not in taken:
            return candidate
    raise ValueError(f"inga fiktiva nummer kvar för födelsedatumet {ten[:6]}")


def fix() -> dict[Path, int]:
    """Rewrite every offender; returns the number of replacements per file."""
    found = offenders()
    taken = {f.ten for f in found}  # existing fictional ones too, below
    for path in files():
        read = _read(path)
        if read:
            taken.update(
                re.sub(r"\D", "", m.group(0))[-10:]
                for m in SHAPE.finditer(read[0])
                if valid(m.group(0))
            )
    mapping: dict[str, str] = {}
    for item in found:
        if item.ten not in mapping:
            mapping[item.ten] = _replacement(item.ten, taken)
            taken.add(mapping[item.ten])
    counts: dict[Path, int] = {}
    for path in sorted({f.path for f in found}):
        text, encoding = _read(path) or ("", "utf-8")
        bom = path.read_bytes().startswith(b"\xef\xbb\xbf")

        def swap(match: re.Match[str], path: Path = path) -> str:
            old = match.group(0)
            ten = re.sub(r"\D", "", old)[-10:]
            if ten not in mapping or not valid(old):
                return old
            counts[path] = counts.get(path, 0) + 1
            return old[:-4] + mapping[ten][-4:]

        new = SHAPE.sub(swap, text)
        data = new.encode("utf-8" if encoding == "utf-8-sig" else encoding)
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return counts


def main(argv: list[str]) -> int:
    if "--fix" in argv:
        for path, count in fix().items():
            print(f"{path.relative_to(REPO)}: {count}")
    left = offenders()
    for item in left:
        print(f"{item.path.relative_to(REPO)}:{item.line}: {item.text}")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
