"""rxws.core.routing: one dict from topic to sink."""

from __future__ import annotations

from typing import Any

import pytest

from rxws.core.routing import Router


def test_routes_to_the_sink_of_the_key_and_counts() -> None:
    router = Router()
    got: dict[str, list[Any]] = {"a": [], "b": []}
    router.add("a", got["a"].append)
    router.add("b", got["b"].append)
    assert router.route("a", 1) and router.route("b", 2) and router.route("a", 3)
    assert not router.route("c", 4)
    assert got == {"a": [1, 3], "b": [2]}
    assert (router.routed, router.unrouted) == (3, 1)
    assert len(router) == 2 and "a" in router and sorted(router.keys()) == ["a", "b"]  # type: ignore[type-var]


def test_a_key_has_one_sink() -> None:
    router = Router()
    router.add("a", print)
    with pytest.raises(KeyError):
        router.add("a", print)


def test_remove_and_get() -> None:
    router = Router()
    sink: list[Any] = []
    router.add(("x", 1), sink.append)  # any hashable key
    assert router.get(("x", 1)) == sink.append
    assert router.remove(("x", 1)) == sink.append
    assert router.remove(("x", 1)) is None and router.get(("x", 1)) is None
    assert not router.route(("x", 1), "m") and sink == []


def test_routing_many_topics_touches_only_one_sink() -> None:
    router = Router()
    calls: list[int] = []
    for n in range(1000):
        router.add(f"t{n}", lambda m, n=n: calls.append(n))
    router.route("t500", None)
    assert calls == [500]
