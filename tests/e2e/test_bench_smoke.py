"""Smoke run of the enforcement-latency benchmark (bench/latency.py --quick): it must print its
figures and miss no enforcement. The figures themselves are not asserted (this is not a timed
test); docs/performance.md carries them."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.e2e.conftest import ROOT


def test_bench_latency_quick_prints_figures_and_misses_nothing(tmp_path):
    out = tmp_path / "latency.json"
    result = subprocess.run([sys.executable, "bench/latency.py", "--quick", "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines()
            if re.match(r"riskd\s+1\s+\d+\s+\d+\s+\d+\s+\d+\s+0\s+[\d.]+\s+[\d.]+\s+[\d.]+", line)]
    assert len(rows) == 2, result.stdout  # no stream, and 200 quotes/s
    assert "total missed enforcements: 0" in result.stdout
    assert out.exists()
