"""Python client of scaling-service: `ScalingClient` (sync) and `AsyncScalingClient` (async).

```python
from service.client import ScalingClient

with ScalingClient() as client:  # $SCALING_URL, $SCALING_API_KEY
    client.create_experiment("chinchilla")
    client.import_runs("chinchilla", Path("runs.csv"))
    fit = client.create_fit("chinchilla", bootstrap=100)
    rec = client.recommend({"experiment": "chinchilla"}, {"flops": 5.88e23})

    # Training runs: what the planner proposes, queued as jobs a worker runs.
    plan = client.plan("bytes", target_flops=1e14, budget_flops=2e12, max_flops_per_run=1e11)
    jobs = client.queue_jobs("bytes", plan={"target_flops": 1e14, "budget_flops": 2e12,
                                            "max_flops_per_run": 1e11})
    done = client.wait_for_job(jobs[0].id, on_progress=lambda job: print(job.progress))
    client.set_autofill("bytes", AutofillSettings(enabled=True, experiment_budget_flops=2e12,
                                                  target_flops=1e14, max_flops_per_run=1e11))
```

Requests and responses are the service's own pydantic models (`service.schemas`, e.g.
`service.schemas.jobs.AutofillSettings`, `JobOut`, `PlanOut`).
"""

from service.client.aio import AsyncScalingClient
from service.client.core import NO_RETRY, RetryPolicy, RunFilters
from service.client.errors import (
    ApiError,
    AuthenticationError,
    ClientError,
    ConflictError,
    FitFailedError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ServiceUnavailableError,
    ValidationError,
)
from service.client.sync import ScalingClient
from service.schemas.catalogue import Hardware, PublishedLaw
from service.schemas.recommendations import CompareRow, Comparison

__all__ = [
    "NO_RETRY",
    "ApiError",
    "AsyncScalingClient",
    "AuthenticationError",
    "ClientError",
    "CompareRow",
    "Comparison",
    "ConflictError",
    "FitFailedError",
    "Hardware",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PublishedLaw",
    "RetryPolicy",
    "RunFilters",
    "ScalingClient",
    "ServiceUnavailableError",
    "ValidationError",
]
