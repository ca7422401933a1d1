"""Running the ``rxws`` command in a subprocess with the current interpreter, for the CLI tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0


def rxws(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rxws", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rxws", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> tuple[int, str, str]:
    """Send ``sig`` and collect the exit status and the rest of the output."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"did not stop on {signal.Signals(sig).name}:\n{out}\n{err}")
    return proc.returncode, out, err


def start_venue(*args: str) -> tuple[subprocess.Popen[str], str]:
    """``rxws mock-venue ARGS`` in a subprocess; returns it and its URL once it listens."""
    proc = spawn("mock-venue", *args)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on ws://127.0.0.1:" in line, line + (proc.stderr.read() if proc.stderr else "")
    return proc, line.split("listening on ")[1].split()[0]


def url_of(proc: subprocess.Popen[str]) -> str:
    """The URL a ``rxws mock-venue`` / ``rxws replay`` subprocess says it listens on."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on ws://127.0.0.1:" in line, line + (proc.stderr.read() if proc.stderr else "")
    return line.split("listening on ")[1].split()[0]
