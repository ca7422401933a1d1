"""rxws._auth_flow.Authenticator in virtual time, against the mock venue's login checks in memory
(rxws.testing._auth: each twin verifies signatures the venue's way and answers with its frames)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import reactivex
from reactivex.testing import TestScheduler

from rxws._auth_flow import Authenticator
from rxws.auth import Credentials
from rxws.core.clock import VenueClock
from rxws.events import Authenticated, AuthFailed, ClockSkew, Event
from rxws.exceptions import AuthenticationError, UsageError
from rxws.protocols import Binance, Bybit, Deribit, GenericJson, Okx
from rxws.protocols.base import VenueProtocol
from rxws.testing._auth import MemoryExchange, VenueAuth
from rxws.testing._venue_core import VenueCore

START = 1_764_000_000.0
GOOD = Credentials(api_key="key-0123456789", secret="secret-abcdefghij", passphrase="phrase-klmnop")
WRONG = Credentials(api_key="key-0123456789", secret="secret-WRONG-value", passphrase="phrase-klmnop")

DIALECTS: dict[str, Callable[[], VenueProtocol]] = {
    "generic": GenericJson,
    "okx": Okx,
    "bybit": lambda: Bybit(category="private"),
    "deribit": Deribit,
    "binance": Binance,
}
REFUSED_CODES: dict[str, Any] = {
    "generic": 401,
    "okx": 60007,
    "bybit": None,
    "deribit": 13004,
    "binance": -1022,
}


@dataclass
class Rig:
    scheduler: TestScheduler
    venue: VenueAuth
    exchange: MemoryExchange
    auth: Authenticator
    events: list[Event] = field(default_factory=list)

    def run(self, source: reactivex.Observable[Any]) -> tuple[list[Any], list[BaseException], list[bool]]:
        values: list[Any] = []
        errors: list[BaseException] = []
        done: list[bool] = []
        source.subscribe(values.append, errors.append, lambda: done.append(True), scheduler=self.scheduler)
        self.scheduler.advance_by(30.0)
        return values, errors, done

    def of(self, cls: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]


def rig(name: str, creds: Credentials = GOOD, *, venue_offset: float = 0.0, timeout: float = 5.0) -> Rig:
    scheduler = TestScheduler()
    scheduler.advance_to(START)

    def wall() -> float:
        return scheduler.now.timestamp()

    venue = VenueAuth(GOOD, name, clock_offset=venue_offset, wall=wall)
    protocol = DIALECTS[name]()
    exchange = MemoryExchange(protocol, VenueCore(dialect=name, auth=venue), scheduler)
    events: list[Event] = []
    auth = Authenticator(protocol, creds, VenueClock(), events.append, wall=wall, timeout=timeout)
    return Rig(scheduler, venue, exchange, auth, events)


@pytest.mark.parametrize("name", list(DIALECTS))
def test_a_good_login_is_accepted(name: str) -> None:
    r = rig(name)
    values, errors, done = r.run(r.auth.login(r.exchange))
    assert (values, errors, done) == ([None], [], [True])
    assert r.auth.authenticated and r.exchange.session.authenticated
    [event] = r.of(Authenticated)
    assert event.at == pytest.approx(START + 0.05)  # one reply's latency after the login was sent
    assert r.venue.logins == 1 and len(r.exchange.sent) == 1
    assert r.run(r.auth.ready())[0] == [None]


@pytest.mark.parametrize("name", list(DIALECTS))
def test_a_wrong_secret_is_refused_with_the_venue_code_and_never_retried(name: str) -> None:
    r = rig(name, WRONG)
    values, errors, _ = r.run(r.auth.login(r.exchange))
    assert values == []
    [error] = errors
    assert isinstance(error, AuthenticationError) and error.refused
    assert error.code == REFUSED_CODES[name]
    [failed] = r.of(AuthFailed)
    assert (failed.code, failed.refused) == (REFUSED_CODES[name], True)
    assert not r.auth.authenticated and not r.exchange.session.authenticated
    r.scheduler.advance_by(600.0)
    assert len(r.exchange.sent) == 1  # nothing retried behind the host's back
    assert r.of(Authenticated) == []
    ready_errors = r.run(r.auth.ready())[1]
    assert ready_errors == [error]  # waiters fail with the same typed error


def test_no_secret_reaches_the_refusal() -> None:
    r = rig("okx", WRONG)
    _, [error], _ = r.run(r.auth.login(r.exchange))
    texts = [str(error), repr(error), *(e.model_dump_json() for e in r.events)]
    for value in ("secret-WRONG-value", "phrase-klmnop", "key-0123456789"):
        assert all(value not in t for t in texts)
    sign = r.exchange.sent[0]["args"][0]["sign"]
    assert all(sign not in t for t in texts)


def test_a_login_without_an_answer_fails_as_not_refused() -> None:
    r = rig("generic", timeout=2.0)
    r.exchange.silent = True
    values, [error], _ = r.run(r.auth.login(r.exchange))
    assert values == [] and isinstance(error, AuthenticationError) and not error.refused
    assert "RequestTimeout" in error.detail
    [failed] = r.of(AuthFailed)
    assert failed.at == pytest.approx(START + 2.0) and not failed.refused


def test_an_expired_timestamp_is_refused_and_the_host_clock_sample_fixes_it() -> None:
    """Binance refuses a timestamp more than 1 s ahead of its clock (-1021); once the host feeds
    the clock (e.g. from the REST time endpoint) the login is signed with the venue's time."""
    r = rig("binance", venue_offset=-3.0)  # the venue's clock is 3 s behind ours
    _, [error], _ = r.run(r.auth.login(r.exchange))
    assert isinstance(error, AuthenticationError) and error.code == -1021
    r.auth.clock.add_sample(-3.0, 0.01)
    assert r.run(r.auth.login(r.exchange))[0] == [None]
    assert r.auth.authenticated


