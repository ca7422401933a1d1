"""Penalties shared through the fleet ledger, read and written without ever waiting for Redis.

:class:`FleetPenaltyBox` is the :class:`~rxws.ratelimit.venue.PenaltyStore` a preset given a
:class:`~rxws.ratelimit.fleet.FleetLedger` uses: a violation seen by one process holds back every
process behind the same key. Each process keeps a local :class:`~rxws.ratelimit.PenaltyBox` and a
cache of the shared penalty ends; a report goes to Redis in the background (the same Lua as
:class:`~rxws.ratelimit.redis_store.RedisPenaltyBox`, on the server clock), and a read older than
``max_age`` is refreshed in the background, so a penalty started elsewhere is seen here within
``max_age`` plus one round trip. Keys of the connection scope stay local (connection ids are
per connection). Without a running loop (virtual time) the box is local only.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import TYPE_CHECKING, Any

from rxws.exceptions import UsageError
from rxws.ratelimit._lua import REMAINING_LUA, REPORT_LUA
from rxws.ratelimit.penalty import PenaltyBox, PenaltyPolicy

if TYPE_CHECKING:
    from rxws.ratelimit.fleet import FleetLedger

__all__ = ["FleetPenaltyBox"]

_US = 1_000_000
_LOCAL_PREFIX = "connection:"


class FleetPenaltyBox:
    """Penalties per scope key, shared by every process using ``ledger`` and ``name``.

    Args:
        ledger: the fleet ledger (its client, prefix and timeout).
        name: the key name under the ledger's prefix.
        policy: how long penalties last (every process should use the same).
        max_age: seconds a shared read is reused before it is refreshed in the background.
    """

    def __init__(
        self, ledger: FleetLedger, name: str, policy: PenaltyPolicy | None = None, *, max_age: float = 0.25
    ) -> None:
        if not (math.isfinite(max_age) and max_age >= 0):
            raise ValueError(f"max_age must be finite and >= 0, got {max_age!r}")
        self.policy = policy or PenaltyPolicy()
        self.ledger = ledger
        self.prefix = ledger.key(name)
        self.max_age = max_age
        self._report = ledger.client.register_script(REPORT_LUA)
        self._remaining = ledger.client.register_script(REMAINING_LUA)
        self._local = PenaltyBox(self.policy)
        self._ends: dict[str, float] = {}  # key -> shared end on time.monotonic()
        self._read: dict[str, float] = {}  # key -> when a read was last asked for
        self._seen: set[str] = set()

    def __repr__(self) -> str:
        return f"FleetPenaltyBox(prefix={self.prefix!r})"

    def __len__(self) -> int:
        """Never 0: another process may have started a penalty, so the limiter must ask."""
        return 1 + len(self._local)

    def _ask(self, key: str, script: Any, args: list[str]) -> None:
        sent = time.monotonic()

        async def call() -> Any:
            return await self.ledger._call(lambda: script(keys=[f"{self.prefix}:{key}"], args=args))

        def done(reply: Any) -> None:
            if reply is None:
                return
            end = sent + int(reply[0]) / _US
            if end > self._ends.get(key, 0.0):
                self._ends[key] = end
            if int(reply[0]) > 0:
                self._seen.add(key)

        with contextlib.suppress(UsageError):  # no loop (virtual time): local only
            self.ledger.submit(call, done)

    def report(self, key: str, now: float, retry_after: float | None = None) -> float:
        """Start or extend the penalty of ``key`` here at once and in the ledger in the background."""
        seconds = self._local.report(key, now, retry_after)
        if key.startswith(_LOCAL_PREFIX):
            return seconds
        p = self.policy
        ra = repr(float(retry_after)) if retry_after is not None and math.isfinite(retry_after) else ""
        self._ask(
            key, self._report, [repr(p.initial), repr(p.factor), repr(p.max), repr(p.reset_after), ra, ""]
        )
        self._ends[key] = max(self._ends.get(key, 0.0), time.monotonic() + seconds)
        self._seen.add(key)
        return seconds

    def remaining(self, key: str, now: float) -> float:
        """Seconds left of the penalty of ``key``: the longer of the local and the shared one."""
        local = self._local.remaining(key, now)
        if key.startswith(_LOCAL_PREFIX):
            return local
        mono = time.monotonic()
        if mono - self._read.get(key, -math.inf) >= self.max_age and self.ledger.available:
            self._read[key] = mono
            if len(self._read) > 1024:
                self._read = {k: v for k, v in self._read.items() if mono - v < self.max_age}
            self._ask(key, self._remaining, [""])
        return max(local, self._ends.get(key, 0.0) - mono, 0.0)

    def ended(self, key: str, now: float) -> bool:
        """True once, on the first call after a penalty seen here has ended."""
        if self._local.ended(key, now):
            self._seen.discard(key)
            return True
        if key in self._seen and self.remaining(key, now) <= 0:
            self._seen.discard(key)
            return True
        return False
