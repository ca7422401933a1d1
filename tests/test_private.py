"""rxws/_private.py through the client, in virtual time (TestScheduler + MemoryTransport + a
Responder whose VenueCore checks logins with VenueAuth on the virtual clock).

Every session logs in as its first open step: the frames the venue saw are asserted in order
(login, then subscribe); a refusal fails the private watchers, restores nothing private and is not
retried without the host; rotation and the redundant twin log in too; the venue clock is fed by
the handshake's ``Date`` and by login replies; ``client.every`` runs while connected.
"""

from __future__ import annotations

import json
import logging
from email.utils import formatdate
from typing import Any

import pytest
from harness import Virtual

from rxws import ConnectionState, ExponentialBackoff, ReconnectPolicy
from rxws.auth import Credentials
from rxws.events import (
    Authenticated,
    AuthFailed,
    ClockSkew,
    KeepaliveFailed,
    ReconnectDenied,
    ReconnectProposed,
)
from rxws.exceptions import AuthenticationError
from rxws.protocols import Deribit
from rxws.testing._auth import VenueAuth

GOOD = Credentials(api_key="virt-key-0123", secret="virt-secret-4567")
WRONG = Credentials(api_key="virt-key-0123", secret="not-the-virt-secret")
S = ConnectionState


def venue_auth(virtual: Virtual, dialect: str = "generic", **kwargs: Any) -> VenueAuth:
    auth = VenueAuth(GOOD, dialect, wall=virtual.now, **kwargs)
    virtual.responder.core.auth = auth
    return auth


def ops(peer: Any) -> list[str]:
    """What the venue saw on one connection: each frame's op (or method)."""
    out = []
    for frame in peer.sent:
        message = json.loads(frame)
        out.append(message.get("op") or message.get("method"))
    return out


def policy(approve: Any = True, **kwargs: Any) -> ReconnectPolicy:
    backoff = ExponentialBackoff(0.5, 2.0, 60.0, jitter="none", stable_after=1000.0)
    decide = approve if callable(approve) else (lambda _p: approve)
    return ReconnectPolicy(backoff=backoff, approve=decide, **kwargs)


def test_connect_logs_in_before_the_private_subscribe(virtual: Virtual) -> None:
    venue_auth(virtual)
    client = virtual.client(credentials=GOOD)
    got: list[Any] = []
    client.watch("private.orders").subscribe(got.append)
    virtual.at(1.0, client.connect)
    virtual.at(3.0, lambda: virtual.responder.publish("private.orders", {"state": "filled"}))
    virtual.run(until=4.0)
    assert ops(virtual.responder.peer) == ["login", "subscribe"]
    assert len(got) == 1 and "filled" in str(got[0])
    tl = virtual.timeline
    assert tl is not None
    kinds = tl.kinds()
    assert kinds.index("authenticated") < kinds.index("connected")
    assert client.state_value is S.CONNECTED


def test_drop_approve_reconnect_logs_in_then_restores(virtual: Virtual) -> None:
    venue_auth(virtual)
    client = virtual.client(credentials=GOOD, reconnect=policy())
    client.watch("private.orders").subscribe()
    client.watch("trades").subscribe()
    virtual.at(1.0, client.connect)
    virtual.at(3.0, lambda: virtual.responder.peer.drop())
    virtual.run(until=6.0)
    first, second = (peer for peer, _ in virtual.responder.sessions)
    assert ops(first) == ["login", "subscribe"]
    assert ops(second) == ["login", "subscribe"]  # the login first, then the restore
    assert sorted(json.loads(second.sent[1])["args"]) == ["private.orders", "trades"]
    tl = virtual.timeline
    assert tl is not None
    assert len(tl.of(Authenticated)) == 2
    kinds = tl.kinds()
    assert kinds.index("reconnected") < kinds.index("subscriptions_restored")
    assert virtual.responder.core.auth is not None and virtual.responder.core.auth.logins == 2


def test_a_wrong_secret_fails_private_watchers_and_is_not_retried(virtual: Virtual) -> None:
    venue_auth(virtual)
    client = virtual.client(credentials=WRONG, reconnect=policy())
    errors: list[Exception] = []
    public: list[Any] = []
    client.watch("private.orders").subscribe(on_error=errors.append)
    client.watch("trades").subscribe(public.append, on_error=errors.append)
    result = client.connect()
    virtual.run(until=10.0)
    assert [type(e) for e in errors] == [AuthenticationError]
    assert isinstance(errors[0], AuthenticationError) and errors[0].refused and errors[0].code == 401
    assert result.done
    tl = virtual.timeline
    assert tl is not None
    (failed,) = tl.of(AuthFailed)
    assert failed.code == 401 and failed.refused
    assert ops(virtual.responder.peer) == ["login"]  # nothing subscribed, private or public
    assert virtual.transport.attempts == 1 and not tl.of(ReconnectProposed)
    # A private watch now fails at once; nothing goes out.
    late: list[Exception] = []
    client.watch("private.fills").subscribe(on_error=late.append)
    virtual.run(until=12.0)
    assert [type(e) for e in late] == [AuthenticationError] and virtual.transport.attempts == 1


