"""The README's layout table tells the truth: every file and folder it names exists, and every
package and module of `adapter/` has a row."""

from __future__ import annotations

import re
from pathlib import Path

from adapter.settings import REPO_ROOT

_CODE = re.compile(r"`([^`]+)`")


def _rows() -> list[tuple[str, str]]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Layout", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 2 and cells[0].startswith("`"):
            rows.append((cells[0], cells[1]))
    return rows


def _named(cell: str) -> list[str]:
    """The paths a cell names (a `.py` file or a folder), not settings, functions or URLs."""
    return [n for n in _CODE.findall(cell) if n.endswith((".py", "/")) and "://" not in n]


def _found(name: str, bases: list[Path]) -> bool:
    return any((base / name).exists() for base in bases)


def test_every_path_the_layout_names_exists() -> None:
    rows = _rows()
    assert len(rows) > 10, "the layout table was not found"
    missing = []
    for first, second in rows:
        bases = [REPO_ROOT]
        for name in _named(first):  # `adapter/personnummer.py`, `hsa.py`: the folder carries on
            if not _found(name, bases):
                missing.append(name)
            folder = REPO_ROOT / name if name.endswith("/") else (REPO_ROOT / name).parent
            if folder.is_dir():
                bases.append(folder)
        for name in _named(second):  # `outboxdb.py` in adapter/sync/, `api/models/` in adapter/
            if not _found(name, [*bases, REPO_ROOT / "adapter"]):
                missing.append(f"{name} (in the row of {first})")
    assert missing == []


def test_every_adapter_package_and_module_has_a_row() -> None:
    named: set[str] = set()
    for first, _ in _rows():
        folder = ""
        for name in _named(first):
            if "/" in name.rstrip("/"):
                folder = name.rsplit("/", 1)[0] if name.endswith(".py") else ""
            named.add(f"{folder}/{name}" if folder and "/" not in name else name)
    adapter = REPO_ROOT / "adapter"
    own = [p for p in adapter.iterdir() if p.name not in {"__init__.py", "__pycache__"}]
    expected = {
        f"adapter/{p.name}/" if p.is_dir() else f"adapter/{p.name}"
        for p in own
        if p.is_dir() or p.suffix == ".py"
    }
    assert sorted(expected - named) == []
