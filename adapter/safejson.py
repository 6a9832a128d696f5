"""JSON from outside (an upload line, a request body, a hook payload) with a nesting limit.

Python's json parser recurses once per nesting level: a line of 2 000 `[` raises RecursionError,
and a body of 950 passes the parser only to break whatever walks it next (pydantic, json.dumps,
the API's own encoder), with a depth that depends on the caller's stack. So the depth is counted
first, by a scan over the brackets outside strings, and anything deeper than `MAX_DEPTH` is
refused as `TooDeep` (a `ValueError`, like any other invalid JSON) before it is parsed. A plan
nests 3 levels; a FHIR resource rarely more than 10.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64

# Strings (escapes included) are skipped whole; only brackets outside them count.
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_OPEN = frozenset("[{")
_CLOSE = frozenset("]}")


class TooDeep(ValueError):
    """Nested deeper than the limit; `reason` is Swedish."""

    def __init__(self, limit: int) -> None:
        self.reason = f"JSON nästlad djupare än {limit} nivåer"
        super().__init__(self.reason)


def depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text` (0 for a scalar); malformed JSON is
    counted as far as it goes (the parser reports it)."""
    level = deepest = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in _OPEN:
            level += 1
            deepest = max(deepest, level)
        elif token in _CLOSE:
            level -= 1
    return deepest


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads` that raises `TooDeep` instead of recursing past `max_depth` levels.

    Bytes are decoded as UTF-8 (`UnicodeDecodeError`, a ValueError, when they are not)."""
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8")
    if depth(text) > max_depth:
        raise TooDeep(max_depth)
    try:
        return json.loads(text)
    except RecursionError:  # cannot happen under the limit; kept so it never reaches a caller
        raise TooDeep(max_depth) from None