def test_a_refused_relogin_after_a_drop_waits_for_the_host(virtual: Virtual) -> None:
    auth = venue_auth(virtual)
    asked: list[ReconnectProposed] = []

    def approve(proposal: ReconnectProposed) -> bool:
        asked.append(proposal)
        return len(asked) == 1  # the drop is approved; whatever follows is denied

    client = virtual.client(
        credentials=GOOD, reconnect=policy(approve, retry_on=lambda _e: True), detect_gaps=False
    )
    errors: list[Exception] = []
    client.watch("private.orders").subscribe(on_error=errors.append)
    client.watch("trades").subscribe()
    virtual.at(1.0, client.connect)
    virtual.at(2.5, lambda: setattr(auth, "_secret", "rotated-by-the-venue"))  # the key was revoked
    virtual.at(3.0, lambda: virtual.responder.peer.drop())
    virtual.run(until=20.0)
    assert [type(e) for e in errors] == [AuthenticationError]
    second = virtual.responder.sessions[1][0]
    assert ops(second) == ["login"]  # refused: nothing restored on it
    tl = virtual.timeline
    assert tl is not None
    assert len(asked) == 2 and len(tl.of(ReconnectDenied)) == 1  # the host was asked and said no
    assert virtual.transport.attempts == 2
    assert client.subscriptions is not None and "private.orders" not in client._topics.registry.wanted()


def test_default_policy_does_not_propose_after_a_refused_login(virtual: Virtual) -> None:
    auth = venue_auth(virtual)
    client = virtual.client(credentials=GOOD, reconnect=policy())
    virtual.at(1.0, client.connect)
    virtual.at(2.5, lambda: setattr(auth, "_secret", "rotated-by-the-venue"))
    virtual.at(3.0, lambda: virtual.responder.peer.drop())
    virtual.run(until=20.0)
    tl = virtual.timeline
    assert tl is not None
    assert len(tl.of(ReconnectProposed)) == 1  # the drop; the refusal after it is not proposed
    assert virtual.transport.attempts == 2 and len(tl.of(AuthFailed)) == 1


def test_rotation_logs_the_new_session_in_before_subscribing(virtual: Virtual) -> None:
    venue_auth(virtual)
    client = virtual.client(credentials=GOOD)
    client.watch("private.orders").subscribe()
    virtual.at(1.0, client.connect)
    virtual.at(3.0, client.rotate)
    virtual.run(until=8.0)
    old, new = (peer for peer, _ in virtual.responder.sessions)
    assert ops(old)[:2] == ["login", "subscribe"]
    assert ops(new)[:2] == ["login", "subscribe"]
    tl = virtual.timeline
    assert tl is not None
    assert len(tl.of(Authenticated)) == 2 and "rotated" in tl.kinds()


def test_both_redundant_sessions_log_in(virtual: Virtual) -> None:
    venue_auth(virtual)
    client = virtual.client(credentials=GOOD, redundancy=2)
    client.watch("private.orders").subscribe()
    virtual.at(1.0, client.connect)
    virtual.run(until=5.0)
    peers = [peer for peer, _ in virtual.responder.sessions]
    assert len(peers) == 2
    for peer in peers:
        assert ops(peer) == ["login", "subscribe"]
    assert virtual.responder.core.auth is not None and virtual.responder.core.auth.logins == 2


def test_the_handshake_date_sets_the_clock_so_a_skewed_venue_accepts_the_login(virtual: Virtual) -> None:
    offset = 40.0  # beyond the generic venue's 30 s window: a login signed with local time fails
    venue_auth(virtual, clock_offset=offset)
    responder = virtual.responder

    def with_date(peer: Any) -> None:
        peer.response_headers["Date"] = formatdate(virtual.now() + offset, usegmt=True)
        responder(peer)

    virtual.transport.responder = with_date
    client = virtual.client(credentials=GOOD)
    virtual.at(1000.0, client.connect)
    virtual.run(until=1002.0)
    assert client.state_value is S.CONNECTED
    assert client.clock.offset is not None and abs(client.clock.offset - offset) < 1.0
    tl = virtual.timeline
    assert tl is not None
    (skew,) = tl.of(ClockSkew)
    assert skew.window == 30.0 and abs(skew.offset - offset) < 1.0
    assert [s.source for s in client.clock.samples] == ["date", "reply"]


