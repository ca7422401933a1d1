"""Shared fixtures: leak checks, a running MockVenue, virtual-time clients, event timelines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from cli_helpers import start_venue, stop
from harness import Timeline, Virtual

from rxws.testing import MockVenue


@pytest.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    """After the test (and every fixture set up after this one), no asyncio task is left running."""
    yield
    current = asyncio.current_task()
    left = {t for t in asyncio.all_tasks() if t is not current and not t.done()}
    if left:  # tasks that are finishing get a bounded moment; a leaked one never finishes
        await asyncio.wait(left, timeout=1.0)
    leaked = [t for t in left if not t.done()]
    assert not leaked, f"leaked tasks: {leaked}"


@pytest.fixture
async def venue(no_leaked_tasks: None) -> AsyncIterator[MockVenue]:
    """A started MockVenue on a free loopback port, publishing 50 messages/s per topic."""
    async with MockVenue(rate=50) as mock:
        yield mock


@pytest.fixture
def timeline() -> Callable[..., Timeline]:
    """``timeline(client)`` starts recording a client's states and events."""
    return Timeline


@pytest.fixture
def virtual() -> Virtual:
    return Virtual()


@pytest.fixture
def mock_venue() -> Iterator[str]:
    """``rxws mock-venue`` in a subprocess (for the CLI tests), 20 messages/s per topic; yields its URL."""
    proc, url = start_venue("--rate", "20")
    yield url
    status, _, err = stop(proc)
    assert status == 130, err
    assert "stopped by SIGINT" in err
