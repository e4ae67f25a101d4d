"""Failure counters that stop a flood of bad credentials before it reaches the database.

Fixed windows, counted in Redis when Kwit has one (so every gunicorn worker and web node shares
them), else in this process. A Redis that does not answer falls back to the local count for the
request: a throttle must never be why a valid request fails.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger("kwit.throttle")


@dataclass
class FailureThrottle:
    """At most `limit` failures per subject (an address, a key prefix) in each `window` seconds."""

    name: str  # the Redis key namespace: the instance's queue name and what is counted
    limit: int
    window: int
    redis: Redis | None = None
    _local: dict[tuple[str, int], int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def retry_after(self, now: float) -> int:
        """Seconds until the current window ends (the Retry-After of a refused request)."""
        return max(1, int(self.window - now % self.window))

    def over_limit(self, subject: str, *, now: float) -> bool:
        """Whether `subject` has already failed more than `limit` times in this window."""
        return self.count(subject, now=now) > self.limit

    def count(self, subject: str, *, now: float) -> int:
        bucket = int(now // self.window)
        if self.redis is not None:
            try:
                value = self.redis.get(self._key(subject, bucket))
                return int(value or 0)
            except RedisError as exc:
                log.warning(
                    "throttle falls back to this process", extra={"error": type(exc).__name__}
                )
        with self._lock:
            return self._local.get((subject, bucket), 0)

    def fail(self, subject: str, *, now: float) -> int:
        """Count one failure for `subject`; return its failures in this window so far."""
        bucket = int(now // self.window)
        if self.redis is not None:
            try:
                key = self._key(subject, bucket)
                with self.redis.pipeline() as pipe:
                    pipe.incr(key)
                    pipe.expire(key, self.window + 5)
                    count, _ = pipe.execute()
                return int(count)
            except RedisError as exc:
                log.warning(
                    "throttle falls back to this process", extra={"error": type(exc).__name__}
                )
        with self._lock:
            for stale in [k for k in self._local if k[1] < bucket]:
                del self._local[stale]
            self._local[(subject, bucket)] = count = self._local.get((subject, bucket), 0) + 1
            return count

    def _key(self, subject: str, bucket: int) -> str:
        return f"kwit:throttle:{self.name}:{subject}:{bucket}"
