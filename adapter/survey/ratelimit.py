"""A bounded, in-memory rate limit per client (the answer page has no login).

A sliding window of `limit` attempts per `window` seconds per key; at most `max_keys` keys are
kept (the least recently seen go first), so a flood of addresses cannot exhaust memory. One
process: the service runs as one uvicorn worker (deploy/README.md)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class RateLimit:
    def __init__(
        self,
        limit: int = 10,
        window: float = 600.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count an attempt by `key`; False when it is over the limit (the attempt not counted)."""
        now = self._clock()
        with self._lock:
            hits = self._hits.pop(key, None) or deque()
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            allowed = len(hits) < self.limit
            if allowed:
                hits.append(now)
            self._hits[key] = hits
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
            return allowed

    def __len__(self) -> int:
        return len(self._hits)
