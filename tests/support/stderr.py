"""Helpers for the API tests (no tests here).

`adapter.logs.configure` binds the `sys.stderr` of the moment; pytest and CliRunner swap and
close that stream between tests, so a test that configured logging can leave a closed stream
behind for the next. The API tests log on every request: they configure logging onto whatever
`sys.stderr` is at write time, and put the previous configuration back afterwards.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from adapter import logs


class CurrentStderr:
    """sys.stderr as it is when written to."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@contextmanager
def logging_to_current_stderr() -> Iterator[None]:
    saved = structlog.get_config()
    logs.configure()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=CurrentStderr()))  # type: ignore[arg-type]
    try:
        yield
    finally:
        structlog.configure(**saved)
