"""The venue dialect interface: how one venue's messages are encoded and read.

A :class:`VenueProtocol` is sans-I/O. The client calls it to turn commands into messages
(``subscribe_message``, ``request_message``) and to read every decoded inbound message
(``classify``, ``reply_error``, ``sequence``). Dialects live beside this module, one per venue.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from pydantic import SecretStr

from rxws.exceptions import DecodeError, EncodeError, UsageError, VenueError

if TYPE_CHECKING:
    from rxws.auth import Credentials

__all__ = [
    "LoginResult",
    "LoginStep",
    "MessageKind",
    "Seq",
    "VenueProtocol",
    "counter_field",
    "decode_detail",
    "fast_decoder",
    "fast_encoder",
    "json_dumps",
    "json_loads",
    "make_seq",
]

try:  # orjson is the "fast" extra; the stdlib json is the default.
    import orjson as _orjson

    def json_loads(data: str | bytes) -> Any:
        """Decode JSON with orjson (installed through the ``fast`` extra)."""
        return _orjson.loads(data)

    def json_dumps(obj: Any) -> str:
        """Encode JSON with orjson, as text."""
        return _orjson.dumps(obj).decode()

except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None  # type: ignore[assignment]
    _decoder = json.JSONDecoder()
    _encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

    def json_loads(data: str | bytes) -> Any:
        """Decode JSON with the standard library."""
        return json.loads(data)

    def json_dumps(obj: Any) -> str:
        """Encode JSON with the standard library, compactly."""
        return _encoder.encode(obj)


class MessageKind(IntEnum):
    """What an inbound message is, as far as routing is concerned."""

    DATA = 0
    """Market data for a topic; the key is the topic."""
    REPLY = 1
    """A reply to a request (subscribe acks included); the key is the request id."""
    ACK = 2
    """A subscription acknowledgement keyed by topic, for venues whose acks carry no id."""
    CONTROL = 3
    """Heartbeats, pongs, welcome or info messages; the key is a short label."""
    ERROR = 4
    """An error not tied to a request id; the key is the error code (or None)."""
    UNKNOWN = 5
    """Anything else; the key is None."""
    UNACK = 6
    """An unsubscribe acknowledgement keyed by topic, for venues whose acks carry no id."""
    NOTICE = 7
    """A venue notice that this connection will end or degrade soon; the key is a short label
    (``"shutdown"``, ``"maintenance"``) that the dialect documents. The client reports it as a
    :class:`~rxws.events.VenueNotice` with that ``notice`` label; the host decides what to do."""


class Seq(NamedTuple):
    """Sequence numbers read from a data message.

    ``first``..``last`` is the range of updates the message carries (equal for one update);
    ``prev`` is the venue's "previous id" when it states one (OKX ``prevSeqId``, Deribit
    ``prev_change_id``, Binance USD-M ``pu``), which is checked instead of
    ``first == last_seen + 1``; ``reset`` marks a message that starts a new chain (a snapshot:
    OKX ``action == "snapshot"``, Bybit ``type == "snapshot"`` or ``u == 1``, Deribit
    ``type == "snapshot"``), in sequence whatever the last number seen.
    """

    first: int
    last: int
    prev: int | None = None
    reset: bool = False


_tuple_new = tuple.__new__


def make_seq(first: int, last: int, prev: int | None = None, reset: bool = False) -> Seq:
    """A :class:`Seq`, built without the NamedTuple's Python-level ``__new__`` (hot path)."""
    return _tuple_new(Seq, (first, last, prev, reset))


def counter_field(protocol: VenueProtocol) -> str | None:
    """``protocol.seq_field`` when it still describes ``protocol.sequence``: None when a subclass
    (or the instance) replaced the :meth:`~VenueProtocol.sequence` of the class that declared the
    field, since the field then says nothing about the numbers that method reads."""
    field = protocol.seq_field
    if field is None or "sequence" in vars(protocol):
        return None
    cls = type(protocol)
    declared = next(c for c in cls.__mro__ if "seq_field" in vars(c))
    return field if cls.sequence is getattr(declared, "sequence", None) else None


