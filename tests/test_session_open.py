"""SessionOpening (rxws/_session_open.py): the limiter's decision, the handshake and the open steps,
driven directly in virtual time with a recording budget, transport and link (the client-level
opening is covered in tests/test_session.py and tests/client/)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reactivex
from reactivex import Observable
from reactivex.testing import TestScheduler

from rxws._client_base import ClientContext
from rxws._session_config import session_config
from rxws._session_open import SessionOpening
from rxws.events import DisconnectReason
from rxws.exceptions import HandshakeRejected, PenaltyActive, RateLimitExceeded
from rxws.protocols import GenericJson
from rxws.ratelimit.base import Decision
from rxws.ratelimit.events import Throttled


class _Budget:
    """Records what the opening asks of the connection's budget."""

    conn_id = "c#1"

    def __init__(self) -> None:
        self.asked: list[Callable[[Decision | Exception], None]] = []
        self.released = 0
        self.violations: list[tuple[str, float | None]] = []
        self.penalty = 0.0

    def ask_connect(self, decided: Callable[[Decision | Exception], None]) -> None:
        self.asked.append(decided)

    def release_connection(self) -> None:
        self.released += 1

    def penalty_remaining(self) -> float:
        return self.penalty

    def violation(self, signal: str, retry_after: float | None = None) -> None:
        self.violations.append((signal, retry_after))


class _Link:
    def __init__(self) -> None:
        self.closed: list[tuple[int, str]] = []

    def close(self, code: int, reason: str) -> Observable[None]:
        self.closed.append((code, reason))
        return reactivex.empty()


class _Transport:
    def __init__(self, link: _Link) -> None:
        self.link = link
        self.opened = 0

    def open(self, url: str, options: Any, scheduler: Any) -> Observable[Any]:
        self.opened += 1
        return reactivex.of(self.link)


class _Harness:
    def __init__(self, *steps: Callable[[Any], Observable[Any]], attach: bool = True) -> None:
        self.scheduler = TestScheduler()
        self.ctx = ClientContext("c", GenericJson(), self.scheduler, None)
        self.rate: list[Any] = []
        self.ctx.rate_events.subscribe(self.rate.append)
        self.link = _Link()
        self.transport = _Transport(self.link)
        config = session_config(
            "ws://127.0.0.1:1/",
            self.transport,  # type: ignore[arg-type]
            headers=None,
            secret_headers=(),
            subprotocols=(),
            write_high_water=2**16,
            max_size=None,
            open_timeout=5.0,
            close_timeout=1.0,
            ssl=None,
            ping_interval=None,
            ping_timeout=None,
            max_outbound_queue=10,
            open_steps=steps,
        )
        self.budget = _Budget()
        self.outcomes: list[Any] = []
        self.attached: list[Any] = []

        def take(link: Any) -> bool:
            self.attached.append(link)
            return attach

        self.opening = SessionOpening(
            self.ctx,
            config,
            self.budget,  # type: ignore[arg-type]
            attach=take,
            opened=lambda: self.outcomes.append("opened"),
            failed=self.outcomes.append,
        )


def test_a_limiter_wait_is_throttled_then_the_link_opens_and_the_steps_run_with_the_session() -> None:
    called_with: list[Any] = []

    def step(session: Any) -> Observable[Any]:
        called_with.append(session)
        return reactivex.empty()

    h = _Harness(step, step)
    h.opening.start("the session")
    h.budget.asked[0](Decision(False, 2.0))  # not now: within the 5 s connect wait
    assert [type(e) for e in h.rate] == [Throttled] and h.rate[0].delay == 2.0
    assert h.transport.opened == 0 and len(h.budget.asked) == 1
    h.scheduler.advance_to(2.0)
    assert len(h.budget.asked) == 2  # asked again after the wait
    h.budget.asked[1](Decision(True))
    assert h.transport.opened == 1 and h.attached == [h.link] and h.opening.handshake_started == 2.0
    assert called_with == ["the session"] and h.outcomes == []  # the first step ends on the scheduler
    h.scheduler.advance_to(2.1)
    assert called_with == ["the session", "the session"] and h.outcomes == ["opened"]


def test_a_slot_granted_after_a_cancel_is_given_back_and_nothing_opens() -> None:
    h = _Harness()
    h.opening.start("s")
    h.opening.cancel()
    h.budget.asked[0](Decision(True))
    assert h.budget.released == 1 and h.transport.opened == 0 and h.outcomes == []


def test_a_refusal_fails_with_a_clear_error() -> None:
    h = _Harness()
    h.opening.start("s")
    h.budget.asked[0](Decision(False, float("inf")))  # a connection cap: waiting never helps
    (error,) = h.outcomes
    assert isinstance(error, RateLimitExceeded) and "never (a connection cap)" in str(error)
    penalised = _Harness()
    penalised.budget.penalty = 30.0
    penalised.opening.start("s")
    penalised.budget.asked[0](Decision(False, 1.0))
    (error,) = penalised.outcomes
    assert isinstance(error, PenaltyActive) and penalised.rate == []


def test_a_failing_step_closes_the_link_and_fails_the_opening_once() -> None:
    boom = RuntimeError("login refused")
    h = _Harness(lambda _s: reactivex.throw(boom), lambda _s: reactivex.empty())
    h.opening.start("s")
    h.budget.asked[0](Decision(True))
    h.scheduler.advance_to(1.0)
    assert h.link.closed == [(1000, "open step failed")] and h.outcomes == [boom]


def test_a_link_the_session_refuses_runs_no_step() -> None:
    ran: list[Any] = []

    def step(session: Any) -> Observable[Any]:
        ran.append(session)
        return reactivex.empty()

    h = _Harness(step, attach=False)
    h.opening.start("s")
    h.budget.asked[0](Decision(True))
    assert h.attached == [h.link] and ran == [] and h.outcomes == []


def test_the_reason_of_a_failed_opening() -> None:
    h = _Harness()
    assert h.opening.reason(HandshakeRejected(429, 12.0)) is DisconnectReason.RATE_LIMITED
    assert h.budget.violations == [("http_429", 12.0)]  # the venue's 429 is told to the limiter
    assert h.opening.reason(RateLimitExceeded("cap", 1.0)) is DisconnectReason.RATE_LIMITED
    assert h.opening.reason(HandshakeRejected(403)) is DisconnectReason.NETWORK_ERROR
    assert h.opening.reason(OSError("refused")) is DisconnectReason.NETWORK_ERROR
    assert h.budget.violations == [("http_429", 12.0)]
