"""GenericJson on the wire format of DESIGN.md section 4 (the dialect MockVenue speaks)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxws.exceptions import DecodeError
from rxws.protocols import GenericJson, MessageKind, Seq

DATA, REPLY, ERROR, UNKNOWN = MessageKind.DATA, MessageKind.REPLY, MessageKind.ERROR, MessageKind.UNKNOWN


@pytest.fixture
def gen() -> GenericJson:
    return GenericJson()


def test_outbound_messages(gen: GenericJson) -> None:
    assert gen.subscribe_message(["trades.BTC"], 1) == {"op": "subscribe", "id": 1, "args": ["trades.BTC"]}
    unsubscribe = {"op": "unsubscribe", "id": 2, "args": ["trades.BTC"]}
    assert gen.unsubscribe_message(["trades.BTC"], 2) == unsubscribe
    assert gen.request_message("echo", {"x": 1}, 3) == {"op": "echo", "id": 3, "params": {"x": 1}}
    assert gen.request_message("ping", None, 4) == {"op": "ping", "id": 4}


def test_replies_errors_and_data(gen: GenericJson) -> None:
    reply = gen.decode('{"id": 3, "result": {"x": 1}}')
    assert gen.classify(reply) == (REPLY, 3)
    assert gen.reply_error(reply) is None and gen.reply_result(reply) == {"x": 1}
    failed = gen.decode('{"id": 5, "error": {"code": 42, "message": "nope"}}')
    error = gen.reply_error(failed)
    assert error is not None and (error.code, error.message) == (42, "nope")
    data = gen.decode('{"topic": "trades.BTC", "seq": 7, "data": [1, 2]}')
    assert gen.classify(data) == (DATA, "trades.BTC")
    assert gen.sequence(data) == Seq(7, 7)


def test_limits_batch_topics() -> None:
    gen = GenericJson(max_topics_per_message=2)
    assert gen.batches(["a", "b", "c"]) == [["a", "b"], ["c"]]


# -- bad input ---------------------------------------------------------------------------------------


def test_error_without_code_and_without_id(gen: GenericJson) -> None:
    error = gen.reply_error({"id": 1, "error": {"message": "m"}})
    assert error is not None and error.code is None
    assert gen.classify({"id": None, "error": {"code": 9, "message": "m"}}) == (ERROR, 9)
    assert gen.classify({"error": "text"}) == (ERROR, None)
    assert gen.classify({"result": 1}) == (UNKNOWN, None)


def test_data_without_topic_is_unknown(gen: GenericJson) -> None:
    assert gen.classify({"seq": 1, "data": 2}) == (UNKNOWN, None)


@pytest.mark.parametrize("topic", [[1], {"a": 1}, 5])
def test_non_string_topic_is_not_data(gen: GenericJson, topic: Any) -> None:
    assert gen.classify({"topic": topic, "seq": 1, "data": 2})[0] is not DATA


def test_sequence_of_a_non_object(gen: GenericJson) -> None:
    assert gen.sequence([1, 2]) is None


@pytest.mark.parametrize("value", [[1, 2], 42, "text", None, True, 2.5, [[[[]]]]])
def test_valid_json_that_is_not_an_object(gen: GenericJson, value: Any) -> None:
    assert gen.classify(value) == (UNKNOWN, None)
    assert gen.reply_error(value) is None


def test_deep_nesting_and_binary_frames(gen: GenericJson) -> None:
    try:
        msg = gen.decode("[" * 10_000 + "]" * 10_000)
    except DecodeError:
        msg = None
    assert gen.classify(msg) == (UNKNOWN, None)
    assert gen.decode(b'{"id": 1, "result": null}') == {"id": 1, "result": None}
    with pytest.raises(DecodeError):
        gen.decode(b"\xff")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.sampled_from(["id", "topic", "seq", "error", "result", "data"]), json_values))
def test_classify_never_raises_on_objects(msg: dict[str, Any]) -> None:
    gen = GenericJson()
    gen.classify(msg)
    gen.reply_error(msg)
    gen.sequence(msg)


# The client's fast paths read these (rxws.protocols.base.counter_field / fast_decoder) ----------
class _OwnSequence(GenericJson):
    def sequence(self, message: Any) -> Seq | None:
        return None


class _OwnDecode(GenericJson):
    def decode(self, frame: str | bytes) -> Any:
        return super().decode(frame)


def test_counter_field_is_seq_only_while_sequence_is_generic_jsons(gen: GenericJson) -> None:
    from rxws.protocols.base import VenueProtocol, counter_field

    assert counter_field(gen) == "seq"
    assert counter_field(_OwnSequence()) is None  # the field says nothing about that sequence()
    patched = GenericJson()
    patched.sequence = lambda message: None  # type: ignore[method-assign]
    assert counter_field(patched) is None
    assert counter_field(VenueProtocol()) is None


@given(value=st.one_of(st.integers(), st.booleans(), st.floats(allow_nan=False), st.text(), st.none()))
def test_seq_field_describes_sequence_exactly(value: Any) -> None:
    """What counter_field promises: Seq(n, n) for an int n in the field, None for anything else."""
    gen = GenericJson()
    message = {"topic": "t", "seq": value}
    expected = Seq(value, value) if type(value) is int else None
    assert gen.sequence(message) == expected


def test_fast_decoder_is_orjson_only_for_the_default_decode(gen: GenericJson) -> None:
    from rxws.protocols.base import decode_detail, fast_decoder

    loads = fast_decoder(gen)
    orjson = pytest.importorskip("orjson")
    assert loads is orjson.loads
    assert fast_decoder(_OwnDecode()) is None
    for bad in ('{"a":', b"\xff\xfe", "[" * 2000):
        with pytest.raises(ValueError) as fast_error:
            loads(bad)
        with pytest.raises(DecodeError) as slow_error:
            gen.decode(bad)
        assert decode_detail(fast_error.value) == str(slow_error.value)  # the same DecodeFailed detail
