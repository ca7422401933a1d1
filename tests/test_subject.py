"""Tests for rxws/_subject.py: FastSubject's subscribe, isolation and end."""

from __future__ import annotations

from typing import Any

import reactivex
from reactivex.observer.autodetachobserver import AutoDetachObserver

from rxws._subject import FastSubject


def test_an_auto_detach_observer_is_added_as_it_is_and_still_leaves_on_dispose() -> None:
    subject: FastSubject[int] = FastSubject()
    got: list[int] = []
    observer: AutoDetachObserver[int] = AutoDetachObserver(got.append)
    disposable = subject.subscribe(observer)
    assert subject._observers == (observer,)  # no second wrapper: one call less per item
    subject.on_next(1)
    disposable.dispose()
    subject.on_next(2)
    assert got == [1] and not subject.has_observers


def test_a_stream_built_on_it_delivers_through_one_wrapper_and_ends_once() -> None:
    subject: FastSubject[int] = FastSubject()
    got: list[Any] = []
    stream = reactivex.create(lambda observer, _s: subject.subscribe(observer))
    stream.subscribe(got.append, lambda e: got.append(("error", str(e))), lambda: got.append("done"))
    (inner,) = subject._observers
    assert type(inner) is AutoDetachObserver  # the host's own wrapper, not one around it
    subject.on_next(1)
    subject.on_error(ValueError("boom"))
    subject.on_next(2)
    subject.on_completed()
    assert got == [1, ("error", "boom")]


def test_functions_and_other_observers_are_subscribed_the_usual_way() -> None:
    subject: FastSubject[int] = FastSubject()
    got: list[Any] = []

    class Plain:
        def on_next(self, value: int) -> None:
            got.append(("plain", value))

        def on_error(self, error: Exception) -> None:
            got.append(("plain error", error))

        def on_completed(self) -> None:
            got.append("plain done")

    subject.subscribe(lambda v: got.append(("fn", v)), on_completed=lambda: got.append("fn done"))
    subject.subscribe(Plain())
    subject.on_next(7)
    subject.on_completed()
    assert got == [("fn", 7), ("plain", 7), "fn done", "plain done"]
