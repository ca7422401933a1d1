"""rxws.ratelimit.pairing: a preset paired with another venue's dialect is refused at construction."""

from __future__ import annotations

from typing import ClassVar

import pytest

from rxws import WebSocketClient
from rxws.exceptions import UsageError
from rxws.pool import ConnectionPool
from rxws.protocols import Binance, Bybit, Deribit, GenericJson, JsonRpc, Okx
from rxws.protocols.base import VenueProtocol
from rxws.ratelimit import SlidingWindow, VenueRateLimiter, presets
from rxws.ratelimit.pairing import check_pairing, venue_of

URL = "ws://127.0.0.1:1"  # never connected: every check here happens before any I/O


def test_a_preset_with_another_venues_dialect_names_both() -> None:
    with pytest.raises(UsageError) as caught:
        WebSocketClient(URL, protocol=Okx(), rate_limiter=presets.binance_spot())
    message = str(caught.value)
    assert "'binance_spot'" in message and "'binance'" in message
    assert "Okx" in message and "'okx'" in message
    assert "venue=None" in message, "the error says how to pair on purpose"


@pytest.mark.parametrize(
    ("protocol", "preset"),
    [
        (GenericJson(), presets.binance_spot),  # the mock's dialect is no venue's
        (GenericJson(), presets.okx),
        (Binance(), presets.okx),
        (Okx(), presets.bybit),
        (Bybit(), presets.deribit),
        (JsonRpc(), presets.deribit),  # plain JSON-RPC is not Deribit
        (Deribit(), presets.binance_usdm),
        (Binance(), presets.coinbase),  # no shipped dialect speaks Coinbase or Kraken
        (Okx(), presets.kraken),
    ],
    ids=lambda x: getattr(x, "__name__", type(x).__name__),
)
def test_every_mismatch_is_refused(protocol: VenueProtocol, preset: object) -> None:
    with pytest.raises(UsageError, match=r"holds .* limits, but the protocol"):
        WebSocketClient(URL, protocol=protocol, rate_limiter=preset())  # type: ignore[operator]


@pytest.mark.parametrize(
    ("protocol", "preset"),
    [
        (Binance(), presets.binance_spot),
        (Binance(), presets.binance_usdm),
        (Okx(), presets.okx),
        (Bybit(), presets.bybit),
        (Deribit(), presets.deribit),
    ],
    ids=lambda x: getattr(x, "__name__", type(x).__name__),
)
def test_each_preset_pairs_with_its_own_dialect(protocol: VenueProtocol, preset: object) -> None:
    limiter = preset()  # type: ignore[operator]
    client = WebSocketClient(URL, protocol=protocol, rate_limiter=limiter)
    assert client._ctx.limiter is limiter


def test_pairing_on_purpose() -> None:
    # a preset lent to any dialect
    WebSocketClient(URL, protocol=GenericJson(), rate_limiter=presets.binance_spot(venue=None))
    # a hand-built limiter names no venue unless told
    WebSocketClient(
        URL, protocol=GenericJson(), rate_limiter=VenueRateLimiter(message=[SlidingWindow(5, 1.0)])
    )
    with pytest.raises(UsageError):
        WebSocketClient(URL, protocol=GenericJson(), rate_limiter=VenueRateLimiter(venue="okx"))

    class MyBinance(Binance):  # a variant of a shipped dialect keeps its venue
        max_topics_per_message = 5

    WebSocketClient(URL, protocol=MyBinance(), rate_limiter=presets.binance_spot())

    class CoinbaseFeed(VenueProtocol):  # a custom dialect declares which venue it speaks
        name: ClassVar[str] = "coinbase"

    WebSocketClient(URL, protocol=CoinbaseFeed(), rate_limiter=presets.coinbase())
    with pytest.raises(UsageError):
        WebSocketClient(URL, protocol=CoinbaseFeed(), rate_limiter=presets.kraken())


def test_a_limiter_without_a_venue_attribute_fits_any_dialect() -> None:
    class Bare:
        pass

    assert venue_of(Bare()) is None and venue_of(None) is None
    check_pairing(Okx(), Bare())
    check_pairing(Okx(), None)


def test_a_pool_refuses_before_opening_any_connection() -> None:
    with pytest.raises(UsageError, match="'binance'"):
        ConnectionPool(URL, protocol=Okx(), rate_limiter=presets.binance_spot())
    pool = ConnectionPool(URL, protocol=Binance(), rate_limiter=presets.binance_spot())
    assert pool.clients == ()
