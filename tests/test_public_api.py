"""The public API: ``rxws.__all__`` against DESIGN.md section 3, and a docstring on every public name.

The project keeps its own copy of the design contract in ``docs/DESIGN.md`` (it travels with every
clone, so these checks run in CI too); the hard-coded contract below is checked as well.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import pkgutil
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import rxws
import rxws.ratelimit
import rxws.ratelimit.presets
from rxws import WebSocketClient

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT / "docs" / "DESIGN.md"

CONTRACT_ROOT = {
    "WebSocketClient",
    "ConnectionState",
    "ReconnectPolicy",
    "ExponentialBackoff",
    # errors
    "RxwsError",
    "RequestTimeout",
    "VenueError",
    "ConnectionLost",
    "RateLimitExceeded",
    "SubscriptionLimitExceeded",
    # events
    "Connected",
    "Disconnected",
    "ReconnectProposed",
    "ReconnectDenied",
    "Reconnected",
    "SubscriptionsRestored",
    "GapDetected",
    "MessageDropped",
    "DecodeFailed",
}
CONTRACT_SUBMODULES = {
    "rxws.protocols": {"GenericJson"},
    "rxws.testing": {"MockVenue"},
    "rxws.ratelimit": {
        "TokenBucket",
        "LeakyBucket",
        "SlidingWindow",
        "SlidingWindowCounter",
        "FixedWindow",
        "Decision",
        "RateLimiter",
        "WebSocketRateLimiter",
        "RateLimitEvent",
    },
    "rxws.ratelimit.presets": {
        "binance_spot",
        "binance_usdm",
        "okx",
        "bybit",
        "coinbase",
        "kraken",
        "deribit",
    },
}
EXTERNAL = {"Observable"}  # reactivex's, named in the contract's signatures

KNOWN_GAPS: set[str] = set()  # none left; add a name here only with a reason


def _all(module_name: str) -> set[str]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    assert names is not None, f"{module_name} has no __all__"
    return set(names)


def _public_modules() -> list[ModuleType]:
    """Every rxws module whose dotted name has no ``_``-prefixed part (``__main__`` runs the CLI)."""
    modules: list[ModuleType] = [rxws]
    for info in pkgutil.walk_packages(rxws.__path__, "rxws."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        try:
            modules.append(importlib.import_module(info.name))
        except ModuleNotFoundError as exc:  # an optional extra that is not installed here
            if exc.name is not None and exc.name.split(".")[0] == "rxws":
                raise
    return modules


PUBLIC_MODULES = _public_modules()


def _design_section_3() -> str:
    text = DESIGN.read_text(encoding="utf-8")
    match = re.search(r"^## 3\..*?(?=^## )", text, re.M | re.S)
    assert match, "DESIGN.md has no section 3"
    return match.group(0)


# Hard-coded contract --------------------------------------------------------------------------------
def test_contract_names_are_exported_from_rxws() -> None:
    missing = CONTRACT_ROOT - set(rxws.__all__)
    assert not missing, f"missing from rxws.__all__: {sorted(missing)}"
    for name in CONTRACT_ROOT:
        assert getattr(rxws, name) is not None


@pytest.mark.parametrize("module_name", sorted(CONTRACT_SUBMODULES))
def test_contract_names_are_exported_from_submodules(module_name: str) -> None:
    missing = CONTRACT_SUBMODULES[module_name] - _all(module_name)
    assert not missing, f"missing from {module_name}.__all__: {sorted(missing)}"


def test_presets_return_a_fresh_rate_limiter_each() -> None:
    for name in CONTRACT_SUBMODULES["rxws.ratelimit.presets"]:
        factory = getattr(rxws.ratelimit.presets, name)
        first, second = factory(), factory()
        assert isinstance(first, rxws.ratelimit.WebSocketRateLimiter)
        assert first is not second


def test_errors_share_one_root() -> None:
    for name in (
        "RequestTimeout",
        "VenueError",
        "ConnectionLost",
        "RateLimitExceeded",
        "SubscriptionLimitExceeded",
    ):
        assert issubclass(getattr(rxws, name), rxws.RxwsError), name


def test_every_name_in_all_exists() -> None:
    for module in PUBLIC_MODULES:
        for name in getattr(module, "__all__", ()):
            assert hasattr(module, name), f"{module.__name__}.__all__ names {name!r}, which is missing"


def _without_all() -> set[str]:
    return {f"{m.__name__} (no __all__)" for m in PUBLIC_MODULES if not hasattr(m, "__all__")}


def test_every_public_module_has_all() -> None:
    missing = _without_all() - KNOWN_GAPS
    assert not missing, f"public modules without __all__: {sorted(missing)}"


# DESIGN.md section 3 -------------------------------------------------------------------------------
def test_design_imports_resolve() -> None:
    """Every ``from rxws... import X`` in section 3 names something in that module's ``__all__``."""
    section = _design_section_3()
    imports = re.findall(r"^from (rxws[\w.]*) import ([\w, ]+)", section, re.M)
    assert imports, "section 3 shows no imports; has its format changed?"
    for module_name, names in imports:
        wanted = {n.strip() for n in names.split(",") if n.strip()}
        missing = wanted - _all(module_name)
        assert not missing, f"DESIGN.md imports {sorted(missing)} from {module_name}; not in its __all__"


