"""Fixtures of the transport conformance suite: ``harness`` (every transport kind), ``wire`` (the
real-socket kinds), ``tls_files`` (a self-signed certificate made with the ``openssl`` CLI) and
``tls_venue`` (a wss:// venue serving it, and a client context trusting it)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from conformance_harness import KINDS, WIRE_KINDS, Harness, SocketVenue


async def _harness(kind: str) -> Harness:
    if kind == "picows":
        pytest.importorskip("picows", reason="picows is in the 'fast' extra")
    venue = None if kind == "memory" else await SocketVenue().start()
    return Harness(kind, venue)


@pytest.fixture(params=KINDS)
async def harness(request: pytest.FixtureRequest, no_leaked_tasks: None) -> AsyncIterator[Harness]:
    """A harness per transport kind: memory (virtual time), websockets and picows (loopback)."""
    h = await _harness(request.param)
    yield h
    await h.teardown()


@pytest.fixture(params=WIRE_KINDS)
async def wire(request: pytest.FixtureRequest, no_leaked_tasks: None) -> AsyncIterator[Harness]:
    """A harness per real-socket transport kind (for what only a wire has: TLS, frames, resets)."""
    h = await _harness(request.param)
    yield h
    await h.teardown()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost and its key, made with the ``openssl`` CLI
    (the ``cryptography`` package is not a dependency); the suite skips TLS without ``openssl``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], Any]]:
    """Every conformance test on the stock asyncio loop and, where installed, on uvloop."""
    factories: dict[str, Callable[[], Any]] = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories


@pytest.fixture
async def tls_venue(tls_files: tuple[Path, Path]) -> AsyncIterator[tuple[SocketVenue, ssl.SSLContext]]:
    """A started venue serving ``wss://`` with the test certificate, and a client-side context that
    trusts it (verification is on by default, so a client without it is refused)."""
    cert, key = tls_files
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    venue = await SocketVenue(tls=server_side).start()
    try:
        yield venue, ssl.create_default_context(cafile=str(cert))
    finally:
        await venue.stop()
