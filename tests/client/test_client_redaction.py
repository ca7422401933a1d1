"""Secret headers (API keys) never reach a log record, a repr, an event or an exception message.

Over a real loopback handshake at DEBUG, where ``websockets`` dumps every request header on both
sides, the key string appears in no record (the header name does, masked)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from rxws import WebSocketClient
from rxws._redact import MASK, RedactFilter, mask_headers, redact, register_secrets
from rxws.exceptions import HandshakeRejected
from rxws.protocols import GenericJson
from rxws.testing import MockVenue
from rxws.transport.base import LinkOptions

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SIGN = "c0ffee5ecre7516na7ure0000deadbeef"
OKX_PASSPHRASE = "my-okx-passphrase-123"


def _leaks(caplog: pytest.LogCaptureFixture, *secrets: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if any(s in r.getMessage() for s in secrets)]


async def test_api_key_is_masked_in_every_record_of_a_real_handshake_at_debug(
    venue: MockVenue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = WebSocketClient(
        venue.url,
        protocol=GenericJson(),
        ping_interval=None,
        headers={"X-MBX-APIKEY": KEY, "X-Venue-Sign": SIGN, "User-Agent": "rxws-test"},
        secret_headers=["X-Venue-Sign"],
    )
    events: list[Any] = []
    client.events.subscribe(events.append)
    await client.connect()
    await venue.wait_connections(1)
    await client.close()
    messages = [r.getMessage() for r in caplog.records]
    # the handshake was dumped, by both the client and the server, with the names masked
    assert any(m == f"> X-MBX-APIKEY: {MASK}" for m in messages), messages[:20]
    assert any(m == f"< X-MBX-APIKEY: {MASK}" for m in messages)
    assert any(m == f"> X-Venue-Sign: {MASK}" for m in messages)
    assert any(m == "> User-Agent: rxws-test" for m in messages)  # other headers stay readable
    assert not _leaks(caplog, KEY, SIGN)
    assert KEY not in caplog.text and SIGN not in caplog.text
    assert not [e for e in events if KEY in repr(e) or SIGN in repr(e)]
    shown = repr(client._options)
    assert KEY not in shown and SIGN not in shown
    assert "'X-MBX-APIKEY': '***'" in shown and "'User-Agent': 'rxws-test'" in shown


@pytest.fixture
async def rejecting_venue(no_leaked_tasks: None) -> AsyncIterator[str]:
    """A server that refuses the upgrade with 401 and echoes the request headers in its body."""

    def refuse(_conn: ServerConnection, request: Request) -> Response:
        body = "".join(f"{k}: {v}\r\n" for k, v in request.headers.raw_items()).encode()
        return Response(401, "Unauthorized", Headers({"Content-Length": str(len(body))}), body)

    async def handler(_ws: ServerConnection) -> None:  # never reached
        raise AssertionError("the upgrade was refused")

    async with serve(handler, "127.0.0.1", 0, process_request=refuse) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws"


async def test_a_rejected_handshake_echoing_the_key_does_not_leak_it(
    rejecting_venue: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = WebSocketClient(
        rejecting_venue, protocol=GenericJson(), ping_interval=None, headers={"OK-ACCESS-KEY": KEY}
    )
    events: list[Any] = []
    client.events.subscribe(events.append)
    with pytest.raises(HandshakeRejected) as info:
        await client.connect()
    assert info.value.status == 401
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert f"OK-ACCESS-KEY: {MASK}" in str(info.value)  # the body was kept, the key masked
    assert events and not [e for e in events if KEY in repr(e)]
    assert not _leaks(caplog, KEY)
    await client.close()


def test_redact_masks_unregistered_values_after_a_secret_header_name() -> None:
    assert redact("> OK-ACCESS-PASSPHRASE: " + OKX_PASSPHRASE) == f"> OK-ACCESS-PASSPHRASE: {MASK}"
    assert redact("{'authorization': 'Bearer abc.def'}") == "{'authorization': '***'}"
    assert redact('"X-BAPI-SIGN": "0a1b2c"') == '"X-BAPI-SIGN": "***"'
    assert redact("cookie=session123") == f"cookie={MASK}"
    untouched = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ== and X-MBX-APIKEY-Hint: none"
    assert (
        redact("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==") == "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
    )
    assert "dGhlIHNhbXBsZSBub25jZQ==" in redact(untouched)


def test_registered_values_are_masked_anywhere_and_filter_rewrites_records() -> None:
    secret = "zq9-registered-secret-value"
    register_secrets({"X-Mine": secret}, ["X-Mine"])
    assert redact(f"login payload {{'sig': '{secret}'}}") == f"login payload {{'sig': '{MASK}'}}"
    record = logging.LogRecord("rxws.client", logging.DEBUG, __file__, 1, "sent %s", (secret,), None)
    assert RedactFilter().filter(record) is True
    assert record.getMessage() == f"sent {MASK}"
    try:
        raise ValueError(f"bad {secret}")
    except ValueError:
        import sys

        record = logging.LogRecord("rxws", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    RedactFilter().filter(record)
    assert record.exc_text is not None and secret not in record.exc_text and "ValueError" in record.exc_text


def test_link_options_repr_and_mask_headers() -> None:
    options = LinkOptions(headers={"X-MBX-APIKEY": KEY, "Accept": "json"})
    assert KEY not in repr(options) and "'Accept': 'json'" in repr(options)
    assert mask_headers({"x-bapi-api-key": KEY, "A": "b"}) == {"x-bapi-api-key": MASK, "A": "b"}
    with pytest.raises(ValueError, match="write_high_water"):
        LinkOptions(write_high_water=0)
