"""Transports: the platform abstraction under the reactive client.

``Transport.open`` gives a ``Link``; ``WebsocketsTransport`` is the native one,
``MemoryTransport`` the virtual-time one for tests.
"""

from rxws.transport.base import Link, LinkOptions, Transport, validate_url
from rxws.transport.memory import MemoryLink, MemoryPeer, MemoryTransport
from rxws.transport.websockets import WebsocketsLink, WebsocketsTransport

__all__ = [
    "Link",
    "LinkOptions",
    "MemoryLink",
    "MemoryPeer",
    "MemoryTransport",
    "Transport",
    "WebsocketsLink",
    "WebsocketsTransport",
    "validate_url",
]
