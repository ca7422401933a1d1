"""SubscriptionSnapshot: what a client was told to watch, as a versioned, frozen pydantic model.

A snapshot lists the wanted topics with their state, the last sequence number seen and the
wall-clock time of the last message (or of when watching began), plus the protocol, the venue
and the URL it was taken against and when. It is pure data: :meth:`SubscriptionSnapshot.to_json`
and :meth:`SubscriptionSnapshot.from_json` convert it, and :mod:`rxws.subscriptions` does the
file I/O (atomic save) and the restoring.

``from_json`` never returns something half-valid: invalid JSON, a schema version this rxws does
not read, or fields that do not validate raise :class:`~rxws.exceptions.SnapshotError`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rxws.core.subscriptions import TopicState
from rxws.exceptions import SnapshotError

__all__ = ["SCHEMA_VERSION", "SubscriptionSnapshot", "TopicSnapshot"]

SCHEMA_VERSION = 1
"""The snapshot schema this rxws writes and reads."""


class TopicSnapshot(BaseModel):
    """One wanted topic in a snapshot."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: str = Field(min_length=1)
    state: TopicState
    """Where the topic stood with the venue when the snapshot was taken."""
    last_seq: int | None = None
    """The last sequence number seen (None: none seen, or gap detection was off)."""
    last_seen: datetime | None = None
    """Wall-clock time of the last message (or of when watching began); None when not tracked."""


class SubscriptionSnapshot(BaseModel):
    """The topics a client wanted, where each stood, and the venue they belong to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    protocol: str = Field(min_length=1)
    """The dialect's name (``VenueProtocol.name``): a snapshot restores only into the same one."""
    venue: str
    """The venue's host name, from the URL (the port is left out: a restarted server may move)."""
    url: str
    taken_at: datetime
    """Wall-clock time the snapshot was taken."""
    topics: tuple[TopicSnapshot, ...] = ()

    @field_validator("topics")
    @classmethod
    def _unique(cls, topics: tuple[TopicSnapshot, ...]) -> tuple[TopicSnapshot, ...]:
        seen: set[str] = set()
        for entry in topics:
            if entry.topic in seen:
                raise ValueError(f"topic {entry.topic!r} appears twice")
            seen.add(entry.topic)
        return topics

    @property
    def topic_names(self) -> list[str]:
        """The topics, in snapshot order."""
        return [t.topic for t in self.topics]

    def to_json(self) -> str:
        """The snapshot as indented JSON text."""
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, data: str | bytes, *, source: str = "snapshot") -> SubscriptionSnapshot:
        """Parse a snapshot saved by :meth:`to_json`.

        Args:
            data: the JSON text.
            source: what to call it in error messages (e.g. the file's path).

        Raises:
            SnapshotError: not JSON, another schema version, or fields that do not validate.
        """
        try:
            raw: Any = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise SnapshotError(f"{source} is not valid JSON (corrupt?): {exc}") from exc
        if not isinstance(raw, dict):
            raise SnapshotError(f"{source} is not a subscription snapshot: expected a JSON object")
        version = raw.get("schema_version")
        if type(version) is not int or version != SCHEMA_VERSION:
            raise SnapshotError(
                f"{source} has snapshot schema version {version!r}; this rxws reads version {SCHEMA_VERSION}"
            )
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(root)"
            raise SnapshotError(
                f"{source} is not a valid subscription snapshot: {exc.error_count()} error(s), "
                f"first at {where}: {first['msg']}"
            ) from exc
