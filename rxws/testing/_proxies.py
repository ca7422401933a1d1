"""In-process forward proxies for tests: HTTP ``CONNECT`` and SOCKS5, on 127.0.0.1.

Small, honest implementations of the server side of each protocol, so the transports' proxy
support is tested against the protocol and not against a mock of the client library:

* :class:`HttpConnectProxy` — RFC 9110 section 9.3.6 (``CONNECT``, formerly RFC 7231 section
  4.3.6): reads one request head, answers ``405`` to any other method, ``400`` to a target that is
  not ``host:port``, ``407`` with ``Proxy-Authenticate: Basic`` (RFC 7235, RFC 7617) when the
  required credentials are missing or wrong, ``502`` when the target refuses, else ``200`` and
  relays bytes both ways.
* :class:`Socks5Proxy` — RFC 1928 (method selection, ``CONNECT`` with IPv4, IPv6 or domain name
  addresses, reply codes) with the username/password sub-negotiation of RFC 1929; method
  ``0xFF`` when the client offers no acceptable one, reply ``0x07`` to ``BIND``/``UDP ASSOCIATE``,
  ``0x05`` when the target refuses.

Both tunnel only to loopback targets (any other is refused: ``403`` / reply ``0x02``) and take:

* ``credentials=(user, password)``: required from every client (``None``: none required);
* ``refuse=code``: answer every tunnel request with that HTTP status / SOCKS5 reply code;
* ``hang_up=True``: read the tunnel request, then close the connection without answering (a
  proxy that dies mid-handshake).

``async with`` starts and stops them; ``proxy.url`` includes the required credentials
(:meth:`url_with` builds one with others); :attr:`stats` counts tunnels, bytes, refusals.
``close()`` is idempotent and leaves no task and no socket behind.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import socket
import struct
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import ClassVar, Self
from urllib.parse import quote

__all__ = ["HttpConnectProxy", "Socks5Proxy", "TunnelStats"]

_LOOPBACK_NAMES = ("localhost",)
_CONNECT_TIMEOUT = 10.0
_HEAD_LIMIT = 16 * 1024
_CHUNK = 64 * 1024


@dataclass
class TunnelStats:
    """What a test proxy did (counts since it started)."""

    connections: int = 0
    """Client connections accepted."""
    tunnels: int = 0
    """Tunnels established (a success answer sent)."""
    refusals: int = 0
    """Tunnel requests answered with a refusal (credentials, ``refuse=``, target, bad request)."""
    auth_failures: int = 0
    """Of the refusals, those for missing or wrong credentials."""
    hang_ups: int = 0
    """Connections closed mid-handshake on purpose (``hang_up=True``)."""
    bytes_up: int = 0
    """Bytes relayed client → target."""
    bytes_down: int = 0
    """Bytes relayed target → client."""


class _ForwardProxy:
    """Server life cycle, the relay and the counters; subclasses speak the handshake."""

    scheme: ClassVar[str]

    def __init__(
        self,
        *,
        credentials: tuple[str, str] | None = None,
        refuse: int | None = None,
        hang_up: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("test proxies listen on loopback only")
        self.host = host
        self.port = 0
        self.credentials = credentials
        self.refuse = refuse
        self.hang_up = hang_up
        self.stats = TunnelStats()
        self._server: asyncio.AbstractServer | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closed = False

    @property
    def url(self) -> str:
        """The proxy's URL for a client, with the required credentials (if any)."""
        if self.credentials is None:
            return f"{self.scheme}://{self._authority}"
        return self.url_with(*self.credentials)

    def url_with(self, username: str, password: str) -> str:
        """The proxy's URL with these credentials (for testing wrong ones)."""
        return f"{self.scheme}://{quote(username, safe='')}:{quote(password, safe='')}@{self._authority}"

    @property
    def _authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __repr__(self) -> str:
        auth = "***@" if self.credentials is not None else ""
        return f"{type(self).__name__}({self.scheme}://{auth}{self._authority})"

    # Life cycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen on a free port of ``host``."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._accept, self.host, 0, limit=_HEAD_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and close every connection and tunnel (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5.0)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # One connection -------------------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._closed:
            writer.transport.abort()
            return
        self.stats.connections += 1
        self._handlers.add(task)
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            opened = await self._handshake(reader, writer)
            if opened is not None:
                up_reader, upstream = opened
                self._writers.add(upstream)
                self.stats.tunnels += 1
                await self._relay(reader, writer, up_reader, upstream)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the client went away or sent garbage: the connection just ends
        except asyncio.CancelledError:
            pass  # close(): this handler is a top-level task of ours, nothing awaits it
        finally:
            for w in (writer, upstream):
                if w is not None:
                    self._writers.discard(w)
                    w.transport.abort()
            self._handlers.discard(task)

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        raise NotImplementedError

    def _refused(self, *, auth: bool = False) -> None:
        self.stats.refusals += 1
        if auth:
            self.stats.auth_failures += 1

    def _check_credentials(self, username: str, password: str) -> bool:
        return self.credentials is None or (username, password) == self.credentials

    @staticmethod
    def _loopback(host: str) -> bool:
        if host.lower() in _LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @staticmethod
    async def _connect(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(asyncio.open_connection(host, port, limit=_CHUNK), _CONNECT_TIMEOUT)

    async def _relay(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        """Copy bytes both ways until both sides have ended (an end of stream is passed on as a
        half-close; a broken side aborts the other)."""
        up = asyncio.ensure_future(self._pump(reader, up_writer, writer, "bytes_up"))
        down = asyncio.ensure_future(self._pump(up_reader, writer, up_writer, "bytes_down"))
        try:
            await asyncio.gather(up, down)
        finally:
            for pump in (up, down):
                pump.cancel()
            await asyncio.wait({up, down})

    async def _pump(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        other: asyncio.StreamWriter,
        counter: str,
    ) -> None:
        try:
            while chunk := await source.read(_CHUNK):
                setattr(self.stats, counter, getattr(self.stats, counter) + len(chunk))
                sink.write(chunk)
                await sink.drain()
            if sink.can_write_eof() and not sink.is_closing():
                sink.write_eof()  # half-close: the other direction may still carry data
        except OSError:
            sink.transport.abort()
            other.transport.abort()


class HttpConnectProxy(_ForwardProxy):
    """An HTTP proxy that opens tunnels with ``CONNECT`` (RFC 9110 section 9.3.6).

    Args:
        credentials: ``(user, password)`` required in ``Proxy-Authorization: Basic``; ``None``:
            none required.
        refuse: answer every ``CONNECT`` with this HTTP status (e.g. ``403``).
        hang_up: read the request, then close without answering.
        host: the loopback address to listen on.
    """

    scheme = "http"

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            self._refused()
            await self._answer(writer, 431)
            return None
        lines = head.decode("latin-1").split("\r\n")
        request = lines[0].split(" ")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if self.hang_up:
            self.stats.hang_ups += 1
            return None
        if len(request) != 3 or not request[2].startswith("HTTP/1."):
            self._refused()
            await self._answer(writer, 400)
            return None
        method, target, _ = request
        if method != "CONNECT":
            self._refused()
            await self._answer(writer, 405, "Allow: CONNECT\r\n")
            return None
        if not self._authorized(headers.get("proxy-authorization")):
            self._refused(auth=True)
            await self._answer(writer, 407, 'Proxy-Authenticate: Basic realm="rxws test proxy"\r\n')
            return None
        if self.refuse is not None:
            self._refused()
            await self._answer(writer, self.refuse)
            return None
        host, sep, port_text = target.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            self._refused()
            await self._answer(writer, 400)
            return None
        if not self._loopback(host):
            self._refused()
            await self._answer(writer, 403)
            return None
        try:
            opened = await self._connect(host, int(port_text))
        except (OSError, TimeoutError):
            self._refused()
            await self._answer(writer, 502)
            return None
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        return opened

    def _authorized(self, value: str | None) -> bool:
        if self.credentials is None:
            return True
        if value is None:
            return False
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        username, sep, password = decoded.partition(":")
        return bool(sep) and self._check_credentials(username, password)

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, status: int, extra: str = "") -> None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Refused"
        head = f"HTTP/1.1 {status} {phrase}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
        writer.write(head.encode("latin-1"))  # one write: some clients read the answer in one go
        await writer.drain()


# RFC 1928 / RFC 1929 constants
_VER, _AUTH_VER = 0x05, 0x01
_NO_AUTH, _USER_PASS, _NO_ACCEPTABLE = 0x00, 0x02, 0xFF
_CMD_CONNECT = 0x01
_ATYP_IPV4, _ATYP_DOMAIN, _ATYP_IPV6 = 0x01, 0x03, 0x04
_REP_SUCCEEDED, _REP_NOT_ALLOWED = 0x00, 0x02
_REP_HOST_UNREACHABLE, _REP_REFUSED = 0x04, 0x05
_REP_COMMAND, _REP_ADDRESS_TYPE = 0x07, 0x08


class Socks5Proxy(_ForwardProxy):
    """A SOCKS5 proxy (RFC 1928) with username/password authentication (RFC 1929).

    Args:
        credentials: ``(user, password)`` required through method ``0x02``; ``None``: method
            ``0x00`` (no authentication) is accepted.
        refuse: answer every ``CONNECT`` with this reply code (``0x02`` not allowed by ruleset,
            ``0x05`` connection refused, ...).
        hang_up: read the ``CONNECT`` request, then close without answering.
        host: the loopback address to listen on.
    """

    scheme = "socks5"

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        version, count = await reader.readexactly(2)
        if version != _VER:
            return None  # not SOCKS5: RFC 1928 gives no reply to send
        methods = await reader.readexactly(count)
        if not await self._authenticate(methods, reader, writer):
            return None
        version, command, _reserved, address_type = await reader.readexactly(4)
        host = await self._read_address(address_type, reader)
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if self.hang_up:
            self.stats.hang_ups += 1
            return None
        refusal = self._refusal(host, command)
        if refusal is None:
            try:
                up_reader, up_writer = await self._connect(host or "", port)
            except ConnectionRefusedError:
                refusal = _REP_REFUSED
            except (OSError, TimeoutError):
                refusal = _REP_HOST_UNREACHABLE
        if refusal is not None:
            await self._reply(writer, refusal)
            return None
        bound_host, bound_port = up_writer.get_extra_info("sockname")[:2]
        await self._reply(writer, _REP_SUCCEEDED, bound_host, bound_port)
        return up_reader, up_writer

    def _refusal(self, host: str | None, command: int) -> int | None:
        """The reply code refusing this request, or ``None`` to try the target."""
        if host is None:
            return _REP_ADDRESS_TYPE
        if command != _CMD_CONNECT:
            return _REP_COMMAND
        if self.refuse is not None:
            return self.refuse
        if not self._loopback(host):
            return _REP_NOT_ALLOWED
        return None

    async def _authenticate(
        self, methods: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Method selection (RFC 1928 section 3) and, if chosen, RFC 1929's sub-negotiation."""
        if self.credentials is None and _NO_AUTH in methods:
            writer.write(bytes((_VER, _NO_AUTH)))
            return True
        if _USER_PASS not in methods:
            self._refused(auth=True)
            writer.write(bytes((_VER, _NO_ACCEPTABLE)))
            await writer.drain()
            return False
        writer.write(bytes((_VER, _USER_PASS)))
        version, length = await reader.readexactly(2)
        username = (await reader.readexactly(length)).decode("utf-8", "replace")
        (length,) = await reader.readexactly(1)
        password = (await reader.readexactly(length)).decode("utf-8", "replace")
        if version != _AUTH_VER or not self._check_credentials(username, password):
            self._refused(auth=True)
            writer.write(bytes((_AUTH_VER, 0x01)))  # any non-zero status is a failure
            await writer.drain()
            return False
        writer.write(bytes((_AUTH_VER, 0x00)))
        return True

    @staticmethod
    async def _read_address(address_type: int, reader: asyncio.StreamReader) -> str | None:
        if address_type == _ATYP_IPV4:
            return socket.inet_ntop(socket.AF_INET, await reader.readexactly(4))
        if address_type == _ATYP_IPV6:
            return socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
        if address_type == _ATYP_DOMAIN:
            (length,) = await reader.readexactly(1)
            return (await reader.readexactly(length)).decode("idna")
        return None

    async def _reply(
        self, writer: asyncio.StreamWriter, code: int, host: str = "0.0.0.0", port: int = 0
    ) -> None:
        """Send the reply (RFC 1928 section 6); anything but success counts as a refusal."""
        if code != _REP_SUCCEEDED:
            self._refused()
        address = ipaddress.ip_address(host)
        kind = _ATYP_IPV4 if address.version == 4 else _ATYP_IPV6
        writer.write(bytes((_VER, code, 0x00, kind)) + address.packed + struct.pack("!H", port))
        await writer.drain()
