"""Python client of scaling-service: `ScalingClient` (sync) and `AsyncScalingClient` (async).

```python
from service.client import ScalingClient

with ScalingClient() as client:  # $SCALING_URL, $SCALING_API_KEY
    client.create_experiment("chinchilla")
    client.import_runs("chinchilla", Path("runs.csv"))
    fit = client.create_fit("chinchilla", bootstrap=100)
    rec = client.recommend({"experiment": "chinchilla"}, {"flops": 5.88e23})
```

Responses are the service's own pydantic models (`service.schemas`).
"""

from service.client.aio import AsyncScalingClient
from service.client.core import NO_RETRY, CompareRow, Hardware, RetryPolicy, RunFilters
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

__all__ = [
    "NO_RETRY",
    "ApiError",
    "AsyncScalingClient",
    "AuthenticationError",
    "ClientError",
    "CompareRow",
    "ConflictError",
    "FitFailedError",
    "Hardware",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RetryPolicy",
    "RunFilters",
    "ScalingClient",
    "ServiceUnavailableError",
    "ValidationError",
]
