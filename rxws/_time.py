"""Reading a reactivex scheduler's clock as float seconds, cheaply."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from reactivex.abc import SchedulerBase
from reactivex.scheduler import VirtualTimeScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler

__all__ = ["clock_of"]


def clock_of(scheduler: SchedulerBase) -> Callable[[], float]:
    """A zero-argument function returning ``scheduler``'s time in seconds.

    Virtual schedulers read their float clock; asyncio schedulers read the loop's monotonic
    clock; anything else converts ``scheduler.now``.
    """
    if isinstance(scheduler, VirtualTimeScheduler):
        vts = scheduler

        def virtual() -> float:
            clock: Any = vts.clock
            if isinstance(clock, datetime):
                return float(vts.to_seconds(clock))
            return float(clock)

        return virtual
    if isinstance(scheduler, AsyncIOScheduler):
        loop = scheduler._loop
        if type(loop).time is asyncio.BaseEventLoop.time and "time" not in vars(loop):
            # asyncio's own loop reads time.monotonic(): read it directly, one Python call less
            # on every message and request (a loop with its own clock, e.g. uvloop, is kept).
            return time.monotonic
        return loop.time
    sched = scheduler
    return lambda: float(sched.to_seconds(sched.now))
