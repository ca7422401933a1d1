"""Login checks of the mock venue's dialect twins, and an in-memory ``exchange`` for login tests.

:class:`VenueAuth` knows one API key, secret (and passphrase) and verifies each twin's login the
way its venue documents, answering with the venue's own success and error frames:

===========  ======================================================  ===================================
dialect      refusals (code: why)                                    success
===========  ======================================================  ===================================
generic      401 unknown key or bad signature; 408 timestamp more    ``{"id", "result": {"authenticated":
             than 30 s from the venue's clock                        true, "time": <venue ms>}}``
okx          60005 invalid apiKey; 60004 invalid / 60006 expired     ``{"event": "login", "code": "0",
             timestamp (30 s); 60024 wrong passphrase; 60007 sign    "msg": "", "connId"}``
bybit        ``"Params Error"`` bad key or signature; ``"error:      ``{"success": true, "ret_msg": "",
             request expired"`` ``expires`` passed (no codes)         "op": "auth", ...}``
deribit      13004 ``invalid_credentials`` (key, signature, or a     ``result`` with ``access_token``,
             timestamp over 60 s off); 13009 ``invalid_token``       ``expires_in``, ``refresh_token``;
             (refresh)                                               ``usIn``/``usOut`` (µs)
binance      -2015 invalid key (401); -1021 timestamp 1 s ahead or   ``status: 200``, ``result`` with
             beyond ``recvWindow`` (5 s); -1022 bad signature         ``serverTime``
===========  ======================================================  ===================================

Codes and texts: OKX "Error Code > WebSocket" (60004-60007, 60011, 60024); Bybit's answers as
reported in bybit-exchange/pybit issues #152/#300 (``Params Error``) and #37 (``error:request
expired``), ``Request not authorized`` (nautechsystems/nautilus_trader PR #2101); Deribit
"Error Codes" (13004, 13009); Binance ``errors.md`` (-1021, -1022, -2015) — read 2026-11-30.

A subscribe that names a private topic (the client dialect's ``is_private``) before a login is
refused (OKX 60011 "Please log in", Bybit ``Request not authorized``, Deribit 13009, Binance
-2015, generic 401), so a private channel pushes only after a login. The venue's clock is the
local clock plus ``clock_offset`` seconds.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable

from rxws.auth import (
    Credentials,
    binance_payload,
    binance_sign,
    bybit_signature,
    deribit_signature,
    generic_signature,
    is_pem_key,
    okx_signature,
)
from rxws.exceptions import RequestTimeout
from rxws.protocols import dialect
from rxws.protocols.base import VenueProtocol, json_dumps
from rxws.testing.dialects import ClientOp, ServerDialect

if TYPE_CHECKING:
    from rxws.testing._venue_core import SessionCore, VenueCore

__all__ = ["MemoryExchange", "VenueAuth"]

_LOGIN_METHODS = {
    "generic": "login",
    "okx": "login",
    "bybit": "auth",
    "deribit": "public/auth",
    "binance": "session.logon",
}


class VenueAuth:
    """The mock venue's login checks (module docstring).

    Args:
        credentials: the one account the venue knows.
        dialect: the server dialect's name (``generic``, ``okx``, ``bybit``, ``deribit``, ``binance``).
        clock_offset: seconds the venue's clock is ahead of the local one (negative: behind).
        wall: the local clock (Unix seconds).
        token_life: Deribit ``expires_in`` (seconds).

    Raises:
        ValueError: the dialect has no login.
    """

    def __init__(
        self,
        credentials: Credentials,
        dialect_name: str,
        *,
        clock_offset: float = 0.0,
        wall: Callable[[], float] = time.time,
        token_life: int = 900,
    ) -> None:
        if dialect_name not in _LOGIN_METHODS:
            raise ValueError(
                f"the {dialect_name} twin has no login; known: {', '.join(sorted(_LOGIN_METHODS))}"
            )
        self.dialect_name = dialect_name
        self.clock_offset = clock_offset
        self.token_life = token_life
        self.logins = 0
        self.refusals: list[Any] = []
        self._key = credentials.api_key.get_secret_value()
        self._secret = credentials.secret.get_secret_value()
        self._phrase = None if credentials.passphrase is None else credentials.passphrase.get_secret_value()
        self._wall = wall
        self._client_dialect: VenueProtocol = dialect(dialect_name)
        self._refresh_tokens: set[str] = set()

    def __repr__(self) -> str:
        return f"VenueAuth({self.dialect_name}, logins={self.logins}, refusals={len(self.refusals)})"

    def now_ms(self) -> int:
        """The venue's clock in Unix milliseconds."""
        return int((self._wall() + self.clock_offset) * 1000)

    # Hooks called by SessionCore -------------------------------------------------------------------
    def answer(self, session: SessionCore, op: ClientOp, server: ServerDialect) -> list[str] | None:
        """The frames answering ``op`` when it is a login (or refresh), else None."""
        if op.method != _LOGIN_METHODS[self.dialect_name]:
            return None
        check = getattr(self, f"_{self.dialect_name}")
        ok, frames = check(op, server)
        if ok:
            self.logins += 1
            session.authenticated = True
        else:
            self.refusals.append(op.id)
        return list(frames)

    def refuse_subscribe(self, session: SessionCore, op: ClientOp, server: ServerDialect) -> list[str] | None:
        """The venue's refusal of a subscribe naming a private topic before a login, else None."""
        if session.authenticated or not any(self._client_dialect.is_private(t) for t in op.topics):
            return None
        name = self.dialect_name
        if name == "okx":
            return [server.error(op.id, 60011, "Please log in")]
        if name == "bybit":
            return [_bybit(server, False, "Request not authorized", op.id, "subscribe")]
        if name == "deribit":
            return [self._rpc_error(op.id, 13009, "unauthorized")]
        if name == "binance":
            return [_binance_error(op.id, 401, -2015, "Invalid API-key, IP, or permissions for action.")]
        return [server.error(op.id, 401, "login required")]

    # Per-dialect checks: (accepted, frames) --------------------------------------------------------
    def _generic(self, op: ClientOp, server: ServerDialect) -> tuple[bool, list[str]]:
        p = op.params if isinstance(op.params, dict) else {}
        now, ts = self.now_ms(), p.get("timestamp")
        if p.get("api_key") != self._key:
            return False, [server.error(op.id, 401, "unknown api key")]
        if not isinstance(ts, int) or abs(now - ts) > 30_000:
            return False, [server.error(op.id, 408, "timestamp outside the 30 s window")]
        if p.get("signature") != generic_signature(self._secret, self._key, ts):
            return False, [server.error(op.id, 401, "invalid signature")]
        return True, [server.reply(op.id, {"authenticated": True, "time": now})]

    def _okx(self, op: ClientOp, server: ServerDialect) -> tuple[bool, list[str]]:
        p = op.params if isinstance(op.params, dict) else {}
        ts = p.get("timestamp")
        if p.get("apiKey") != self._key:
            return False, [server.error(None, 60005, "Invalid apiKey")]
        if not isinstance(ts, str) or not ts.isdigit():
            return False, [server.error(None, 60004, "Invalid timestamp")]
        if abs(self.now_ms() / 1000 - int(ts)) > 30:
            return False, [server.error(None, 60006, "Timestamp request expired")]
        if p.get("passphrase") != self._phrase:
            return False, [server.error(None, 60024, "Wrong passphrase")]
        if p.get("sign") != okx_signature(self._secret, ts):
            return False, [server.error(None, 60007, "Invalid sign")]
        conn = getattr(server, "conn_id", "")
        return True, [json_dumps({"event": "login", "code": "0", "msg": "", "connId": conn})]

    def _bybit(self, op: ClientOp, server: ServerDialect) -> tuple[bool, list[str]]:
        args = op.params if isinstance(op.params, list) else []
        key, expires, signature = [*args, None, None, None][:3]
        if (
            key != self._key
            or not isinstance(expires, int)
            or signature != bybit_signature(self._secret, expires)
        ):
            return False, [_bybit(server, False, "Params Error", op.id, "auth")]
        if expires < self.now_ms():
            return False, [_bybit(server, False, "error:request expired", op.id, "auth")]
        return True, [_bybit(server, True, "", op.id, "auth")]

    def _deribit(self, op: ClientOp, server: ServerDialect) -> tuple[bool, list[str]]:
        p = op.params if isinstance(op.params, dict) else {}
        if p.get("grant_type") == "refresh_token":
            token = p.get("refresh_token")
            if token not in self._refresh_tokens:
                return False, [self._rpc_error(op.id, 13009, "invalid_token")]
            self._refresh_tokens.discard(str(token))
            return True, [self._tokens(op.id)]
        ts, nonce = p.get("timestamp"), p.get("nonce")
        if (
            p.get("grant_type") != "client_signature"
            or p.get("client_id") != self._key
            or not isinstance(ts, int)
            or not isinstance(nonce, str)
            or p.get("signature") != deribit_signature(self._secret, ts, nonce, str(p.get("data", "")))
            or abs(self.now_ms() - ts) > 60_000
        ):
            return False, [self._rpc_error(op.id, 13004, "invalid_credentials")]
        return True, [self._tokens(op.id)]

    def _binance(self, op: ClientOp, server: ServerDialect) -> tuple[bool, list[str]]:
        p = op.params if isinstance(op.params, dict) else {}
        now, ts = self.now_ms(), p.get("timestamp")
        window = p.get("recvWindow", 5000)
        if p.get("apiKey") != self._key:
            return False, [
                _binance_error(op.id, 401, -2015, "Invalid API-key, IP, or permissions for action.")
            ]
        if not isinstance(ts, int) or not isinstance(window, int) or ts >= now + 1000 or now - ts > window:
            text = "Timestamp for this request is outside of the recvWindow."
            return False, [_binance_error(op.id, 400, -1021, text)]
        if not self._binance_signature_ok(p):
            return False, [_binance_error(op.id, 400, -1022, "Signature for this request is not valid.")]
        result = {
            "apiKey": self._key,
            "authorizedSince": now,
            "connectedSince": now,
            "returnRateLimits": False,
            "serverTime": now,
            "userDataStream": False,
        }
        return True, [json_dumps({"id": op.id, "status": 200, "result": result})]

    def _binance_signature_ok(self, params: dict[str, Any]) -> bool:
        signature = params.get("signature")
        payload = binance_payload(params)
        if not is_pem_key(self._secret):
            return isinstance(signature, str) and signature.lower() == binance_sign(self._secret, payload)
        return _verify_pem_signature(self._secret, payload, signature)

    # Frames ----------------------------------------------------------------------------------------
    def _tokens(self, request_id: Any) -> str:
        refresh = f"{self.now_ms()}.{secrets.token_hex(12)}"
        self._refresh_tokens.add(refresh)
        result = {
            "access_token": f"{self.now_ms()}.{secrets.token_hex(12)}",
            "expires_in": self.token_life,
            "refresh_token": refresh,
            "scope": "connection mainaccount",
            "enabled_features": [],
            "token_type": "bearer",
        }
        return json_dumps({"jsonrpc": "2.0", "id": request_id, "result": result, **self._us()})

    def _rpc_error(self, request_id: Any, code: int, message: str) -> str:
        error = {"message": message, "code": code}
        return json_dumps({"jsonrpc": "2.0", "id": request_id, "error": error, **self._us()})

    def _us(self) -> dict[str, int]:
        us = self.now_ms() * 1000
        return {"usIn": us, "usOut": us, "usDiff": 0}


