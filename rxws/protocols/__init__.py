"""Venue dialects: how each venue's messages are encoded and read."""

from rxws.protocols.base import MessageKind, Seq, VenueProtocol
from rxws.protocols.generic import GenericJson

__all__ = ["GenericJson", "MessageKind", "Seq", "VenueProtocol"]