def test_bybit_refuses_an_expires_that_has_passed() -> None:
    r = rig("bybit", venue_offset=12.0)  # venue 12 s ahead: now + 10 s has passed there
    _, [error], _ = r.run(r.auth.login(r.exchange))
    assert isinstance(error, AuthenticationError) and error.detail == "error:request expired"


def test_a_reply_with_the_venue_time_feeds_the_clock_and_reports_skew() -> None:
    r = rig("generic", venue_offset=20.0)  # within the 30 s window, beyond half of it
    assert r.run(r.auth.login(r.exchange))[0] == [None]
    [skew] = r.of(ClockSkew)
    # venue time read at the midpoint of a 0.05 s round trip
    assert skew.offset == pytest.approx(20.0 - 0.025, abs=0.002) and skew.window == 30.0
    assert r.auth.clock.offset == pytest.approx(skew.offset)
    # the next login is signed with the venue's time: no second ClockSkew for the same offset
    assert r.run(r.auth.login(r.exchange))[0] == [None]
    assert len(r.of(ClockSkew)) == 1


def test_deribit_token_is_refreshed_before_it_expires() -> None:
    r = rig("deribit")
    r.venue.token_life = 900
    assert r.run(r.auth.login(r.exchange))[0] == [None]
    assert r.of(Authenticated)[0].expires_in == 900.0
    expires_at = r.auth.expires_at
    assert expires_at == pytest.approx(START + 0.05 + 900.0)
    assert not r.auth.refresh_due()
    assert r.run(r.auth.refresh_if_due(r.exchange))[0] == [None] and len(r.exchange.sent) == 1
    r.scheduler.advance_to(expires_at - 59.0)
    assert r.auth.refresh_due()
    assert r.run(r.auth.refresh_if_due(r.exchange))[0] == [None]
    refresh = r.exchange.sent[-1]["params"]
    assert refresh["grant_type"] == "refresh_token"
    assert [e.refreshed for e in r.of(Authenticated)] == [False, True]
    assert r.auth.expires_at is not None and r.auth.expires_at > expires_at
    assert r.auth.refreshes == 1