def fast_decoder(protocol: VenueProtocol) -> Callable[[str | bytes], Any] | None:
    """``orjson.loads`` itself when ``protocol`` decodes with the default :meth:`VenueProtocol.decode`
    and orjson is installed, else None. The client's inbound path then calls it directly (two
    Python calls less per frame) and turns its ``ValueError`` (orjson's ``JSONDecodeError``, for
    bad JSON, bad UTF-8 and too deep nesting alike) into the same ``DecodeError`` detail
    :meth:`VenueProtocol.decode` gives."""
    if _orjson is None or "decode" in vars(protocol) or type(protocol).decode is not VenueProtocol.decode:
        return None
    loads: Callable[[str | bytes], Any] = _orjson.loads
    return loads


def fast_encoder(protocol: VenueProtocol) -> Callable[[Any], bytes] | None:
    """``orjson.dumps`` itself when ``protocol`` encodes with the default
    :meth:`VenueProtocol.encode` and orjson is installed, else None. A hot path (a request) may
    call it on a ``dict`` message and decode its bytes as the text frame ``encode`` would return;
    when it raises, ``protocol.encode`` gives the ``EncodeError`` with its detail."""
    if _orjson is None or "encode" in vars(protocol) or type(protocol).encode is not VenueProtocol.encode:
        return None
    dumps: Callable[[Any], bytes] = _orjson.dumps
    return dumps


def decode_detail(exc: BaseException) -> str:
    """The ``DecodeError`` text for a decoder's exception (shared by every decoding path)."""
    return f"{type(exc).__name__}: {exc}"


class LoginStep(NamedTuple):
    """One login frame and the key its reply is found by (:meth:`VenueProtocol.login_reply_key`)."""

    frame: Any
    key: Hashable


@dataclass(frozen=True, slots=True)
class LoginResult:
    """What a login (or token refresh) reply says.

    Attributes:
        ok: the venue accepted the login.
        code: the venue's error code when it refused (None when it gave none).
        detail: the venue's text when it refused.
        expires_in: seconds the authorization lasts, when the venue says (Deribit ``expires_in``).
        refresh_token: the token that renews the authorization (Deribit), kept secret.
    """

    ok: bool
    code: int | str | None = None
    detail: str = ""
    expires_in: float | None = None
    refresh_token: SecretStr | None = None

    def __repr__(self) -> str:
        token = ", refresh_token=***" if self.refresh_token is not None else ""
        return f"LoginResult(ok={self.ok}, code={self.code!r}, detail={self.detail!r}{token})"


_REMEMBERED = 4096


def _millis(value: Any) -> float | None:
    """A venue's millisecond time stamp (an int, or a decimal string as OKX sends) in seconds."""
    if type(value) is int:
        return value / 1000.0
    if type(value) is str and value.isdecimal() and value.isascii():
        return int(value) / 1000.0
    return None


def _remember(cache: dict[str, bool], key: str, value: bool) -> bool:
    """Store ``value`` under ``key`` while ``cache`` holds fewer than 4096 keys; return ``value``.

    Dialects cache per-topic facts (e.g. "this channel has an update chain") so that the
    per-message path is one dict lookup; the cap bounds memory whatever topics arrive.
    """
    if len(cache) < _REMEMBERED:
        cache[key] = value
    return value


def _ids(items: Any, field: str) -> Hashable | None:
    """The ``field`` of each object in the list ``items``: the one id of a one-item list, the tuple
    of them otherwise; None when ``items`` is not a non-empty list of objects with string or
    integer ids. Dialects build :meth:`VenueProtocol.dedupe_key` of trade lists with it."""
    if type(items) is not list or not items:
        return None
    if len(items) == 1:  # the common case
        item = items[0]
        value = item.get(field) if type(item) is dict else None
        return value if type(value) is str or type(value) is int else None
    ids = []
    for item in items:
        value = item.get(field) if type(item) is dict else None
        if type(value) is not str and type(value) is not int:
            return None
        ids.append(value)
    return tuple(ids)


