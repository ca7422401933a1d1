"""Deribit: JSON-RPC 2.0 over WebSocket (https://docs.deribit.com, API v2).

* Subscribe: ``public/subscribe`` (``private/subscribe`` with ``Deribit(private=True)``) with
  ``{"channels": [...]}``; the reply's ``result`` is the list of subscribed channels.
* Data: ``{"jsonrpc": "2.0", "method": "subscription", "params": {"channel": c, "data": d}}`` is
  ``DATA`` keyed by the channel, e.g. ``book.BTC-PERPETUAL.100ms``.
* Sequence (gap detection follows each channel's documented rule; Deribit "Subscription
  Channels" pages ``book.{instrument_name}.{interval}`` and
  ``book.{instrument_name}.{group}.{depth}.{interval}``, https://docs.deribit.com, read
  2026-11-30; a channel without a chain gets none, only disconnect windows):

  ================================================  =================================  ===================
  channel                                           documented rule                    ``sequence``
  ================================================  =================================  ===================
  ``book.{instrument}.{interval}``, change          ``prev_change_id`` == previous     ``Seq(change_id,
                                                    ``change_id``                      change_id,
                                                                                       prev_change_id)``
  ``book.{instrument}.{interval}``, snapshot        the first notification (no         ``Seq(change_id,
                                                    ``prev_change_id``): starts a      change_id,
                                                    chain                              reset=True)``
  ``book.{instrument}.{group}.{depth}.{interval}``  none: a whole book each interval,  None
                                                    no ``prev_change_id``
  trades, ticker, index, others                     none                               None
  ================================================  =================================  ===================

* Notices: Deribit documents no unsolicited message announcing that a connection will close.
  Platform maintenance is announced on the ``platform_state`` channel ("monitor whether the
  Deribit platform is operational and to detect maintenance periods", data such as
  ``{"price_index": "sol_usdc", "locked": true}``) and on ``announcements``; both are subscribed,
  so they stay ``DATA`` for their watchers (a ``NOTICE`` is never routed to a watcher; read
  2026-11-30). This dialect produces no ``NOTICE``.
* Heartbeats: after ``client.request("public/set_heartbeat", {"interval": 30})`` the venue sends
  ``{"method": "heartbeat", "params": {"type": "heartbeat" | "test_request"}}`` (``CONTROL``).
  A ``test_request`` must be answered at once with ``public/test`` or the venue closes the
  connection: :meth:`Deribit.auto_reply` returns that request, with the reserved id
  :data:`TEST_REQUEST_ID` so that its reply is read as ``CONTROL`` (``"test"``), never as a reply
  to one of the host's requests.
* Dedupe keys (for redundant connections, :meth:`Deribit.dedupe_key`): the ``trade_id``
  ("Unique (per currency) trade identifier") of each trade in a ``trades.*`` or ``user.trades.*``
  notification, whose ``data`` is a list of trades ("Subscription Channels",
  ``trades.{instrument_name}.{interval}``, read 2026-11-30): the id of a one-trade
  notification, the tuple of ids otherwise.
* Rate limit: error 10028 ``too_many_requests`` gives the signal ``"deribit_10028"``; the venue
  then terminates the session.
"""

from __future__ import annotations

import secrets
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import SecretStr

from rxws.auth import deribit_signature
from rxws.protocols.base import LoginResult, LoginStep, MessageKind, Seq, _ids, _millis, _remember, make_seq
from rxws.protocols.jsonrpc import JsonRpc, _error_code

if TYPE_CHECKING:
    from rxws.auth import Credentials

__all__ = ["TEST_REQUEST_ID", "Deribit"]

TEST_REQUEST_ID = 9_007_199_254_740_991
"""Request id of the automatic ``public/test`` answer to a heartbeat ``test_request`` (2**53 - 1)."""

_RATE_LIMIT_CODES = frozenset({10028})
_TRADE_CHANNELS = ("trades.", "user.trades.")
_DATA = MessageKind.DATA
_REPLY = MessageKind.REPLY
_CONTROL = MessageKind.CONTROL


