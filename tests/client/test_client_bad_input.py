"""Issue 5's bad input, in virtual time: each gives a defined event or error, and the connection
goes on (the next good message still arrives)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness import Virtual

from rxws import ConnectionState, VenueError
from rxws.events import DecodeFailed, LateReply, UnroutedMessage, VenueNotice


def _session(virtual: Virtual) -> tuple[Any, list[Any]]:
    client = virtual.client()
    got: list[Any] = []
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: client.watch("t").subscribe(got.append))
    virtual.run(until=3.0)
    return client, got


def _then_good_data_still_flows(virtual: Virtual, client: Any, got: list[Any]) -> None:
    before = len(got)
    virtual.at(virtual.now() + 0.1, lambda: virtual.responder.publish("t", {"ok": True}))
    virtual.run(until=virtual.now() + 1.0)
    assert client.state_value is ConnectionState.CONNECTED
    assert len(got) == before + 1 and got[-1]["data"] == {"ok": True}


@pytest.mark.parametrize(
    ("frame", "event_type", "check"),
    [
        ({"id": 999, "result": 1}, LateReply, lambda e: e.request_id == 999 and "no request" in e.why),
        (
            {"id": [1, 2], "result": 1},
            LateReply,
            lambda e: e.request_id == "[1, 2]" and "no request" in e.why,
        ),
        ({"id": {"a": 1}, "result": 1}, LateReply, lambda e: e.request_id == "{'a': 1}"),
        ({"result": 1}, UnroutedMessage, lambda e: e.topic is None),  # a reply without an id
        ({"seq": 1, "data": 2}, UnroutedMessage, lambda e: e.topic is None),  # data without a topic
        ({"topic": "nobody", "seq": 1, "data": 2}, UnroutedMessage, lambda e: e.topic == "nobody"),
        ([1, 2, 3], UnroutedMessage, lambda e: e.topic is None),  # valid JSON, not an object
        ("null", UnroutedMessage, lambda e: e.topic is None),
        (
            {"id": None, "error": {"message": "bad"}},
            VenueNotice,
            lambda e: e.code is None and e.detail == "bad",
        ),
    ],
    ids=[
        "unknown-id",
        "list-id",
        "object-id",
        "reply-without-id",
        "data-without-topic",
        "unwatched-topic",
        "json-array",
        "json-null",
        "error-without-code",
    ],
)
def test_bad_input_gives_an_event_and_the_connection_goes_on(
    virtual: Virtual, frame: Any, event_type: type, check: Any
) -> None:
    client, got = _session(virtual)
    raw = frame if isinstance(frame, str) else json.dumps(frame)
    virtual.at(3.5, lambda: virtual.transport.peer.push(raw))
    virtual.run(until=4.0)
    events = virtual.timeline.of(event_type)  # type: ignore[union-attr]
    assert len(events) == 1 and check(events[0]), events
    _then_good_data_still_flows(virtual, client, got)


def test_a_10000_deep_nested_array_is_a_decode_failure_not_a_crash(virtual: Virtual) -> None:
    client, got = _session(virtual)
    deep = "[" * 10_000 + "]" * 10_000
    virtual.at(3.5, lambda: virtual.transport.peer.push(deep))
    virtual.run(until=4.0)
    tl = virtual.timeline
    assert tl is not None
    outcome = tl.of(DecodeFailed) + tl.of(UnroutedMessage)  # orjson refuses it; stdlib json may parse it
    assert len(outcome) == 1
    assert client.stats.decode_failures + client.stats.unrouted == 1
    _then_good_data_still_flows(virtual, client, got)


def test_a_venue_error_reply_with_no_code_reaches_the_caller(virtual: Virtual) -> None:
    client, _got = _session(virtual)
    errors: list[BaseException] = []
    virtual.at(3.4, lambda: setattr(virtual.transport.peer, "on_receive", None))  # we answer by hand
    virtual.at(3.5, lambda: client.request("x", timeout=5.0).subscribe(on_error=errors.append))

    def answer() -> None:
        sent = json.loads(virtual.transport.peer.sent[-1])
        virtual.transport.peer.push({"id": sent["id"], "error": {"message": "no code here"}})

    virtual.at(3.9, answer)
    virtual.run(until=4.5)
    assert len(errors) == 1 and isinstance(errors[0], VenueError)
    assert errors[0].code is None and errors[0].message == "no code here"
