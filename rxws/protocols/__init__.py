"""Venue dialects: how each venue's messages are encoded and read."""

from rxws.protocols.base import MessageKind, Seq, VenueProtocol
from rxws.protocols.binance import Binance
from rxws.protocols.bybit import Bybit
from rxws.protocols.deribit import Deribit
from rxws.protocols.generic import GenericJson
from rxws.protocols.jsonrpc import JsonRpc
from rxws.protocols.okx import Okx

DIALECTS: dict[str, type[VenueProtocol]] = {
    "generic": GenericJson,
    "binance": Binance,
    "okx": Okx,
    "bybit": Bybit,
    "deribit": Deribit,
    "jsonrpc": JsonRpc,
}
"""The built-in dialects by name (the CLI's ``--protocol``)."""


def dialect(name: str) -> VenueProtocol:
    """A new instance of the built-in dialect called ``name``, with its default settings.

    Raises:
        UsageError: no built-in dialect has that name (the message lists the known ones).
    """
    from rxws.exceptions import UsageError

    factory = DIALECTS.get(name)
    if factory is None:
        raise UsageError(f"unknown protocol {name!r}; known: {', '.join(sorted(DIALECTS))}")
    return factory()


__all__ = [
    "DIALECTS",
    "Binance",
    "Bybit",
    "Deribit",
    "GenericJson",
    "JsonRpc",
    "MessageKind",
    "Okx",
    "Seq",
    "VenueProtocol",
    "dialect",
]
