"""rxws.metrics imports without its extras; each exporter then says which extra it needs."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_the_package_imports_without_prometheus_client_or_opentelemetry() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["prometheus_client"] = None  # as if not installed
        sys.modules["opentelemetry"] = None
        import rxws.metrics
        from rxws.metrics import OtelExporter, PrometheusExporter
        for exporter, extra in ((PrometheusExporter, "rxws[prometheus]"), (OtelExporter, "rxws[otel]")):
            try:
                exporter()
            except ImportError as exc:
                assert extra in str(exc), exc
            else:
                raise AssertionError(f"{exporter.__name__}() did not fail")
        print("ok", len(rxws.metrics.SERIES))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok ")