def test_design_class_names_are_public() -> None:
    """Every CamelCase name in backticks in section 3 is exported by a public rxws module."""
    section = _design_section_3()
    names = set(re.findall(r"`([A-Z][a-z]\w*)", section))
    assert CONTRACT_ROOT & names, "section 3 names none of the contract; has its format changed?"
    exported = {n for m in PUBLIC_MODULES for n in getattr(m, "__all__", ())}
    missing = names - exported - EXTERNAL
    assert not missing, f"DESIGN.md section 3 names {sorted(missing)}, exported by no public module"


def test_design_errors_and_events_come_from_rxws() -> None:
    section = _design_section_3()
    errors = re.search(r"Errors:(.*?)importable from `rxws`", section, re.S)
    events = re.search(r"client\.events:(.*?)Frozen pydantic", section, re.S)
    assert errors and events, "section 3 no longer lists the errors and events; update this test"
    names = set(re.findall(r"`([A-Z]\w*)", errors.group(1) + events.group(1))) - {"Observable", "ClientEvent"}
    missing = names - set(rxws.__all__)
    assert not missing, f"not importable from rxws: {sorted(missing)}"


def test_design_presets_and_commands_exist() -> None:
    section = _design_section_3()
    calls = set(re.findall(r"`(\w+)\(\)`", section))
    presets = _all("rxws.ratelimit.presets")
    assert {"binance_spot", "deribit"} <= calls
    unknown = {c for c in calls if c not in presets and not hasattr(WebSocketClient, c)}
    assert not unknown, f"section 3 calls {sorted(unknown)}: neither a preset nor a client command"


# Docstrings -----------------------------------------------------------------------------------------
_AUTO_DOC = re.compile(r"^\w+\(.*\)$", re.S)  # what dataclasses and NamedTuples invent


def _own_doc(obj: Any) -> str | None:
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
        if doc and (_AUTO_DOC.match(doc.strip()) or doc.strip() == "An enumeration."):
            return None
        return doc  # type: ignore[no-any-return]
    return getattr(obj, "__doc__", None)


def _attribute_docstrings() -> set[str]:
    """Names assigned at module level in rxws and followed by a string literal (attribute docs)."""
    documented: set[str] = set()
    root = Path(rxws.__file__).parent
    for path in root.rglob("*.py"):
        body = ast.parse(path.read_text(encoding="utf-8")).body
        for node, after in itertools.pairwise(body):
            if not (isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)):
                continue
            if not isinstance(after.value.value, str):
                continue
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, ast.AnnAssign):
                targets = [node.target]
            documented |= {t.id for t in targets if isinstance(t, ast.Name)}
    return documented


def _undocumented() -> set[str]:
    attribute_docs = _attribute_docstrings()
    undocumented: set[str] = set()
    for module in PUBLIC_MODULES:
        if not (module.__doc__ or "").strip():
            undocumented.add(f"{module.__name__} (module)")
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj):
                if not (_own_doc(obj) or "").strip():
                    undocumented.add(f"{module.__name__}.{name}")
            elif name not in attribute_docs:  # a constant or alias: a string literal right under it
                undocumented.add(f"{module.__name__}.{name}")
    return undocumented


def test_every_public_name_has_a_docstring() -> None:
    missing = _undocumented() - KNOWN_GAPS
    assert not missing, "public names without a docstring:\n  " + "\n  ".join(sorted(missing))


def test_known_gaps_are_still_gaps() -> None:
    """An exemption that is no longer needed must be removed from KNOWN_GAPS."""
    assert not (KNOWN_GAPS - (_undocumented() | _without_all()))
