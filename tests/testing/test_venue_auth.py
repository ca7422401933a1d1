"""rxws.testing._auth.VenueAuth, sans-I/O: each twin's refusal codes for a bad key, a bad
passphrase, a bad or expired timestamp, and private subscribes before a login."""

from __future__ import annotations

from typing import Any

import pytest

from rxws.auth import Credentials
from rxws.protocols import Binance, Deribit, GenericJson, Okx
from rxws.protocols.base import VenueProtocol, json_dumps, json_loads
from rxws.testing._auth import VenueAuth
from rxws.testing._venue_core import Reply, SessionCore, VenueCore

NOW = 1_764_000_000.0
GOOD = Credentials(api_key="venue-key-0001", secret="venue-secret-0002", passphrase="venue-phrase-3")


def session(name: str, offset: float = 0.0) -> tuple[SessionCore, VenueAuth]:
    auth = VenueAuth(GOOD, name, clock_offset=offset, wall=lambda: NOW)
    return SessionCore(VenueCore(dialect=name, auth=auth), 1), auth


def answer(core: SessionCore, frame: Any) -> list[Any]:
    return [json_loads(a.frame) for a in core.receive(json_dumps(frame), 0.0) if isinstance(a, Reply)]


def login(
    protocol: VenueProtocol, name: str, creds: Credentials, now_ms: int, **kw: Any
) -> tuple[Any, VenueAuth]:
    core, auth = session(name, **kw)
    [step] = protocol.login_frames(creds, now_ms, 1)
    [reply] = answer(core, step.frame)
    return reply, auth


@pytest.mark.parametrize(
    ("creds", "now_ms", "code"),
    [
        (
            Credentials(api_key="other-key", secret="venue-secret-0002", passphrase="venue-phrase-3"),
            0,
            "60005",
        ),
        (Credentials(api_key="venue-key-0001", secret="venue-secret-0002", passphrase="wrong"), 0, "60024"),
        (GOOD, -31_000, "60006"),
        (
            Credentials(api_key="venue-key-0001", secret="wrong-secret", passphrase="venue-phrase-3"),
            0,
            "60007",
        ),
    ],
    ids=["bad-key", "bad-passphrase", "expired", "bad-sign"],
)
def test_okx_refusals(creds: Credentials, now_ms: int, code: str) -> None:
    reply, auth = login(Okx(), "okx", creds, int(NOW * 1000) + now_ms)
    assert reply["event"] == "error" and reply["code"] == code and "id" not in reply
    assert Okx().login_reply_key(reply) == "login" and auth.logins == 0 and len(auth.refusals) == 1


def test_okx_invalid_timestamp_and_success() -> None:
    core, auth = session("okx")
    [reply] = answer(core, {"op": "login", "args": [{"apiKey": "venue-key-0001", "timestamp": "soon"}]})
    assert reply["code"] == "60004"
    reply, auth = login(Okx(), "okx", GOOD, int(NOW * 1000))
    assert (reply["event"], reply["code"]) == ("login", "0") and auth.logins == 1


def test_binance_refusals() -> None:
    other = Credentials(api_key="someone-else", secret="venue-secret-0002")
    assert login(Binance(), "binance", other, int(NOW * 1000))[0]["error"]["code"] == -2015
    ahead = login(Binance(), "binance", GOOD, int(NOW * 1000) + 1000)[0]  # "timestamp < serverTime + 1000"
    assert (ahead["status"], ahead["error"]["code"]) == (400, -1021)
    late = login(Binance(), "binance", GOOD, int(NOW * 1000) - 5001)[0]  # beyond recvWindow 5000
    assert late["error"]["code"] == -1021
    ok = login(Binance(), "binance", GOOD, int(NOW * 1000) - 4000)[0]
    assert ok["status"] == 200 and ok["result"]["serverTime"] == int(NOW * 1000)


def test_deribit_refuses_a_stale_timestamp_and_an_unknown_refresh_token() -> None:
    stale = login(Deribit(), "deribit", GOOD, int(NOW * 1000) - 61_000)[0]
    assert stale["error"] == {"message": "invalid_credentials", "code": 13004}
    core, _ = session("deribit")
    [step] = Deribit().refresh_frames("never-issued", 2)
    [reply] = answer(core, step.frame)
    assert reply["error"]["code"] == 13009 and reply["usOut"] == int(NOW * 1000) * 1000


def test_generic_timestamp_window_follows_the_venue_clock() -> None:
    assert login(GenericJson(), "generic", GOOD, int(NOW * 1000), offset=31.0)[0]["error"]["code"] == 408
    assert login(GenericJson(), "generic", GOOD, int(NOW * 1000), offset=29.0)[0]["result"]["authenticated"]


def test_private_subscribe_is_refused_until_login_and_public_ones_pass() -> None:
    core, _ = session("generic")
    [public] = answer(core, {"op": "subscribe", "id": 1, "args": ["trades.x"]})
    assert public == {"id": 1, "result": None}
    [refused] = answer(core, {"op": "subscribe", "id": 2, "args": ["trades.y", "private.orders"]})
    assert refused["error"]["code"] == 401 and list(core.topics) == ["trades.x"]
    [step] = GenericJson().login_frames(GOOD, int(NOW * 1000), 3)
    answer(core, step.frame)
    assert core.authenticated
    answer(core, {"op": "subscribe", "id": 4, "args": ["private.orders"]})
    assert list(core.topics) == ["trades.x", "private.orders"]


def test_a_twin_without_login_and_the_repr() -> None:
    with pytest.raises(ValueError, match="jsonrpc twin has no login"):
        VenueAuth(GOOD, "jsonrpc")
    _, auth = session("okx")
    assert repr(auth) == "VenueAuth(okx, logins=0, refusals=0)" and "venue-secret" not in repr(auth)


def test_ed25519_binance_login_is_verified_with_the_public_key() -> None:
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    def pem() -> str:
        return (
            Ed25519PrivateKey.generate()
            .private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            .decode()
        )

    mine = Credentials(api_key="venue-key-0001", secret=pem())
    auth = VenueAuth(mine, "binance", wall=lambda: NOW)
    core = SessionCore(VenueCore(dialect="binance", auth=auth), 1)
    [step] = Binance().login_frames(mine, int(NOW * 1000), 1)
    assert answer(core, step.frame)[0]["status"] == 200
    forged = Credentials(api_key="venue-key-0001", secret=pem())
    [step] = Binance().login_frames(forged, int(NOW * 1000), 2)
    assert answer(core, step.frame)[0]["error"]["code"] == -1022
