"""An order-like flow: acknowledged on the request stream, confirmed on another stream by key.

Five orders are placed as requests (the venue's reply is the acknowledgement); each is then
confirmed on a separate private stream, ``orders``, matched to its order by ``clOrdId`` with
``rxws.operators.correlate``. The venue's matching engine (played here by the example, on the
embedded MockVenue) never confirms ``o3``: the host sees a ``RequestTimeout`` for it, and the
counters say what happened. A sixth order, placed by hand, awaits its confirmation with
``client.expect``, created before the order is sent so the confirmation cannot slip past::

    python examples/order_flow.py
"""

from __future__ import annotations

import asyncio
from typing import Any

import reactivex
from reactivex import operators as ops

from rxws import RequestTimeout, WebSocketClient
from rxws.operators import CorrelationStats, correlate
from rxws.protocols import GenericJson
from rxws.testing import MockVenue

ORDERS = [{"clOrdId": f"o{n}", "side": "buy", "qty": n} for n in range(1, 6)]
NEVER_CONFIRMED = "o3"


async def main() -> None:
    async with (
        MockVenue(rate=0) as venue,  # publishes only what the example asks
        WebSocketClient(venue.url, protocol=GenericJson(), name="trader") as client,
    ):
        confirmations = client.watch("orders")  # the private stream confirmations arrive on
        stats = CorrelationStats()
        engine: list[asyncio.Task[int]] = []
        loop = asyncio.get_running_loop()

        def place(order: dict[str, Any]) -> reactivex.Observable[Any]:
            return client.request("echo", order, timeout=2.0)  # the reply is the acknowledgement

        def matching_engine(ack: dict[str, Any]) -> None:  # the venue's side: confirm 50 ms later
            print(f"acked      {ack['clOrdId']}")
            if ack["clOrdId"] != NEVER_CONFIRMED:
                confirmation = {"clOrdId": ack["clOrdId"], "status": "filled", "qty": ack["qty"]}
                loop.call_later(
                    0.05, lambda: engine.append(loop.create_task(venue.publish("orders", confirmation)))
                )

        def outcome(stream: reactivex.Observable[Any]) -> reactivex.Observable[str]:
            return stream.pipe(
                ops.map(lambda m: f"confirmed  {m['data']['clOrdId']} {m['data']['status']}"),
                ops.catch(
                    lambda e, _: reactivex.just(
                        f"timeout    {e.request_id}: {e}" if isinstance(e, RequestTimeout) else f"error {e!r}"
                    )
                ),
            )

        outcomes = await reactivex.from_iterable(ORDERS).pipe(
            ops.flat_map(place),
            ops.do_action(matching_engine),
            correlate(
                confirmations,
                key_of=lambda ack: ack["clOrdId"],
                response_key=lambda message: message["data"].get("clOrdId"),  # None: not a confirmation
                timeout=0.5,
                stats=stats,
                scheduler=client.scheduler,
            ),
            ops.flat_map(outcome),
            ops.do_action(print),
            ops.to_list(),
        )
        await asyncio.gather(*engine)
        confirmed = sum(line.startswith("confirmed") for line in outcomes)
        print(f"{confirmed} confirmed, {stats.timeouts} timed out; counters {stats.as_dict()}")

        # One order by hand: expect its confirmation first (no race with the send), then place it
        watching = confirmations.subscribe()  # keep the private stream subscribed meanwhile
        await venue.wait_subscribed("orders")
        fill = client.expect(
            lambda m: m.get("topic") == "orders" and m["data"]["clOrdId"] == "o6", timeout=0.5
        )
        matching_engine(
            await client.request("echo", {"clOrdId": "o6", "side": "sell", "qty": 6}, timeout=2.0)
        )
        confirmation = (await fill)["data"]
        print(f"expected   {confirmation['clOrdId']} {confirmation['status']}")
        print(client)  # one line: state, connection age, topics, requests still pending
        watching.dispose()
        await asyncio.gather(*engine)


if __name__ == "__main__":
    asyncio.run(main())
