"""README.md's tour runs as written: its code block, in a subprocess, against the embedded MockVenue."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tour() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## A tour in 20 lines\n+```python\n(.*?)^```", text, re.M | re.S)
    assert match, "README.md has no tour code block"
    return match.group(1)


def test_the_tour_runs_and_pairs_its_preset_with_its_dialect() -> None:
    code = tour()
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for text in ("CONNECTING", "CONNECTED", "kind='connected'", "state='CONFIRMED'", "{'x': 1}", "'stream':"):
        assert text in out, f"{text!r} missing from the tour's output:\n{out}"
    assert "Traceback" not in result.stderr
