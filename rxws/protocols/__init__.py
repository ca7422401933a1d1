"""Venue dialects: how each venue's messages are encoded and read."""

from rxws.protocols.base import MessageKind, Seq, VenueProtocol
from rxws.protocols.binance import Binance
from rxws.protocols.bybit import Bybit
from rxws.protocols.deribit import Deribit
from rxws.protocols.generic import GenericJson
from rxws.protocols.jsonrpc import JsonRpc
from rxws.protocols.okx import Okx

__all__ = [
    "Binance",
    "Bybit",
    "Deribit",
    "GenericJson",
    "JsonRpc",
    "MessageKind",
    "Okx",
    "Seq",
    "VenueProtocol",
]