def _bybit(server: ServerDialect, success: bool, ret_msg: str, request_id: Any, op: str) -> str:
    head = {"success": success, "ret_msg": ret_msg, "conn_id": getattr(server, "conn_id", "")}
    rid = {} if request_id is None else {"req_id": request_id}
    return json_dumps({**head, **rid, "op": op})


def _binance_error(request_id: Any, status: int, code: int, msg: str) -> str:
    return json_dumps({"id": request_id, "status": status, "error": {"code": code, "msg": msg}})


def _verify_pem_signature(pem: str, payload: str, signature: Any) -> bool:
    """Verify a base64 Ed25519/RSA signature with the public half of ``pem`` (needs cryptography)."""
    import base64

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

    if not isinstance(signature, str):
        return False
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    try:
        raw = base64.b64decode(signature, validate=True)
        if isinstance(key, ed25519.Ed25519PrivateKey):
            key.public_key().verify(raw, payload.encode("ascii"))
            return True
        if isinstance(key, rsa.RSAPrivateKey):
            key.public_key().verify(raw, payload.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
            return True
    except (InvalidSignature, ValueError):
        return False
    return False


class MemoryExchange:
    """``exchange(frame, key, timeout)`` over a mock venue session in memory, on a scheduler.

    The frame is encoded by ``protocol``, answered by a :class:`~rxws.testing._venue_core.SessionCore`
    of ``venue``, and the first answer whose ``protocol.login_reply_key`` is ``key`` is delivered
    ``latency`` seconds later; none within ``timeout`` fails with ``RequestTimeout``. ``silent``
    drops every answer (a venue that never replies).
    """

    def __init__(
        self,
        protocol: VenueProtocol,
        venue: VenueCore,
        scheduler: abc.SchedulerBase,
        *,
        latency: float = 0.05,
    ) -> None:
        from rxws.testing._venue_core import Reply, SessionCore

        self.protocol = protocol
        self.session = SessionCore(venue, 1)
        self.scheduler = scheduler
        self.latency = latency
        self.silent = False
        self.sent: list[Any] = []
        self._reply_type = Reply

    def __call__(self, frame: Any, key: Hashable, timeout: float) -> Observable[Any]:
        def subscribe(observer: abc.ObserverBase[Any], _scheduler: abc.SchedulerBase | None = None) -> Any:
            self.sent.append(frame)
            actions = self.session.receive(self.protocol.encode(frame), 0.0)
            replies = [self.protocol.decode(a.frame) for a in actions if isinstance(a, self._reply_type)]
            matching = [r for r in replies if self.protocol.login_reply_key(r) == key]
            if self.silent or not matching:
                return Disposable()

            def deliver(_s: abc.SchedulerBase, _st: Any = None) -> None:
                observer.on_next(matching[0])
                observer.on_completed()

            return self.scheduler.schedule_relative(self.latency, deliver)

        def timed_out(_exc: Exception, _source: Observable[Any]) -> Observable[Any]:
            return reactivex.throw(RequestTimeout(key, timeout))

        return reactivex.create(subscribe).pipe(
            ops.timeout(timeout, scheduler=self.scheduler),
            ops.catch(timed_out),
        )
