"""The built-in dialects by name (``rxws.protocols.DIALECTS`` and ``dialect()``), as the CLI uses them."""

from __future__ import annotations

import pytest

from rxws.exceptions import UsageError
from rxws.protocols import DIALECTS, Binance, GenericJson, VenueProtocol, dialect


def test_each_name_gives_a_fresh_instance_of_its_dialect() -> None:
    for name, cls in DIALECTS.items():
        first, second = dialect(name), dialect(name)
        assert isinstance(first, cls) and isinstance(first, VenueProtocol)
        assert first is not second  # dialects may keep per-connection state (OKX's subscribed args)
    assert type(dialect("binance")) is Binance and type(dialect("generic")) is GenericJson


def test_an_unknown_name_is_a_usage_error_listing_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"unknown protocol 'kraken'; known: binance, bybit, deribit"):
        dialect("kraken")
