"""rxws._replay.ReplayStream: hot, replaying to late subscribers, ended once."""

from __future__ import annotations

from typing import Any

from rxws._replay import ReplayStream


def _watch(stream: ReplayStream[Any]) -> list[Any]:
    seen: list[Any] = []
    stream.subscribe(seen.append, lambda e: seen.append(f"error {e}"), lambda: seen.append("|"))
    return seen


def test_live_and_late_subscribers_see_every_value_and_the_end() -> None:
    stream: ReplayStream[int] = ReplayStream()
    early = _watch(stream)
    stream.next(1)
    stream.next(2)
    middle = _watch(stream)
    stream.end(None)
    stream.next(3)  # after the end: ignored
    stream.end(ValueError("again"))  # only the first end counts
    assert early == middle == [1, 2, "|"] and _watch(stream) == [1, 2, "|"] and stream.done


def test_an_error_end_and_a_disposed_observer() -> None:
    stream: ReplayStream[int] = ReplayStream()
    gone: list[Any] = []
    stream.subscribe(gone.append).dispose()
    stream.next(1)
    stream.end(KeyError("k"))
    assert gone == [] and _watch(stream) == [1, "error 'k'"]
