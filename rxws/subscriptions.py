"""``client.subscriptions``: the host's view of its topics, snapshots, restore and verification.

:class:`SubscriptionManager` wraps the client's :class:`~rxws.core.subscriptions.SubscriptionRegistry`
and its :class:`~rxws.core.sequence.SequenceTracker`::

    snapshot = client.subscriptions.save("subs.json")        # atomic: temp file, fsync, rename
    ...                                                       # the process restarts
    client = WebSocketClient(url, protocol=GenericJson())
    client.subscriptions.restore(load_snapshot("subs.json"))  # wanted again, before connect()
    await client.connect()                                    # subscribed; data on client.messages
    drift = await client.subscriptions.verify()               # the venue's own list, compared

Restored topics are *pinned*: wanted with no observer, so they are subscribed on connect and
their data reaches ``client.messages``; a later ``watch()`` of one shares its subscription, and
:meth:`SubscriptionManager.unpin` lets it go once nobody watches it.

Times: a snapshot stores wall-clock times (``datetime`` in UTC). The tracker's scheduler times are
converted on the way out and back, so the first message after a restart reports a disconnect gap
whose window spans the real downtime.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from rxws._command import CommandResult
from rxws.core.sequence import SequenceTracker, TopicMark
from rxws.core.snapshot import SCHEMA_VERSION, SubscriptionSnapshot, TopicSnapshot
from rxws.core.subscriptions import SubscriptionRegistry, TopicRecord, TopicState
from rxws.events import SubscriptionDrift
from rxws.exceptions import SnapshotError, SubscriptionLimitExceeded, UsageError
from rxws.protocols.base import VenueProtocol

__all__ = [
    "ManagedTopics",
    "SubscriptionManager",
    "SubscriptionSnapshot",
    "TopicSnapshot",
    "load_snapshot",
    "save_snapshot",
    "venue_of",
]


def venue_of(url: str) -> str:
    """The venue a URL names, for snapshots: its host name (the port may change on a restart)."""
    return (urlsplit(url).hostname or "").lower()


def save_snapshot(snapshot: SubscriptionSnapshot, path: str | os.PathLike[str]) -> None:
    """Write ``snapshot`` as JSON to ``path`` atomically.

    The text goes to a temporary file in the same directory, is flushed to disk, and replaces
    ``path`` in one rename: a crash leaves the old file or the new one, never half of one.

    Raises:
        OSError: the directory is not writable (nothing is left behind).
    """
    target = Path(path)
    directory = target.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(snapshot.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable where the platform allows (POSIX)."""
    with contextlib.suppress(OSError, AttributeError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def load_snapshot(path: str | os.PathLike[str]) -> SubscriptionSnapshot:
    """Read a snapshot written by :func:`save_snapshot`.

    Raises:
        SnapshotError: the file cannot be read, is not JSON, has another schema version, or does
            not validate. The message names the file and what is wrong.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot {os.fspath(path)!r}: {exc}") from exc
    return SubscriptionSnapshot.from_json(data, source=f"snapshot file {os.fspath(path)!r}")


class ManagedTopics(Protocol):
    """What :class:`SubscriptionManager` needs of the client's topics part (``rxws._watching``)."""

    @property
    def registry(self) -> SubscriptionRegistry: ...
    @property
    def tracker(self) -> SequenceTracker | None: ...
    @property
    def protocol(self) -> VenueProtocol: ...
    @property
    def url(self) -> str: ...
    @property
    def request_timeout(self) -> float: ...
    def now(self) -> float: ...
    def closed(self) -> bool: ...
    def run(self, fn: Callable[[], None], result: CommandResult[Any] | None) -> None: ...
    def over_cap(self, topics: Sequence[str]) -> SubscriptionLimitExceeded | None: ...
    def pin(self, topics: Sequence[str], marks: Mapping[str, TopicMark]) -> None: ...
    def unpin(self, topics: Sequence[str]) -> None: ...
    def verify(self, timeout: float, result: CommandResult[SubscriptionDrift]) -> None: ...


class SubscriptionManager:
    """The topics a client wants and where each stands with the venue (``client.subscriptions``).

    Queries read the client's state directly (call them from the client's thread for an exact
    answer); commands that change it are marshalled onto the client's loop.
    """

    __slots__ = ("_client",)

    def __init__(self, client: ManagedTopics) -> None:
        self._client = client

    # Queries ------------------------------------------------------------------------------------
    @property
    def registry(self) -> SubscriptionRegistry:
        """The sans-I/O registry behind this view."""
        return self._client.registry

    @property
    def topics(self) -> list[str]:
        """The wanted topics: observed or pinned."""
        return self._client.registry.wanted()

    def states(self) -> dict[str, TopicState]:
        """Every known topic (including those being unsubscribed) and its state."""
        return self._client.registry.states()

    def get(self, topic: str) -> TopicRecord | None:
        """The record of ``topic`` (state, observers, pin), or None."""
        return self._client.registry.get(topic)

    def watched(self) -> list[str]:
        """Topics with at least one observer."""
        return self._client.registry.watched()

    def pinned(self) -> list[str]:
        """Topics wanted without needing an observer (restored, or pinned by the host)."""
        return self._client.registry.pinned()

    def in_state(self, *states: TopicState) -> list[str]:
        """Topics in any of ``states``."""
        return self._client.registry.in_state(*states)

    def __len__(self) -> int:
        return self._client.registry.wanted_count

    def __contains__(self, topic: object) -> bool:
        record = self._client.registry.get(topic) if isinstance(topic, str) else None
        return record is not None and record.wanted

    def __iter__(self) -> Iterator[str]:
        return iter(self.topics)

    # Snapshots ----------------------------------------------------------------------------------
    def snapshot(self) -> SubscriptionSnapshot:
        """The wanted topics, their states and last sequence numbers and times, as a snapshot."""
        client = self._client
        wall = datetime.now(UTC)
        now = client.now()
        tracker = client.tracker
        marks = tracker.snapshot() if tracker is not None else {}
        entries = []
        for record in client.registry.records():
            if not record.wanted:
                continue
            mark = marks.get(record.topic)
            last_seen = None
            if mark is not None and mark.last_time is not None:
                last_seen = wall - timedelta(seconds=max(0.0, now - mark.last_time))
            entries.append(
                TopicSnapshot(
                    topic=record.topic,
                    state=record.state,
                    last_seq=None if mark is None else mark.last_seq,
                    last_seen=last_seen,
                )
            )
        return SubscriptionSnapshot(
            schema_version=SCHEMA_VERSION,
            protocol=client.protocol.name,
            venue=venue_of(client.url),
            url=client.url,
            taken_at=wall,
            topics=tuple(entries),
        )

    def save(self, path: str | os.PathLike[str]) -> SubscriptionSnapshot:
        """Take a snapshot and write it to ``path`` atomically (see :func:`save_snapshot`)."""
        snapshot = self.snapshot()
        save_snapshot(snapshot, path)
        return snapshot

    load = staticmethod(load_snapshot)

    def restore(self, snapshot: SubscriptionSnapshot, *, same_venue: bool = True) -> list[str]:
        """Want every topic of ``snapshot`` again on this client, and resume gap tracking.

        The topics are pinned: subscribed on connect (now, when connected) and routed, so their
        data reaches ``client.messages`` with no observer; a later ``watch()`` shares them. Their
        last sequence numbers are loaded into the gap tracker (when gap detection is on), so each
        one's first message reports a ``"disconnect"`` gap covering the time since the last
        message before the snapshot. Topics already wanted stay as they are.

        Args:
            snapshot: from :meth:`snapshot` or :meth:`load`.
            same_venue: refuse a snapshot taken against another host (the default).

        Returns:
            The snapshot's topics.

        Raises:
            SnapshotError: another schema version, protocol or venue; nothing was changed.
            SubscriptionLimitExceeded: the topics would not fit under the venue's per-connection
                cap; nothing was changed.
            UsageError: the client is closed.
        """
        client = self._client
        if not isinstance(snapshot, SubscriptionSnapshot):
            raise UsageError(f"restore() takes a SubscriptionSnapshot, got {type(snapshot).__name__}")
        if snapshot.schema_version != SCHEMA_VERSION:
            raise SnapshotError(
                f"snapshot schema version {snapshot.schema_version}; this rxws reads {SCHEMA_VERSION}"
            )
        if snapshot.protocol != client.protocol.name:
            raise SnapshotError(
                f"the snapshot is of the {snapshot.protocol!r} protocol; "
                f"this client speaks {client.protocol.name!r}"
            )
        venue = venue_of(client.url)
        if same_venue and snapshot.venue != venue:
            raise SnapshotError(
                f"the snapshot was taken against venue {snapshot.venue!r}; this client connects to "
                f"{venue!r} (pass same_venue=False to restore it anyway)"
            )
        if client.closed():
            raise UsageError("the client is closed; create a new one")
        topics = snapshot.topic_names
        over = client.over_cap(topics)
        if over is not None:
            raise SubscriptionLimitExceeded(f"cannot restore the snapshot: {over}")
        marks = self._marks(snapshot)
        client.run(lambda: client.pin(topics, marks), None)
        return topics

    def _marks(self, snapshot: SubscriptionSnapshot) -> dict[str, TopicMark]:
        """The snapshot's wall-clock marks moved onto this client's scheduler clock."""
        if self._client.tracker is None:
            return {}
        wall = datetime.now(UTC)
        now = self._client.now()
        marks = {}
        for entry in snapshot.topics:
            when = None
            if entry.last_seen is not None:
                seen = entry.last_seen if entry.last_seen.tzinfo else entry.last_seen.replace(tzinfo=UTC)
                when = now - max(0.0, (wall - seen).total_seconds())
            marks[entry.topic] = TopicMark(entry.last_seq, when)
        return marks

    # Pins ---------------------------------------------------------------------------------------
    def pin(self, *topics: str) -> None:
        """Want ``topics`` with no observer: subscribed (on connect), data on ``client.messages``.

        Raises:
            SubscriptionLimitExceeded: past the venue's per-connection cap (nothing changed).
        """
        for topic in topics:
            if not isinstance(topic, str) or not topic:
                raise UsageError(f"topics must be non-empty strings, got {topic!r}")
        client = self._client
        unique = list(dict.fromkeys(topics))
        client.run(lambda: client.pin(unique, {}), None)

    def unpin(self, *topics: str) -> None:
        """Take the pin off ``topics``; each is unsubscribed once no observer watches it either."""
        client = self._client
        unique = list(dict.fromkeys(topics))
        client.run(lambda: client.unpin(unique), None)

    # The venue's view ---------------------------------------------------------------------------
    def verify(self, *, timeout: float | None = None) -> CommandResult[SubscriptionDrift]:
        """Ask the venue which topics this connection has and compare with the CONFIRMED set.

        The result is a :class:`~rxws.events.SubscriptionDrift`: ``missing_at_venue`` lists
        CONFIRMED topics the venue does not list, ``unexpected_at_venue`` topics it lists that the
        client neither has CONFIRMED nor has a (un)subscribe in flight for; both empty when in
        sync. A drift is also emitted on ``client.events``.

        Errors with :class:`~rxws.exceptions.UsageError` when the dialect cannot list
        subscriptions, :class:`~rxws.exceptions.NotConnected` when not connected, and as a
        request does otherwise (``RequestTimeout``, ``VenueError``, ``ConnectionLost``).
        """
        client = self._client
        result: CommandResult[SubscriptionDrift] = CommandResult("verify subscriptions")
        deadline = client.request_timeout if timeout is None else timeout
        if not deadline > 0:
            raise UsageError(f"timeout must be > 0, got {timeout!r}")
        client.run(lambda: client.verify(deadline, result), result)
        return result

    def __repr__(self) -> str:
        registry = self._client.registry
        return f"<SubscriptionManager {registry.wanted_count} wanted, {len(registry)} known>"
