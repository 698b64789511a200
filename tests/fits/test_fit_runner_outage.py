"""The fit runner during a database outage: one warning, backed-off polls, one recovery line."""

import threading
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from structlog.testing import capture_logs

from service.fits.runner import FitRunner
from service.fits.service import FitPolicy


def test_an_outage_is_logged_once_and_polled_with_backoff() -> None:
    policy = FitPolicy(inline_max_bootstrap=0, refit_debounce=timedelta(0), lease=timedelta(1))
    runner = FitRunner(None, policy, poll_seconds=0.01)  # type: ignore[arg-type]
    calls = 0
    down = threading.Event()
    down.set()

    def run_once() -> bool:
        nonlocal calls
        calls += 1
        if down.is_set():
            raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
        return False

    runner.run_once = run_once  # type: ignore[method-assign]
    with capture_logs() as logs:
        runner.start()
        time.sleep(1.5)
        failed_calls = calls
        down.clear()
        time.sleep(1.5)
        runner.stop()
    events: list[Any] = [entry["event"] for entry in logs]
    assert events.count("fit_runner_unavailable") == 1
    assert events.count("fit_runner_recovered") == 1
    # 0.01 s polls would have made about 150 attempts in 1.5 s; backing off makes a handful.
    assert failed_calls <= 10
