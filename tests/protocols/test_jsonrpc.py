"""JsonRpc on the examples of the JSON-RPC 2.0 specification.

Source: https://www.jsonrpc.org/specification, section 7 "Examples" (read 2026-11-25). The examples
are copied literally; the spec writes them as ``--> request`` / ``<-- response`` lines.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxws.exceptions import DecodeError, VenueError
from rxws.protocols import JsonRpc, MessageKind

DATA, REPLY, ACK, CONTROL, ERROR, UNKNOWN = (
    MessageKind.DATA,
    MessageKind.REPLY,
    MessageKind.ACK,
    MessageKind.CONTROL,
    MessageKind.ERROR,
    MessageKind.UNKNOWN,
)


@pytest.fixture
def rpc() -> JsonRpc:
    return JsonRpc()


def parse(text: str) -> Any:
    return json.loads(text)


# -- spec section 7: requests --------------------------------------------------------------------


def test_request_shape_matches_the_spec_positional_example(rpc: JsonRpc) -> None:
    # --> {"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}
    spec = parse('{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}')
    assert rpc.request_message("subtract", [42, 23], 1) == spec


def test_request_shape_matches_the_spec_named_example(rpc: JsonRpc) -> None:
    # --> {"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}
    spec = parse(
        '{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}'
    )
    assert rpc.request_message("subtract", {"subtrahend": 23, "minuend": 42}, 3) == spec


def test_request_without_params_leaves_params_out(rpc: JsonRpc) -> None:
    # --> {"jsonrpc": "2.0", "method": "foobar", "id": "1"}
    spec = parse('{"jsonrpc": "2.0", "method": "foobar", "id": "1"}')
    assert rpc.request_message("foobar", None, "1") == spec


def test_subscribe_and_unsubscribe_are_requests(rpc: JsonRpc) -> None:
    assert rpc.subscribe_message(["a", "b"], 5) == {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "subscribe",
        "params": {"channels": ["a", "b"]},
    }
    custom = JsonRpc(subscribe_method="sub", unsubscribe_method="unsub", channels_param="topics")
    assert custom.unsubscribe_message(["a"], 6)["method"] == "unsub"
    assert custom.unsubscribe_message(["a"], 6)["params"] == {"topics": ["a"]}


# -- spec section 7: responses ---------------------------------------------------------------------


def test_result_reply_is_a_reply_keyed_by_id(rpc: JsonRpc) -> None:
    # <-- {"jsonrpc": "2.0", "result": 19, "id": 1}
    msg = parse('{"jsonrpc": "2.0", "result": 19, "id": 1}')
    assert rpc.classify(msg) == (REPLY, 1)
    assert rpc.reply_error(msg) is None
    assert rpc.reply_result(msg) == 19


def test_negative_result_reply(rpc: JsonRpc) -> None:
    # <-- {"jsonrpc": "2.0", "result": -19, "id": 2}
    msg = parse('{"jsonrpc": "2.0", "result": -19, "id": 2}')
    assert rpc.classify(msg) == (REPLY, 2)
    assert rpc.reply_result(msg) == -19


def test_method_not_found_error_with_string_id(rpc: JsonRpc) -> None:
    # <-- {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}
    msg = parse('{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}')
    assert rpc.classify(msg) == (REPLY, "1")
    error = rpc.reply_error(msg)
    assert isinstance(error, VenueError)
    assert (error.code, error.message) == (-32601, "Method not found")
    assert error.payload is msg


def test_parse_error_with_null_id_is_an_error_not_tied_to_a_request(rpc: JsonRpc) -> None:
    # <-- {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}
    msg = parse('{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}')
    assert rpc.classify(msg) == (ERROR, -32700)
    error = rpc.reply_error(msg)
    assert error is not None and error.code == -32700


def test_invalid_request_with_null_id(rpc: JsonRpc) -> None:
    # <-- {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}
    msg = parse('{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}')
    assert rpc.classify(msg) == (ERROR, -32600)


def test_batch_responses_are_not_routed(rpc: JsonRpc) -> None:
    # <-- [ {"jsonrpc": "2.0", "result": 7, "id": "1"}, {"jsonrpc": "2.0", "result": 19, "id": "2"}, ...]
    batch = parse(
        '[{"jsonrpc": "2.0", "result": 7, "id": "1"},'
        ' {"jsonrpc": "2.0", "result": 19, "id": "2"},'
        ' {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}]'
    )
    assert rpc.classify(batch) == (UNKNOWN, None)
    assert rpc.reply_error(batch) is None


def test_notification_from_the_server_is_control(rpc: JsonRpc) -> None:
    # --> {"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}  (a notification)
    msg = parse('{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}')
    assert rpc.classify(msg) == (CONTROL, "update")


def test_subscription_notification_is_data_keyed_by_channel(rpc: JsonRpc) -> None:
    msg = {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": "ticks", "data": {"p": 1}}}
    assert rpc.classify(msg) == (DATA, "ticks")
    other = JsonRpc(notification_method="notify")
    assert other.classify(msg) == (CONTROL, "subscription")


# -- bad input ---------------------------------------------------------------------------------------


def test_error_without_code_gives_code_none(rpc: JsonRpc) -> None:
    msg = {"jsonrpc": "2.0", "id": 4, "error": {"message": "boom"}}
    assert rpc.classify(msg) == (REPLY, 4)
    error = rpc.reply_error(msg)
    assert error is not None and error.code is None and error.message == "boom"
    odd = rpc.reply_error({"id": 4, "error": "plain text"})
    assert odd is not None and odd.code is None and odd.message == "plain text"
    weird = rpc.reply_error({"id": 4, "error": {"code": [1], "message": "x"}})
    assert weird is not None and weird.code is None


def test_reply_without_id_is_unknown(rpc: JsonRpc) -> None:
    assert rpc.classify({"jsonrpc": "2.0", "result": 19}) == (UNKNOWN, None)
    assert rpc.classify({"jsonrpc": "2.0", "error": {"code": 1, "message": "m"}}) == (ERROR, 1)


@pytest.mark.parametrize("rid", [[1], {"a": 1}, 1.5, True, None])
def test_unknown_id_types_are_not_replies(rpc: JsonRpc, rid: Any) -> None:
    assert rpc.classify({"jsonrpc": "2.0", "result": 1, "id": rid}) == (UNKNOWN, None)


@pytest.mark.parametrize(
    "params",
    [None, [], {"data": 1}, {"channel": 5, "data": 1}, {"channel": None}],
)
def test_data_without_a_channel_is_unknown(rpc: JsonRpc, params: Any) -> None:
    assert rpc.classify({"jsonrpc": "2.0", "method": "subscription", "params": params}) == (UNKNOWN, None)


@pytest.mark.parametrize("value", [[1, 2], 42, "text", None, True, 2.5, [[[[]]]], {}])
def test_valid_json_that_is_not_a_message(rpc: JsonRpc, value: Any) -> None:
    assert rpc.classify(value)[0] is UNKNOWN
    assert rpc.reply_error(value) is None
    assert rpc.sequence(value) is None
    assert rpc.rate_limit_signal(value) is None


def test_deep_nesting_decodes_or_raises_decode_error(rpc: JsonRpc) -> None:
    frame = "[" * 10_000 + "]" * 10_000
    try:
        msg = rpc.decode(frame)
    except DecodeError:
        return
    assert rpc.classify(msg) == (UNKNOWN, None)


def test_binary_frames(rpc: JsonRpc) -> None:
    frame = b'{"jsonrpc": "2.0", "result": 19, "id": 1}'
    assert rpc.decode(frame) == {"jsonrpc": "2.0", "result": 19, "id": 1}
    with pytest.raises(DecodeError):
        rpc.decode(b"\xff\xfe garbage")
    with pytest.raises(DecodeError):
        rpc.decode('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]')  # the spec's invalid JSON


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(["jsonrpc", "id", "method", "params", "result", "error", "channel", "data", "code"])
messages = st.dictionaries(keys, json_values, max_size=6) | json_values


@given(messages)
def test_reading_never_raises(msg: Any) -> None:
    rpc = JsonRpc()
    rpc.classify(msg)
    rpc.reply_error(msg)
    rpc.reply_result(msg)
    rpc.ack_topics(msg)
    rpc.sequence(msg)
    rpc.rate_limit_signal(msg)
    rpc.auto_reply(msg)
