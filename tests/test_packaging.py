"""rxws ships its types (PEP 561): ``rxws/py.typed`` is in the package and in the wheel's file
selection, and a user's mypy sees rxws's annotations."""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import rxws

PACKAGE = Path(rxws.__file__).resolve().parent
ROOT = PACKAGE.parent


def test_py_typed_is_in_the_package() -> None:
    marker = PACKAGE / "py.typed"
    assert marker.is_file()


def test_the_wheel_selection_takes_the_whole_package_and_ignores_nothing_of_py_typed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build = config["tool"]["hatch"]["build"]
    wheel = build["targets"]["wheel"]
    assert "rxws" in wheel["packages"]  # hatchling ships every file under it, py.typed included
    excluded = [*build.get("exclude", []), *wheel.get("exclude", [])]
    assert not [p for p in excluded if fnmatch.fnmatch("rxws/py.typed", p.lstrip("/"))]
    gitignore = ROOT / ".gitignore"  # hatchling also leaves out what git ignores
    patterns = gitignore.read_text().split() if gitignore.exists() else []
    assert not [p for p in patterns if fnmatch.fnmatch("py.typed", p) or fnmatch.fnmatch("rxws/py.typed", p)]


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed here")
def test_a_users_mypy_sees_rxws_types(tmp_path: Path) -> None:
    user = tmp_path / "user.py"
    user.write_text(
        "from rxws import WebSocketClient\n"
        "from rxws.protocols import GenericJson\n"
        "\n"
        'client = WebSocketClient("wss://example.test/ws", protocol=GenericJson())\n'
        "count: int = client.stats.internal_errors\n"
        "wrong: str = client.pending_requests\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # found like an installed package: PEP 561 applies
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "c"),
            "user.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout + done.stderr
    assert "py.typed" not in out and "import-untyped" not in out, out
    # exactly the deliberate mistake is found: mypy read rxws's annotations
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 1 and errors[0].startswith("user.py:6:") and '"int"' in errors[0], out