class Deribit(JsonRpc):
    """The Deribit API v2 dialect (JSON-RPC 2.0).

    Args:
        private: subscribe with ``private/subscribe`` (needed for ``user.*`` channels after
            authentication) instead of ``public/subscribe``.
    """

    name: ClassVar[str] = "deribit"

    def __init__(self, *, private: bool = False) -> None:
        prefix = "private" if private else "public"
        super().__init__(
            subscribe_method=f"{prefix}/subscribe",
            unsubscribe_method=f"{prefix}/unsubscribe",
            channels_param="channels",
            notification_method="subscription",
        )
        self._chained: dict[str, bool] = {}  # channel -> is book.{instrument}.{interval}

    def classify(self, message: Any) -> tuple[MessageKind, Any]:
        """As :meth:`JsonRpc.classify`, with the reply to the automatic ``public/test`` as CONTROL."""
        kind, key = JsonRpc.classify(self, message)
        if kind is _DATA:
            return kind, key
        if kind is _REPLY and key == TEST_REQUEST_ID:
            return _CONTROL, "test"
        if kind is _CONTROL and key == "heartbeat":
            params = message.get("params")
            if type(params) is dict and params.get("type") == "test_request":
                return _CONTROL, "test_request"
        return kind, key

    def auto_reply(self, message: Any) -> Any | None:
        """The ``public/test`` request answering a heartbeat ``test_request``, else None."""
        if type(message) is not dict or message.get("method") != "heartbeat":
            return None
        params = message.get("params")
        if type(params) is dict and params.get("type") == "test_request":
            return self.request_message("public/test", {}, TEST_REQUEST_ID)
        return None

    def sequence(self, message: Any) -> Seq | None:
        """``change_id`` / ``prev_change_id`` of a ``book.{instrument}.{interval}`` notification
        (a snapshot starts a new chain); None for grouped books and other channels."""
        found = _notification(message)
        if found is None:
            return None
        channel, params = found
        chained = self._chained.get(channel)
        if chained is None:
            chained = _remember(
                self._chained, channel, channel.startswith("book.") and channel.count(".") == 2
            )
        if not chained:
            return None
        data = params.get("data")
        if type(data) is not dict:
            return None
        change = data.get("change_id")
        if type(change) is not int:
            return None
        prev = data.get("prev_change_id")
        if type(prev) is int:
            return make_seq(change, change, prev)
        if data.get("type") == "snapshot":
            return make_seq(change, change, None, True)
        return None

    # Issue 15 (metrics) ---------------------------------------------------------------------
    def event_time(self, message: Any) -> float | None:
        """The notification's ``timestamp`` ("milliseconds since the UNIX epoch" on the book,
        ticker and trades channels, Subscription Channels, read 2026-11-30; the last trade's
        when ``data`` is a list), in seconds; None for replies and heartbeats."""
        if type(message) is not dict or message.get("method") != "subscription":
            return None
        params = message.get("params")
        data = params.get("data") if type(params) is dict else None
        if type(data) is list and data:
            data = data[-1]
        return _millis(data.get("timestamp")) if type(data) is dict else None

    def rate_limit_signal(self, message: Any) -> str | None:
        """``"deribit_10028"`` for a ``too_many_requests`` error, else None."""
        if type(message) is not dict:
            return None
        code = _error_code(message.get("error"))
        if code in _RATE_LIMIT_CODES:
            return f"deribit_{code}"
        return None

    # Authentication (issue 13) --------------------------------------------------------------
    def login_frames(self, credentials: Credentials, now_ms: int, request_id: Hashable) -> list[LoginStep]:
        """``public/auth`` with ``grant_type: client_signature`` (module docstring)."""
        nonce = secrets.token_hex(8)
        signature = deribit_signature(credentials.secret.get_secret_value(), now_ms, nonce)
        params = {
            "grant_type": "client_signature",
            "client_id": credentials.api_key.get_secret_value(),
            "timestamp": now_ms,
            "signature": signature,
            "nonce": nonce,
            "data": "",
        }
        return [LoginStep(self.request_message("public/auth", params, request_id), request_id)]

    def refresh_frames(self, refresh_token: str, request_id: Hashable) -> list[LoginStep]:
        """``public/auth`` with ``grant_type: refresh_token``."""
        params = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return [LoginStep(self.request_message("public/auth", params, request_id), request_id)]

    def login_result(self, message: Any) -> LoginResult:
        """Accepted with a ``result`` (its ``expires_in`` and ``refresh_token`` kept); else the
        JSON-RPC error's code and message."""
        error = self.reply_error(message)
        if error is not None:
            return LoginResult(False, error.code, error.message)
        result = self.reply_result(message)
        if type(result) is not dict:
            return LoginResult(False, None, "public/auth reply without a result")
        expires = result.get("expires_in")
        token = result.get("refresh_token")
        return LoginResult(
            True,
            expires_in=float(expires) if type(expires) is int or type(expires) is float else None,
            refresh_token=SecretStr(token) if type(token) is str else None,
        )

    def is_private(self, topic: str) -> bool:
        """Channels starting ``user.`` (orders, trades, portfolio, changes)."""
        return topic.startswith("user.")

    def server_time_ms(self, message: Any) -> float | None:
        """A reply's ``usOut`` (microseconds) in milliseconds."""
        us_out = message.get("usOut") if type(message) is dict else None
        return us_out / 1000.0 if type(us_out) is int else None

    # Redundant connections (issue 12) ------------------------------------------------------
    def dedupe_key(self, message: Any) -> Hashable | None:
        """The ``trade_id`` of a ``trades.*`` / ``user.trades.*`` notification (the tuple of them
        when it carries several); None for every other channel (module docstring)."""
        found = _notification(message)
        if found is None or not found[0].startswith(_TRADE_CHANNELS):
            return None
        return _ids(found[1].get("data"), "trade_id")


def _notification(message: Any) -> tuple[str, dict[str, Any]] | None:
    """A subscription notification's channel and ``params``; None for any other message."""
    if type(message) is not dict:
        return None
    params = message.get("params")
    if type(params) is not dict:
        return None
    channel = params.get("channel")
    return (channel, params) if type(channel) is str else None
