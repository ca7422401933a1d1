"""The CLI's ``--transport`` and ``--uvloop`` options (``rxws listen``, ``rxws demo``): the
transport by name and the event loop runner, each failing with one clear line when its extra
(``fast``: picows, uvloop) is not installed."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from rxws.exceptions import RxwsError
from rxws.transport.base import Transport
from rxws.transport.websockets import WebsocketsTransport

__all__ = ["TRANSPORTS", "add_loop_options", "runner", "transport_named"]

Runner = Callable[[Coroutine[Any, Any, int]], int]

TRANSPORTS = ("websockets", "picows")


def transport_named(name: str) -> Transport:
    """The transport named ``name``; picows (the ``fast`` extra) must be installed."""
    if name == "picows":
        try:
            from rxws.transport.picows import PicowsTransport
        except ImportError as exc:
            raise RxwsError(f"--transport picows needs picows: pip install 'rxws[fast]' ({exc})") from None
        return PicowsTransport()
    if name == "websockets":
        return WebsocketsTransport()
    raise RxwsError(f"--transport must be one of {', '.join(TRANSPORTS)}, got {name!r}")


def runner(use_uvloop: bool) -> Runner:
    """``asyncio.run``, or uvloop's (the ``fast`` extra) with ``--uvloop``."""
    if not use_uvloop:
        return asyncio.run
    try:
        import uvloop
    except ImportError as exc:
        raise RxwsError(f"--uvloop needs uvloop: pip install 'rxws[fast]' ({exc})") from None

    def run(main: Coroutine[Any, Any, int]) -> int:
        return uvloop.run(main)

    return run


def add_loop_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--transport`` and ``--uvloop`` to a subcommand's parser."""
    parser.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default="websockets",
        help="the client's transport (default websockets)",
    )
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (the 'fast' extra)")
