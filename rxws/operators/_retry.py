"""``retry_with_backoff``: re-subscribe a failed source after a backoff delay the host approved."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable, SingleAssignmentDisposable
from reactivex.scheduler import TimeoutScheduler

from rxws._time import clock_of
from rxws.core.backoff import ExponentialBackoff
from rxws.events import ReconnectDenied, ReconnectProposed
from rxws.exceptions import ReconnectDeniedError

__all__ = ["Approval", "ApproveFn", "ReconnectProposal", "retry_with_backoff"]

_T = TypeVar("_T")
log = logging.getLogger("rxws.reconnect")

ReconnectProposal: TypeAlias = ReconnectProposed
"""What ``approve`` is asked about: the :class:`~rxws.events.ReconnectProposed` event."""

Approval: TypeAlias = bool | Awaitable[bool] | Observable[bool]
"""An answer to a proposal: now, later (awaited on the running asyncio loop), or first value."""

ApproveFn: TypeAlias = Callable[[ReconnectProposed], Approval]
"""The host's ``approve`` callback."""


def retry_with_backoff(
    backoff: ExponentialBackoff,
    *,
    approve: ApproveFn | None = None,
    retry_on: Callable[[Exception], bool] | None = None,
    # Notifications
    on_proposal: Callable[[ReconnectProposed], None] | None = None,
    on_denied: Callable[[ReconnectDenied], None] | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Re-subscribe the source after it errors, with backoff and the host's approval.

    Each subscription gets its own :class:`~rxws.core.backoff.BackoffState`. When the source
    errors with ``exc``:

    1. ``retry_on(exc)`` false: the error passes through at once (no proposal).
    2. the state's next delay is None (exhausted): ``on_denied`` is told and the error passes
       through unchanged — the last error is the result.
    3. otherwise a ``ReconnectProposed(attempt, delay, cause, at)`` goes to ``on_proposal`` and
       then to ``approve``, which answers with a bool, an awaitable of bool (awaited as a task
       on the running asyncio loop, or on an ``AsyncIOScheduler``'s loop, the answer brought
       back through the scheduler), or an observable whose first value counts (completing
       empty denies). No ``approve`` approves everything.
    4. approved: the source is subscribed again ``delay`` seconds after the approval, on the
       scheduler. Denied: ``on_denied`` is told and the result errors with
       :class:`~rxws.exceptions.ReconnectDeniedError` whose ``__cause__`` is ``exc``.
       An ``approve`` that raises — synchronously, through its awaitable or through its
       observable — is a denial too, the same in every form: ``on_denied`` gets
       ``ReconnectDenied(why="approve raised <Type>: <text>")``, a WARNING is logged with the
       traceback, and the result errors with ``ReconnectDeniedError`` (``__cause__``: ``exc``;
       the approve's exception is named in its message). The same holds for a ``retry_on`` that
       raises (``why="retry_on raised ..."``). An awaitable that is cancelled (not by disposal)
       counts as a denial. An ``on_proposal`` or ``on_denied`` that raises ends the result with
       its own exception.

    "Stable" connections: the first item after each (re)subscription marks the connection
    up (``state.on_connected``) and the error marks it down (``state.on_disconnected``), both at
    scheduler time, so the attempt counter resets only after ``backoff.stable_after`` seconds
    between a first item and the error.

    Disposing the subscription at any moment — while subscribed, awaiting approval (the asyncio
    task is cancelled) or waiting out the delay — cancels everything and leaves nothing
    scheduled.

    Marble (``~~~~`` the delay ``d1`` after approval; approve says yes, then no)::

        source (1st)   --a--b--#
        source (2nd)            ~~~~--c--#
        proposals              P1        P2 (denied)
        result         --a--b---------c--X

    ``P1`` approved: wait ``d1``, subscribe again. ``P2`` denied: ``X`` is a
    ``ReconnectDeniedError`` whose ``__cause__`` is the error ``#``. Had the policy been
    exhausted instead, ``X`` would be that ``#`` itself.

    Args:
        backoff: the policy; each subscription calls ``backoff.start()``.
        approve: asked before every attempt; see above.
        retry_on: which errors may be retried (default: all).
        on_proposal: told every proposal, before ``approve``.
        on_denied: told when an attempt is refused by ``approve`` or by an exhausted policy.
        scheduler: for delays and time; default the subscribe-time scheduler, else
            ``TimeoutScheduler``.

    Returns:
        An operator for ``Observable.pipe``.
    """

    def _retry_with_backoff(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched: abc.SchedulerBase = scheduler or scheduler_ or TimeoutScheduler.singleton()
            now = clock_of(sched)
            state = backoff.start()
            current = SerialDisposable()  # the source subscription
            step = SerialDisposable()  # the pending approval or delay
            disposed = False

            def subscribe_source() -> None:
                first = True

                def on_next(value: _T) -> None:
                    nonlocal first
                    if first:
                        first = False
                        state.on_connected(now())
                    observer.on_next(value)

                def on_error(exc: Exception) -> None:
                    state.on_disconnected(now())
                    current.disposable = Disposable()
                    try:
                        failed(exc)
                    except Exception as err:  # a host callback (on_proposal, approve, retry_on) raised
                        observer.on_error(err)

                # Its own slot: a synchronous error + re-subscription inside subscribe() must not
                # let this (dead) subscription overwrite the new one.
                slot = SingleAssignmentDisposable()
                current.disposable = slot
                slot.disposable = source.subscribe(
                    on_next, on_error, observer.on_completed, scheduler=scheduler_
                )

            def failed(exc: Exception) -> None:
                if retry_on is not None:
                    try:
                        retry = retry_on(exc)
                    except Exception as err:  # host code: a raising retry_on is a denial
                        host_failed(err, exc, state.attempt + 1, "retry_on raised")
                        return
                    if not retry:
                        observer.on_error(exc)
                        return
                delay = state.next_delay()
                if delay is None:
                    deny(exc, state.attempt, "backoff exhausted", wrap=False)
                    return
                proposal = ReconnectProposed(
                    attempt=state.attempt, delay=delay, cause=_describe(exc), at=now()
                )
                if on_proposal is not None:
                    on_proposal(proposal)
                if approve is None:
                    decided(True, exc, proposal)
                    return
                try:
                    answer = approve(proposal)
                except Exception as err:  # host code: a raising approve is a denial
                    fail_with(err, exc, proposal)
                    return
                ask(answer, exc, proposal)

            def ask(answer: Any, exc: Exception, proposal: ReconnectProposed) -> None:
                if isinstance(answer, abc.ObservableBase):
                    ask_observable(answer, exc, proposal)
                elif inspect.isawaitable(answer):
                    # The slot goes into ``step`` before the approval can start: on another thread's
                    # loop it may finish, and ``decided`` put its timer into ``step``, before
                    # _await_on_loop returns; assigning its disposable into ``step`` afterwards
                    # would dispose that timer (SerialDisposable disposes the value it replaces),
                    # and the approved retry would never come.
                    slot = SerialDisposable()
                    step.disposable = slot
                    slot.disposable = _await_on_loop(
                        answer,
                        sched,
                        lambda ok: decided(ok, exc, proposal),
                        lambda err: fail_with(err, exc, proposal),
                    )
                else:
                    decided(bool(answer), exc, proposal)

            def ask_observable(
                answer: abc.ObservableBase[Any], exc: Exception, proposal: ReconnectProposed
            ) -> None:
                done = False
                sub = SerialDisposable()
                step.disposable = sub

                def first_value(value: Any) -> None:
                    nonlocal done
                    if not done:
                        done = True
                        sub.dispose()
                        decided(bool(value), exc, proposal)

                def empty() -> None:
                    first_value(False)

                def errored(err: Exception) -> None:
                    nonlocal done
                    if not done:
                        done = True
                        fail_with(err, exc, proposal)

                d = answer.subscribe(first_value, errored, empty, scheduler=sched)
                if done:
                    d.dispose()
                else:
                    sub.disposable = d

            def decided(ok: bool, exc: Exception, proposal: ReconnectProposed) -> None:
                if disposed:
                    return
                if not ok:
                    deny(exc, proposal.attempt, "denied by approve", wrap=True)
                    return
                step.disposable = sched.schedule_relative(proposal.delay, lambda _s, _st: resubscribe())

            def resubscribe() -> None:
                if not disposed:
                    subscribe_source()

            def fail_with(err: Exception, exc: Exception, proposal: ReconnectProposed) -> None:
                how = "approve could not run" if isinstance(err, _NoLoop) else "approve raised"
                host_failed(err, exc, proposal.attempt, how)

            def host_failed(err: Exception, exc: Exception, attempt: int, how: str) -> None:
                if disposed:
                    return
                why = f"{how} {_describe(err)}"
                log.warning("reconnect attempt %d denied: %s", attempt, why, exc_info=err)
                deny(exc, attempt, why, wrap=True)

            def deny(exc: Exception, attempt: int, why: str, *, wrap: bool) -> None:
                if on_denied is not None:
                    on_denied(ReconnectDenied(attempt=attempt, why=why, at=now()))
                if wrap:
                    error = ReconnectDeniedError(f"reconnect attempt {attempt} {why}: {_describe(exc)}")
                    error.__cause__ = exc
                    observer.on_error(error)
                else:
                    observer.on_error(exc)

            def dispose() -> None:
                nonlocal disposed
                disposed = True
                step.dispose()
                current.dispose()

            subscribe_source()
            return Disposable(dispose)

        return Observable(subscribe)

    return _retry_with_backoff


class _NoLoop(RuntimeError):
    """An async ``approve`` with no asyncio loop to run it on."""


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _await_on_loop(
    awaitable: Awaitable[Any],
    sched: abc.SchedulerBase,
    on_result: Callable[[bool], None],
    on_error: Callable[[Exception], None],
) -> abc.DisposableBase:
    """Run ``awaitable`` on the asyncio loop; deliver its answer through ``sched``.

    The loop is the running one, else the loop of an ``AsyncIOScheduler`` (any thread).
    Returns a disposable that cancels the task and the delivery.
    """
    delivery = SerialDisposable()

    def deliver(result: Any, error: BaseException | None) -> None:
        def action(_s: abc.SchedulerBase, _st: Any) -> None:
            if error is not None:
                on_error(error if isinstance(error, Exception) else RuntimeError(repr(error)))
            else:
                on_result(bool(result))

        delivery.disposable = sched.schedule(action)

    def done(fut: Any) -> None:
        if fut.cancelled():  # by dispose (then delivery is disposed too) or by someone else: no
            deliver(False, None)
            return
        error = fut.exception()
        deliver(None if error is not None else fut.result(), error)

    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not None:
        task = asyncio.ensure_future(awaitable)
        task.add_done_callback(done)

        def cancel_task() -> None:
            task.cancel()
            delivery.dispose()

        return Disposable(cancel_task)
    loop = getattr(sched, "_loop", None)
    if isinstance(loop, asyncio.AbstractEventLoop) and not loop.is_closed():
        cfut = asyncio.run_coroutine_threadsafe(_as_coroutine(awaitable), loop)
        cfut.add_done_callback(done)

        def cancel_cfut() -> None:
            cfut.cancel()
            delivery.dispose()

        return Disposable(cancel_cfut)
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()  # a coroutine that will never run: no "never awaited" warning
    on_error(_NoLoop("approve returned an awaitable but no asyncio loop is running"))
    return Disposable()


async def _as_coroutine(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
