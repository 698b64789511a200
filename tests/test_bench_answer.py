"""The README's in-process answer benchmark runs from a clean checkout and reports its parts on
both backends (PostgreSQL as the other tests find it: tests/conftest.py)."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import postgres_or_fail

ROOT = Path(__file__).resolve().parent.parent


def test_bench_answer_reports_the_uncached_answer_against_healthz() -> None:
    result = subprocess.run(
        [sys.executable, "bench/answer.py", "--calls", "20", "--postgres", postgres_or_fail()],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for backend in ("sqlite", "postgresql"):
        ratio = re.search(rf"{backend} .*answer/healthz = ([0-9.]+)", result.stdout)
        assert ratio is not None, result.stdout
        # A recomputed answer reads the database and walks 1,000 bootstrap samples: it cannot
        # be cheaper than a health probe.
        assert float(ratio.group(1)) > 1.0
        for part in ("read (own connection)", "answer", "JSON"):
            assert re.search(rf"{backend} +{re.escape(part)} +[0-9]+ us", result.stdout), (
                result.stdout
            )
