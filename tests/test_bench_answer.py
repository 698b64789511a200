"""The README's in-process answer benchmark runs from a clean checkout and reports its parts."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_answer_reports_the_uncached_answer_against_healthz() -> None:
    result = subprocess.run(
        [sys.executable, "bench/answer.py", "--calls", "20"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    ratio = re.search(r"answer/healthz = ([0-9.]+)", result.stdout)
    assert ratio is not None, result.stdout
    # A recomputed answer reads the database and walks 1,000 bootstrap samples: it cannot be
    # cheaper than a health probe.
    assert float(ratio.group(1)) > 1.0
    for part in ("reads (own transaction)", "answer", "JSON"):
        assert re.search(rf"{re.escape(part)}\s+[0-9]+ us", result.stdout), result.stdout
