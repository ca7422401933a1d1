"""The ``websockets`` connection the native transport opens, and its client data framing.

:class:`_DirectConnection` hands each complete data message to its sink synchronously (no
``recv()`` queue, no task per message); :func:`_client_frame` frames one data message as
``websockets`` would, for the link's send fast path (:mod:`rxws.transport.websockets`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from os import urandom as _urandom
from struct import pack as _pack
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.frames import apply_mask as _apply_mask  # type: ignore[attr-defined]  # its C speedup

from rxws.transport.base import Frame

__all__: list[str] = []

log = logging.getLogger("rxws.transport")


_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT


class _DirectConnection(ClientConnection):
    """A client connection that hands each complete data message to ``sink`` synchronously.

    Messages that arrive before a sink is set wait in ``early`` and are handed over when it is.
    Text that is not valid UTF-8 is handed over as bytes, so the protocol's decoder reports it as
    a decode failure and the stream goes on (instead of the connection failing with 1007).
    """

    sink: Callable[[Frame], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.early: list[Frame] = []
        self._frag_opcode: Opcode | None = None
        self._frag: list[bytes] = []

    on_control_sent: Callable[[str], None] | None = None

    def process_event(self, event: Any) -> None:
        if type(event) is not WsFrame or event.opcode not in (_TEXT, _BINARY, _CONT):
            super().process_event(event)
            if type(event) is WsFrame and event.opcode is Opcode.PING and self.on_control_sent is not None:
                self.on_control_sent("pong")  # websockets answered it already
            return
        opcode = event.opcode
        if opcode is _CONT:
            self._frag.append(bytes(event.data))
            if not event.fin:
                return
            opcode, self._frag_opcode = self._frag_opcode or _BINARY, None
            data: bytes | memoryview | bytearray = b"".join(self._frag)
            self._frag = []
        elif not event.fin:
            self._frag_opcode = opcode
            self._frag = [bytes(event.data)]
            return
        else:
            data = event.data
        message: Frame
        if opcode is _TEXT:
            try:
                message = str(data, "utf-8")
            except UnicodeDecodeError:
                message = bytes(data)
        else:
            message = bytes(data)
        sink = self.sink
        if sink is None:
            self.early.append(message)
            return
        try:
            sink(message)
        except Exception as exc:  # a bug above must not stop websockets from processing the rest
            _observer_failed(exc)


def _client_frame(frame: Frame) -> bytes:
    """One unfragmented, masked client data frame of ``frame`` (text for ``str``), byte for byte
    what ``websockets``' ``Frame.serialize(mask=True)`` writes without extensions (RFC 6455
    section 5.2: FIN and the opcode, the masked length, a random mask key, the masked payload)."""
    if isinstance(frame, str):
        data, head = frame.encode(), 0x81
    else:
        data, head = bytes(frame), 0x82
    length = len(data)
    mask = _urandom(4)  # what websockets' secrets.token_bytes(4) reads
    if length < 126:
        header = _pack("!BB", head, 0x80 | length)
    elif length < 65536:
        header = _pack("!BBH", head, 0xFE, length)
    else:
        header = _pack("!BBQ", head, 0xFF, length)
    return header + mask + _apply_mask(data, mask)


def _observer_failed(exc: BaseException) -> None:
    """An observer of a link's inbound frames raised: the others got the frame; say so."""
    log.error("an observer of inbound frames raised; frame skipped for it", exc_info=exc)
