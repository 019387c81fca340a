"""Rate limits: token buckets kept in the memory of each worker process.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per
second; each request takes one token or is refused with the seconds until
one is back. Buckets live in this process only: with N worker processes a
client gets N times the limit, and a restart forgets every bucket. The
number of buckets is bounded (least recently used ones are dropped), so a
flood of new client addresses cannot grow memory without end.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from patron.settings import Settings

__all__ = ["Decision", "Limits", "RateLimiter", "rate_limit_headers"]

_MAX_BUCKETS = 100_000


@dataclass(frozen=True)
class Decision:
    """The outcome of taking one token: whether allowed, and what the RateLimit headers report."""

    allowed: bool
    limit: int  # the bucket's capacity
    remaining: int  # whole tokens left after this request
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until a token is back (0 when allowed)


class RateLimiter:
    """Token buckets by key (a client address, an API key id), safe to share between threads."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_buckets: int = _MAX_BUCKETS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._max_buckets = max_buckets
        self._clock = clock
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> Decision:
        """Take one token from ``key``'s bucket if there is one."""
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self._max_buckets:
                self._buckets.popitem(last=False)
        reset = math.ceil((self.burst - tokens) / self.rate)
        retry_after = 0 if allowed else max(1, math.ceil((1.0 - tokens) / self.rate))
        return Decision(allowed, self.burst, int(tokens), reset, retry_after)

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(frozen=True)
class Limits:
    """The app's rate limits: sign-ins per client address, requests per API key."""

    login: RateLimiter
    api_key: RateLimiter

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        per_minute = settings.rate_limit_login_per_minute
        return cls(
            login=RateLimiter(per_minute / 60.0, per_minute),
            api_key=RateLimiter(settings.rate_limit_api_key_per_second, settings.rate_limit_api_key_burst),
        )


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    """``RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (and ``Retry-After`` when refused)."""
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(decision.retry_after)
    return headers
