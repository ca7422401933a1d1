"""The platform abstraction: a :class:`Transport` opens :class:`Link` objects.

This is the seed specification's ``WebSocketClient`` trait ("like an HttpClient"): the reactive
client on top never touches sockets, only links. A link is loop-confined — every method is called
on the client's own thread/scheduler, and its ``inbound`` observable delivers there.

The contract of ``Link.inbound``:

* one ``on_next`` per WebSocket message (``str`` for text frames, ``bytes`` for binary);
* ``on_completed`` when the connection ended with a close frame (``close_code`` and
  ``close_reason`` then say which; ``closed_by_peer`` says who started it);
* ``on_error`` with an :class:`~rxws.exceptions.TransportError` when it ended any other way
  (:class:`~rxws.exceptions.ConnectionLost` for an abrupt drop,
  :class:`~rxws.exceptions.MessageTooBig` for a frame over ``max_size``,
  :class:`~rxws.exceptions.HeartbeatTimeout` for a missed pong, ...).

The contract of writing (``send`` and ``ping``), i.e. back-pressure:

* A link has a write high-water mark (``LinkOptions.write_high_water`` bytes). ``send`` writes the
  frame and returns ``True`` when the link is still below its mark afterwards: the frame was handed
  to the socket (the OS transport accepted it without having to wait), so the caller may report it
  done.
* ``send`` returns ``False`` when this write took the link above its mark. The frame is kept, in
  order, and counts as written only when the link drains: ``writable`` is then ``False`` until the
  link falls back below its low-water mark, at which point it calls ``on_drain`` (once, on the
  client's thread). The caller holds further frames itself meanwhile (the client's bounded
  outbound queue does); a ``send`` while not writable is still kept in order and returns ``False``.
* If the link ends before draining, the frames it kept are not written; the caller, which knows
  which frame got ``False``, fails it (``on_drain`` is then never called).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from reactivex import Observable, abc
from reactivex.abc import SchedulerBase
from reactivex.disposable import Disposable

from rxws._redact import DEFAULT_SECRET_HEADERS, mask_headers, register_secrets
from rxws.exceptions import ConnectFailed, InvalidURL

__all__ = ["Link", "LinkOptions", "Transport", "open_on_loop", "validate_url"]

_L = TypeVar("_L")

Frame = str | bytes


@dataclass(frozen=True, slots=True, repr=False)
class LinkOptions:
    """Per-connection settings a transport honours where it can.

    ``write_high_water``: bytes a link may hold unwritten (in its own and the OS transport's
    buffers beyond what the socket took) before ``send`` reports back-pressure; see :class:`Link`.
    ``secret_headers``: names (case-insensitive) of headers whose values are secrets; they are
    masked in every log record, in this object's ``repr`` and in error messages
    (:mod:`rxws._redact` lists the defaults and where each comes from).
    """

    # Protocol
    headers: Mapping[str, str] = field(default_factory=dict)
    secret_headers: tuple[str, ...] = DEFAULT_SECRET_HEADERS
    subprotocols: tuple[str, ...] = ()
    # Limits
    max_size: int | None = 2**20
    write_high_water: int = 2**16
    # Heartbeats (protocol-level ping); None disables
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    # Timeouts
    open_timeout: float | None = 10.0
    close_timeout: float = 5.0
    # TLS: None = the platform's default verified context for wss://
    ssl: object | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.write_high_water, int) or self.write_high_water < 1:
            raise ValueError(f"write_high_water must be a positive int, got {self.write_high_water!r}")
        register_secrets(self.headers, self.secret_headers)

    def __repr__(self) -> str:
        shown = {name: getattr(self, name) for name in self.__dataclass_fields__}
        shown["headers"] = mask_headers(self.headers, self.secret_headers)
        return "LinkOptions(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


class Link(ABC):
    """One open WebSocket connection, as the client sees it."""

    close_code: int | None = None
    close_reason: str = ""
    closed_by_peer: bool = False
    on_control_sent: Callable[[str], None] | None = None
    """Told (with ``"pong"``) each time the transport answers the peer's ping by itself, so
    venues that count control frames against a message budget can be charged for it."""
    on_drain: Callable[[], None] | None = None
    """Called once each time the link falls back below its low-water mark after a ``send`` or
    ``ping`` returned ``False``: the frame that got ``False`` is now written, and the link is
    ``writable`` again."""

    @property
    def writable(self) -> bool:
        """Whether the link is below its write high-water mark (a ``send`` now does not wait)."""
        return True

    @property
    def response_headers(self) -> Mapping[str, str]:
        """The handshake response's HTTP headers (e.g. ``Date``, which feeds the client's venue
        clock); empty when the transport does not expose them."""
        return {}

    @property
    @abstractmethod
    def inbound(self) -> Observable[Frame]:
        """Inbound messages; completes on a close frame, errors on any other ending."""

    @abstractmethod
    def send(self, frame: Frame) -> bool:
        """Write one message, in order with every earlier ``send``.

        Returns:
            ``True`` when the frame was handed to the socket and the link is still below its
            high-water mark; ``False`` when the link is now above it (the frame is written when
            the link drains, which ``on_drain`` reports).

        Raises:
            NotConnected: the link is closing or closed.
        """

    @abstractmethod
    def ping(self, on_pong: Callable[[], None]) -> bool:
        """Send a protocol-level ping; ``on_pong`` is called (on the client's thread) at its pong.

        Returns:
            like :meth:`send`: ``False`` when the ping's write took the link above its mark.

        Raises:
            NotConnected: the link is closing or closed.
        """

    @abstractmethod
    def close(self, code: int = 1000, reason: str = "") -> Observable[None]:
        """Start the closing handshake; the observable completes once the link is closed.

        Idempotent: a second call returns the same completion.
        """

    @abstractmethod
    def abort(self) -> None:
        """Drop the connection at once, without a closing handshake."""


class Transport(ABC):
    """Opens links. Implementations: native (``websockets``), memory (virtual time)."""

    @abstractmethod
    def open(self, url: str, options: LinkOptions, scheduler: SchedulerBase) -> Observable[Link]:
        """Open a connection to ``url``: a single-value observable of the open link.

        Errors with :class:`~rxws.exceptions.ConnectFailed` (or a subclass) when it cannot.
        Disposing the subscription before it emits cancels the attempt.
        """


def validate_url(url: str) -> str:
    """Check that ``url`` is a ``ws://`` or ``wss://`` URL with a host; return it.

    Raises:
        InvalidURL: with a message saying what is wrong.
    """
    if not isinstance(url, str) or not url:
        raise InvalidURL(f"expected a ws:// or wss:// URL, got {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"invalid URL {url!r}: {exc}") from None
    if parts.scheme not in ("ws", "wss"):
        what = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise InvalidURL(f"invalid URL {url!r}: {what}; expected ws:// or wss://")
    if not parts.hostname:
        raise InvalidURL(f"invalid URL {url!r}: no host")
    if port == 0:
        raise InvalidURL(f"invalid URL {url!r}: port 0")
    return url


def open_on_loop(
    url: str, opening: Callable[[asyncio.AbstractEventLoop], Coroutine[Any, Any, _L]]
) -> Observable[_L]:
    """What a transport's :meth:`Transport.open` returns when its opening is a coroutine.

    On subscription ``opening(loop)`` runs as a task on the running loop; the observable then emits
    the link and completes, or errors with the opening's exception (one that is not an
    :class:`Exception` becomes :class:`~rxws.exceptions.ConnectFailed` naming ``url``). Disposing it
    while the opening is in flight cancels the task.
    """

    def subscribe(observer: abc.ObserverBase[_L], _: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        task = asyncio.get_running_loop().create_task(opening(asyncio.get_running_loop()))

        def done(t: asyncio.Task[_L]) -> None:
            if t.cancelled():
                return
            exc = t.exception()
            if isinstance(exc, Exception):
                observer.on_error(exc)
            elif exc is not None:
                observer.on_error(ConnectFailed(f"cannot connect to {url}: {exc!r}"))
            else:
                observer.on_next(t.result())
                observer.on_completed()

        task.add_done_callback(done)

        def cancel() -> None:
            if not task.done():
                task.cancel()

        return Disposable(cancel)

    return Observable(subscribe)
