"""Event keys this process has recorded recently: a duplicate storm answered without the database.

A provider retrying one event (or a misbehaving sender replaying it) would otherwise cost a
database round trip per copy. A key is added only after the transaction that recorded it has
committed, so a hit always means the webhook_events row exists; the unique constraint stays the
real guard. Entries expire after `ttl` seconds and the set is bounded, so memory stays flat and
a key is never trusted long after it could have been purged.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class RecentKeys:
    """A bounded, expiring, thread-safe set of (provider, event_key)."""

    def __init__(
        self,
        *,
        capacity: int = 50_000,
        ttl: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._capacity = capacity
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()

    def seen(self, provider: str, key: str) -> bool:
        """True when this process committed the event within the last `ttl` seconds."""
        with self._lock:
            added = self._entries.get((provider, key))
            if added is None:
                return False
            if self._clock() - added > self._ttl:
                del self._entries[(provider, key)]
                return False
            return True

    def add(self, provider: str, key: str) -> None:
        """Remember a key whose webhook_events row is committed."""
        with self._lock:
            self._entries[(provider, key)] = self._clock()
            self._entries.move_to_end((provider, key))
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
