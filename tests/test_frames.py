"""rxws.frames: events and messages to a DataFrame; a clear error without pandas."""

from __future__ import annotations

import sys

import pytest

from rxws.events import Connected, Disconnected, DisconnectReason, GapDetected
from rxws.frames import to_dataframe

pd = pytest.importorskip("pandas")


def test_events_become_rows_with_their_fields() -> None:
    events = [
        Connected(at=1.0, url="ws://a"),
        GapDetected(at=2.0, topic="t", gap="sequence", last_seq=3, next_seq=5),
        Disconnected(at=3.5, reason=DisconnectReason.NETWORK_ERROR, detail="reset"),
    ]
    frame = to_dataframe(events, index="at")
    assert list(frame.index) == [1.0, 2.0, 3.5]
    assert list(frame["kind"]) == ["connected", "gap_detected", "disconnected"]
    assert frame.loc[2.0, "next_seq"] == 5 and frame.loc[3.5, "reason"] == "NETWORK_ERROR"
    assert pd.isna(frame.loc[1.0, "topic"])


def test_messages_are_flattened_into_dotted_columns() -> None:
    messages = [
        {"topic": "BTC", "seq": 1, "data": {"px": 100, "qty": 2}},
        {"topic": "BTC", "seq": 2, "data": {"px": 101}},
    ]
    frame = to_dataframe(messages)
    assert list(frame.columns) == ["topic", "seq", "data.px", "data.qty"]
    assert list(frame["data.px"]) == [100, 101]
    kept = to_dataframe(messages, flatten=False, columns=["seq", "data", "missing"])
    assert list(kept.columns) == ["seq", "data", "missing"] and kept.loc[1, "data"] == {"px": 101}


def test_other_values_and_nothing() -> None:
    assert list(to_dataframe([1, "two"])["value"]) == [1, "two"]
    assert to_dataframe([]).empty


def test_without_pandas_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    with pytest.raises(ImportError, match=r"rxws\[pandas\]"):
        to_dataframe([{"a": 1}])
