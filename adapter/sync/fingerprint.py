"""Digests that let a re-import skip what it already did.

- `record_digest`: the content of one source record (not where it stood in the file).
- `mapping_fingerprint`: the mapping's code and the region's mapping data. When either changes,
  the same record may map to different resources, so the outbox forgets which records it saw.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import adapter
from adapter.domain import Record

_PACKAGE_DIR = Path(adapter.__file__).resolve().parent
# The code a mapped resource depends on: the mapping itself and the facts it imports.
_MAPPING_CODE = ("mapping", "domain.py", "canonical.py", "personnummer.py")
# Where a record came from does not change what it maps to.
_LOCATION_FIELDS = frozenset({"source"})


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "@": type(value).__name__,
            **{
                f.name: _plain(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if f.name not in _LOCATION_FIELDS
            },
        }
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def record_digest(record: Record) -> str:
    """sha256 of the record's content (full personnummer included, so two patients differ)."""
    text = json.dumps(_plain(record), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def mapping_fingerprint(mappings_dir: Path, *settings: str) -> str:
    """sha256 over the adapter version, the mapping code, every file in `mappings_dir` and the
    settings the mapping reads (`settings`, e.g. the care provider's HSA-id)."""
    digest = hashlib.sha256(adapter.__version__.encode())
    for value in settings:
        digest.update(value.encode("utf-8") + b"\0")
    roots = [(_PACKAGE_DIR, _PACKAGE_DIR / name) for name in _MAPPING_CODE]
    roots.append((mappings_dir, mappings_dir))
    for base, root in roots:
        for path in _files(root):
            digest.update(str(path.relative_to(base)).encode("utf-8"))
            digest.update(b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
