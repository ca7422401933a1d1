"""Request/response: unique ids, replies matched in O(1), timeouts, venue errors, and a lost connection.

Each ``client.request`` is eager (sent when called) and returns an awaitable single-value
observable, so it works with ``await``, ``asyncio.gather`` and inside Rx pipelines::

    python examples/request_response.py [ws://host:port]   # a GenericJson venue; MockVenue by default
"""

from __future__ import annotations

import asyncio
import sys

import reactivex
from reactivex import operators as ops

from rxws import ConnectionLost, RequestTimeout, VenueError, WebSocketClient
from rxws.protocols import GenericJson
from rxws.testing import MockVenue


async def run(url: str, venue: MockVenue | None) -> None:
    async with WebSocketClient(url, protocol=GenericJson()) as client:
        # 1. await one request
        print("echo          ->", await client.request("echo", {"x": 1}, timeout=2.0))

        # 2. many in flight at once; the replies come back out of order and still match
        replies = await asyncio.gather(
            client.request("sleep", {"seconds": 0.3}, timeout=2.0),
            client.request("echo", {"n": 2}, timeout=2.0),
            client.request("sleep", {"seconds": 0.1}, timeout=2.0),
        )
        print("gathered      ->", replies)

        # 3. inside an Rx pipeline: a request is an observable of one value
        total = await reactivex.merge(
            *(client.request("echo", {"n": n}, timeout=2.0) for n in range(5))
        ).pipe(ops.map(lambda reply: reply["n"]), ops.sum())
        print("rx sum        ->", total)

        # 4. the venue's error reply is a VenueError with its code and message
        try:
            await client.request("fail", {"code": -1121, "message": "Invalid symbol."}, timeout=2.0)
        except VenueError as exc:
            print(f"venue error   -> code={exc.code} message={exc.message!r}")

        # 5. no reply in time: RequestTimeout, and the pending entry is gone
        try:
            await client.request("sleep", {"seconds": 5}, timeout=0.2)
        except RequestTimeout as exc:
            print(f"timeout       -> {exc}; pending now {client.pending_requests}")

        # 6. the connection drops before the reply: ConnectionLost, never a hung await
        if venue is not None:
            slow = client.request("sleep", {"seconds": 5}, timeout=3.0)
            await asyncio.sleep(0.05)
            venue.drop_all()
            try:
                await slow
            except ConnectionLost as exc:
                print(f"dropped       -> ConnectionLost: {exc}")


async def main() -> int:
    if len(sys.argv) > 1:
        await run(sys.argv[1], None)
        return 0
    async with MockVenue(rate=0) as venue:
        await run(venue.url, venue)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