def test_a_refused_refresh_is_an_auth_failure() -> None:
    r = rig("deribit")
    assert r.run(r.auth.login(r.exchange))[0] == [None]
    r.venue._refresh_tokens.clear()  # the venue forgot the token (revoked)
    r.scheduler.advance_to(r.auth.expires_at or 0.0)
    _, [error], _ = r.run(r.auth.refresh_if_due(r.exchange))
    assert isinstance(error, AuthenticationError) and error.code == 13009
    assert not r.auth.authenticated and not r.auth.refresh_due()


def test_no_refresh_for_a_dialect_without_tokens() -> None:
    r = rig("okx")
    assert r.run(r.auth.login(r.exchange))[0] == [None]
    assert r.auth.expires_at is None and not r.auth.refresh_due()
    assert r.run(r.auth.refresh(r.exchange))[0] == [None] and len(r.exchange.sent) == 1


def test_ready_waits_for_the_login_and_reset_forgets_it() -> None:
    r = rig("generic")
    got: list[Any] = []
    r.auth.ready().subscribe(got.append, scheduler=r.scheduler)
    assert got == []
    r.run(r.auth.login(r.exchange))
    assert got == [None]
    r.auth.reset()  # the connection dropped
    assert not r.auth.authenticated
    waiting: list[Any] = []
    r.auth.ready().subscribe(waiting.append, scheduler=r.scheduler)
    r.scheduler.advance_by(1.0)
    assert waiting == []
    r.run(r.auth.login(r.exchange))  # re-login after the approved reconnect
    assert waiting == [None] and r.auth.logins == 2


def test_a_new_login_after_a_refusal_makes_waiters_wait_again() -> None:
    r = rig("generic", WRONG)
    r.run(r.auth.login(r.exchange))
    assert r.auth.failures == 1
    waiting: list[Any] = []
    errors: list[Any] = []
    login = r.auth.login(r.exchange)
    login.subscribe(on_error=lambda _e: None, scheduler=r.scheduler)
    r.auth.ready().subscribe(waiting.append, errors.append, scheduler=r.scheduler)
    assert (waiting, errors) == ([], [])  # the pending login's outcome decides
    r.scheduler.advance_by(1.0)
    assert len(errors) == 1 and isinstance(errors[0], AuthenticationError)
    assert repr(r.auth) == "Authenticator(generic, authenticated=False)"


def test_credentials_the_dialect_cannot_use_are_a_usage_error_not_a_refusal() -> None:
    r = rig("okx", Credentials(api_key="key-0123456789", secret="secret-abcdefghij"))
    _, [error], _ = r.run(r.auth.login(r.exchange))
    assert isinstance(error, UsageError) and "passphrase" in str(error)
    assert r.events == [] and r.exchange.sent == []


def test_a_handshake_date_fed_by_the_client_reports_skew_once() -> None:
    r = rig("okx")
    # the handshake's Date says the venue is 17 s ahead (OKX window 30 s: "near" from 15 s)
    date = "Mon, 24 Nov 2025 16:00:17 GMT"  # 1764000017
    r.auth.clock.add_date_header(date, START - 0.5, START - 0.3)
    assert r.auth.check_skew() and not r.auth.check_skew()
    [skew] = r.of(ClockSkew)
    assert skew.offset == pytest.approx(17.5 - (-0.4)) and skew.window == 30.0
    # the login is signed with the venue's time and accepted (the venue clock agrees: +18 s)
    r.venue.clock_offset = 18.0
    assert r.run(r.auth.login(r.exchange))[0] == [None]
    assert r.exchange.sent[0]["args"][0]["timestamp"] == str(int(START + 17.9))