def test_without_a_date_a_skewed_venue_refuses_the_login(virtual: Virtual) -> None:
    venue_auth(virtual, clock_offset=40.0)
    client = virtual.client(credentials=GOOD)
    virtual.at(1000.0, client.connect)
    virtual.run(until=1002.0)
    tl = virtual.timeline
    assert tl is not None
    (failed,) = tl.of(AuthFailed)
    assert failed.code == 408 and client.state_value is not S.CONNECTED


def test_every_runs_while_connected_and_reports_failures(virtual: Virtual) -> None:
    client = virtual.client(reconnect=policy())
    runs: list[float] = []

    def action() -> None:
        runs.append(virtual.now())
        if len(runs) == 2:
            raise RuntimeError("listenKey extension failed")

    task = client.every(10.0, action, name="listen_key")
    virtual.at(1.0, client.connect)  # CONNECTED at 1.25
    virtual.at(25.0, lambda: virtual.responder.peer.drop())  # back at 26.0 (0.25 + 0.5 + 0.25)
    virtual.run(until=40.0)
    assert runs == [11.25, 21.25, 36.0]
    tl = virtual.timeline
    assert tl is not None
    (failed,) = tl.of(KeepaliveFailed)
    assert failed.name == "listen_key" and "listenKey extension failed" in failed.error
    virtual.at(41.0, client.close)
    virtual.run(until=45.0)
    assert task.disposed and not client._private.keepalives


def test_deribit_refreshes_its_token_before_it_expires(virtual: Virtual) -> None:
    virtual.responder.core.dialect = _server("deribit")
    venue_auth(virtual, "deribit", token_life=60)
    client = virtual.client(protocol=Deribit(private=True), credentials=GOOD)
    virtual.at(1.0, client.connect)
    virtual.run(until=80.0)
    tl = virtual.timeline
    assert tl is not None
    refreshed = [e for e in tl.of(Authenticated) if e.refreshed]
    assert refreshed and 30.0 <= refreshed[0].at <= 46.0  # due 30 s before the 60 s life ends
    assert [json.loads(f)["params"]["grant_type"] for f in virtual.responder.peer.sent][:2] == [
        "client_signature",
        "refresh_token",
    ]


def test_credentials_never_reach_reprs_events_or_logs(virtual: Virtual, caplog: Any) -> None:
    venue_auth(virtual)
    caplog.set_level(logging.DEBUG)
    client = virtual.client(credentials=WRONG)
    client.watch("private.orders").subscribe(on_error=lambda _e: None)
    virtual.at(1.0, client.connect)
    virtual.run(until=5.0)
    tl = virtual.timeline
    assert tl is not None and tl.of(AuthFailed)
    dumps = " ".join(e.model_dump_json() for e in tl.events)
    for secret in ("not-the-virt-secret", "virt-key-0123"):
        assert secret not in repr(client) and secret not in dumps and secret not in caplog.text
        assert secret not in repr(client._private.auth)


def _server(name: str) -> Any:
    from rxws.testing.dialects import server_dialect

    return server_dialect(name)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_login_timeout_must_be_positive(virtual: Virtual, bad: float) -> None:
    from rxws.exceptions import UsageError

    with pytest.raises(UsageError):
        virtual.client(credentials=GOOD, login_timeout=bad)


def test_a_private_pong_stating_the_venue_time_feeds_the_clock(virtual: Virtual) -> None:
    """Bybit's private pong ``{"op": "pong", "args": ["<ms>"]}``: a sample at the round trip's
    midpoint (the ping went out at t, the pong came back at t + 0.5: venue time at t + 0.25)."""
    from rxws.protocols import Bybit

    ahead = 5.0
    responder = virtual.responder

    def venue(peer: Any) -> None:
        responder(peer)
        answer = peer.on_receive

        def on_receive(frame: Any) -> None:
            if json.loads(frame).get("op") == "ping":
                pong = {"op": "pong", "args": [str(int((virtual.now() + ahead) * 1000))], "conn_id": "c"}
                peer.push(pong)
                return
            answer(frame)

        peer.on_receive = on_receive

    virtual.transport.responder = venue
    client = virtual.client(protocol=Bybit(category="private", heartbeat_interval=20.0))
    virtual.at(1.0, client.connect)
    virtual.run(until=1.0 + 0.25 + 20.0 + 0.6)  # the first ping at 21.25, its pong at 21.75
    (sample,) = client.clock.samples
    assert sample.source == "reply" and sample.uncertainty == pytest.approx(0.25)
    assert sample.offset == pytest.approx(ahead, abs=1e-6)


def test_default_retry_on_refuses_a_refused_login_and_retries_a_login_timeout() -> None:
    from rxws.reconnect import default_retry_on

    assert not default_retry_on(AuthenticationError(60007, "Invalid sign", refused=True))
    assert default_retry_on(AuthenticationError(None, "no answer in time", refused=False))
