"""The executor contract on Ray: a local head with logical GPUs, started by the tests.

Marked `ray`: `make test` runs these after the rest, on their own, since a Ray head on two busy
cores can take a minute to answer.
"""

import sys
from collections.abc import Iterator

import pytest

from service.worker.executors.ray import RayExecutor
from tests.worker.conftest import ROOT
from tests.worker.test_executor_contract import (  # noqa: F401 - the shared contract
    test_a_job_becomes_a_run,
    test_a_wsd_job_becomes_a_run_per_branch,
    test_cancel_stops_the_job,
    test_unknown_handles_are_refused,
)

pytestmark = pytest.mark.ray


@pytest.fixture
def executor(ray_head: str) -> Iterator[RayExecutor]:
    made = RayExecutor(
        ray_head,
        slots=2,
        gpus_per_job=1,  # logical GPUs: the test head has two
        python=sys.executable,
        time_limit_s=120,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    yield made
    made.close()
