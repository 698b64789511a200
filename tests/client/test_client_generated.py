"""The sync client is generated from the async one: the checked-in file must be what
`make client` writes, or an edit to aio.py never reached `ScalingClient`."""

import inspect
import subprocess
import sys
from pathlib import Path

from service.client import AsyncScalingClient, ScalingClient

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_sync_client_is_generated_from_aio() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_sync_client.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )

    assert done.returncode == 0, done.stderr


def test_both_clients_have_the_same_methods() -> None:
    def methods(cls: type) -> set[str]:
        return {name for name, _ in inspect.getmembers(cls, inspect.isfunction)}

    renamed = {"__aenter__": "__enter__", "__aexit__": "__exit__"}

    assert {renamed.get(name, name) for name in methods(AsyncScalingClient)} == methods(
        ScalingClient
    )
    assert inspect.iscoroutinefunction(AsyncScalingClient.create_fit)
    assert not inspect.iscoroutinefunction(ScalingClient.create_fit)
