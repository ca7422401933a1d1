"""Small parts of the metrics core: the client's instrumentation sink, bounded labels, histograms."""

from __future__ import annotations

import importlib
from bisect import bisect_left
from typing import Any, Protocol, runtime_checkable

from rxws.exceptions import UsageError
from rxws.metrics._series import OTHER

__all__ = ["ClientInstrumentation", "LabelCap", "import_extra"]


@runtime_checkable
class ClientInstrumentation(Protocol):
    """What a client reports that its public streams do not say; called on the client's loop.

    A client offering ``add_instrumentation(sink) -> Disposable`` calls these; the exporters
    give it one sink per attached client (``exporter.sink(client)``).
    """

    def on_message(self, topic: str | None, nbytes: int, message: Any) -> None:
        """One inbound frame was decoded: its topic (None when not data), size and message."""

    def on_request_done(self, method: str, seconds: float, outcome: str) -> None:
        """A request ended ``seconds`` after it was sent; ``outcome`` is ``"ok"``, ``"error"``
        (a venue error reply), ``"timeout"``, ``"lost"`` (connection lost) or ``"cancelled"``."""


def import_extra(*modules: str, needed_by: str, package: str, extra: str) -> Any:
    """Import ``modules`` (dotted names) and return the first; an exporter's optional dependency.

    Raises:
        ImportError: one is missing; the message names ``package`` and the ``rxws[extra]`` to install.
    """
    try:
        loaded = [importlib.import_module(name) for name in modules]
    except ImportError as exc:
        raise ImportError(f"rxws.metrics.{needed_by} needs {package}: pip install 'rxws[{extra}]'") from exc
    return loaded[0]


class LabelCap:
    """Maps raw values to label values, keeping at most ``cap`` distinct ones; the rest: ``"other"``.

    The first ``cap`` values seen keep their own label; memory stays bounded whatever arrives.
    """

    __slots__ = ("_cap", "_known")

    def __init__(self, cap: int) -> None:
        if cap < 0:
            raise UsageError(f"a label cap must be >= 0, got {cap!r}")
        self._cap = cap
        self._known: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        label = self._known.get(value)
        if label is not None:
            return label
        if len(self._known) >= self._cap:
            return OTHER
        self._known[value] = value
        return value


class _Histogram:
    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> tuple[list[int], float, int]:
        out, total = [], 0
        for n in self.counts:
            total += n
            out.append(total)
        return out, self.sum, self.count