class VenueProtocol:
    """Base of every venue dialect.

    Subclasses override what their venue does differently. The defaults decode and encode JSON
    text. ``classify`` is on the hot path: keep it to a few dict lookups.
    """

    name: ClassVar[str] = "base"

    # Limits the venue puts on subscribe messages and connections (None = no limit).
    max_topics_per_message: int | None = None
    max_chars_per_message: int | None = None
    max_topics_per_connection: int | None = None

    # Application-level heartbeat: a message to send every ``heartbeat_interval`` seconds.
    heartbeat_interval: float | None = None

    seq_field: ClassVar[str | None] = None
    """The field of a data message (a JSON object) that numbers it by consecutive integers, when
    :meth:`sequence` is exactly ``Seq(n, n)`` for an ``int`` ``n`` in that field (no ``prev``, no
    reset) and None otherwise (GenericJson: ``"seq"``). The client then checks the common case,
    the next number, without building a :class:`Seq` (see :func:`counter_field`). None: the
    client always asks :meth:`sequence`."""

    # Coding ------------------------------------------------------------------------------
    def decode(self, frame: str | bytes) -> Any:
        """Turn one inbound frame into a message.

        Raises:
            DecodeError: the frame is not valid for this dialect.
        """
        try:
            return json_loads(frame)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise DecodeError(decode_detail(exc)) from exc

    def encode(self, message: Any) -> str | bytes:
        """Turn one outbound message into a frame.

        Raises:
            EncodeError: the message cannot be encoded as JSON (an unsupported type, a circular
                reference, an integer out of range); the error names the cause, under orjson
                and the standard library alike.
        """
        if isinstance(message, str | bytes):
            return message
        try:
            return json_dumps(message)
        except (TypeError, ValueError, RecursionError) as exc:  # orjson's JSONEncodeError is a TypeError
            raise EncodeError(f"cannot encode the message as JSON: {exc}") from exc

    # Outbound messages -------------------------------------------------------------------
    def subscribe_message(self, topics: Sequence[str], request_id: Hashable) -> Any:
        """The message that subscribes ``topics``, acknowledged by a reply to ``request_id``."""
        raise NotImplementedError(f"{self.name} cannot subscribe")

    def unsubscribe_message(self, topics: Sequence[str], request_id: Hashable) -> Any:
        """The message that unsubscribes ``topics``, acknowledged by a reply to ``request_id``."""
        raise NotImplementedError(f"{self.name} cannot unsubscribe")

    def request_message(self, method: str, params: Any, request_id: Hashable) -> Any:
        """The message for a request whose reply carries ``request_id``."""
        raise NotImplementedError(f"{self.name} has no requests")

    def list_subscriptions_message(self, request_id: Hashable) -> Any | None:
        """The request asking the venue which topics this connection has, answered by a reply to
        ``request_id`` (read with :meth:`listed_topics`); None when the venue cannot say."""
        return None

    def heartbeat_message(self) -> Any | None:
        """The application-level ping to send, or None when the venue needs none."""
        return None

    def auto_reply(self, message: Any) -> Any | None:
        """A message the client must send back at once (e.g. a pong to the venue's ping)."""
        return None

    # Reading inbound messages --------------------------------------------------------------
    def classify(self, message: Any) -> tuple[MessageKind, Any]:
        """Say what ``message`` is and return its routing key (topic, request id, label)."""
        return MessageKind.UNKNOWN, None

    def reply_error(self, message: Any) -> VenueError | None:
        """The venue error a reply carries, or None when it is a success."""
        return None

    def reply_result(self, message: Any) -> Any:
        """The result of a successful reply."""
        return message

    def is_partial(self, message: Any) -> bool:
        """For a reply: True when more frames answering the same request will follow (a
        multi-frame reply), False for the final (or only) one. Default False: every built-in
        venue answers a request with exactly one frame (issue 16)."""
        return False

    def listed_topics(self, result: Any) -> list[str]:
        """The topics in the result of a :meth:`list_subscriptions_message` reply.

        Raises:
            DecodeError: the result is not a list of topics.
        """
        if not isinstance(result, list) or not all(isinstance(t, str) for t in result):
            raise DecodeError(f"expected a list of topics, got {str(result)[:80]}")
        return list(result)

    def ack_topics(self, message: Any) -> tuple[str, ...]:
        """For ``MessageKind.ACK`` / ``UNACK`` messages: the topics it acknowledges."""
        return ()

    def sequence(self, message: Any) -> Seq | None:
        """Sequence numbers of a data message, or None when its channel has no documented update
        chain (then only disconnect windows are reported for it)."""
        return None

    def dedupe_key(self, message: Any) -> Hashable | None:
        """A key naming a data message without sequence numbers, equal on every connection that
        receives it (a documented trade id), for merging redundant connections; None when the
        channel has none (then only the primary connection's copy is delivered)."""
        return None

    def notice_detail(self, message: Any) -> tuple[int | str | None, str]:
        """For ``MessageKind.NOTICE`` messages: the venue's code (or None) and a short detail."""
        return None, str(message)[:200]

    def rate_limit_signal(self, message: Any) -> str | None:
        """A label when ``message`` says we sent too much (e.g. Binance -1003), else None."""
        return None

    # Issue 15 (metrics): the venue's own time stamp of a message ----------------------------
    def event_time(self, message: Any) -> float | None:
        """When the venue says it produced ``message``, in seconds since the Unix epoch, or None.

        Read from the field the venue documents (Binance ``E``, OKX ``ts`` in ``data``, Bybit
        ``ts``, Deribit ``timestamp``); None when the dialect reads none or the message has none.
        ``rxws.metrics`` subtracts it from the wall clock for the venue-to-client latency.
        """
        return None

    def topic_chars(self, topic: str) -> int:
        """Characters ``topic`` takes in a subscribe message, for ``max_chars_per_message``."""
        return len(topic) + 3

    def batches(self, topics: Sequence[str]) -> list[list[str]]:
        """Split ``topics`` into as few subscribe messages as the venue's limits allow."""
        out: list[list[str]] = []
        batch: list[str] = []
        chars = 0
        per_msg = self.max_topics_per_message
        per_chars = self.max_chars_per_message
        for topic in topics:
            cost = self.topic_chars(topic)
            if batch and (
                (per_msg is not None and len(batch) >= per_msg)
                or (per_chars is not None and chars + cost > per_chars)
            ):
                out.append(batch)
                batch, chars = [], 0
            batch.append(topic)
            chars += cost
        if batch:
            out.append(batch)
        return out

    # Authentication (issue 13) --------------------------------------------------------------
    auth_window: float | None = None
    """Seconds by which the login's timestamp may differ from the venue's clock before the venue
    refuses it (None: the venue documents no window). A ``ClockSkew`` event is emitted when the
    estimated offset nears it."""

    def login_frames(self, credentials: Credentials, now_ms: int, request_id: Hashable) -> list[LoginStep]:
        """The frames that log this connection in, in order, each with the key of its reply.

        Args:
            credentials: the API key and secret to sign with.
            now_ms: the venue's time in Unix milliseconds (the client's estimate), to sign with.
            request_id: an id for dialects whose login is a request with an id.

        Raises:
            UsageError: the dialect has no login, or the credentials lack what it needs.
        """
        raise UsageError(f"the {self.name} dialect has no login")

    def refresh_frames(self, refresh_token: str, request_id: Hashable) -> list[LoginStep]:
        """The frames that renew the authorization with ``refresh_token`` (none by default)."""
        return []

    def login_reply_key(self, message: Any) -> Hashable | None:
        """The key a login reply is correlated by (the :class:`LoginStep` key), or None when
        ``message`` is no login reply. By default a ``REPLY``'s request id."""
        kind, key = self.classify(message)
        return key if kind is MessageKind.REPLY else None

    def login_result(self, message: Any) -> LoginResult:
        """Whether a login reply accepts the login, and the venue's code and text when not."""
        error = self.reply_error(message)
        if error is None:
            return LoginResult(True)
        return LoginResult(False, error.code, error.message)

    def is_private(self, topic: str) -> bool:
        """Whether ``topic`` is a private channel, which needs a login first (False by default)."""
        return False

    def server_time_ms(self, message: Any) -> float | None:
        """The venue's clock (Unix milliseconds) a message states, when it states one."""
        return None

    # Connection age (issue 12) ----------------------------------------------------------------
    max_connection_age: float | None = None
    """Seconds after which the venue cuts every connection (Binance: 24 h), or None. A client
    given ``max_connection_age=`` rotates before that (make before break)."""
