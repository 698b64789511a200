"""A test double for code that uses the client: the real app in process, no server or port.

```python
from service.client.testing import in_process_client
from service.settings import Settings

with in_process_client(Settings(database_url="sqlite:///test.db", auth=False)) as api:
    my_training_script.report_runs(api)        # any code that takes a ScalingClient
    assert api.get_experiment("sweep").run_count == 12
```

The database must be migrated (`scaling-service migrate`, or alembic's `command.upgrade`).
Requests go through Starlette's TestClient (an httpx.Client), so every route, middleware and
error shape is the real one; fits queued in the background run only when `fit_runner` is on.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient

from service.app import create_app
from service.client.core import NO_RETRY
from service.client.sync import ScalingClient
from service.settings import Settings

BASE_URL = "http://scaling.test"


@contextmanager
def in_process_client(settings: Settings, api_key: str | None = None) -> Iterator[ScalingClient]:
    """A `ScalingClient` bound to `create_app(settings)` in this process."""
    with TestClient(create_app(settings), base_url=BASE_URL) as http:
        yield ScalingClient(BASE_URL, api_key, retry=NO_RETRY, http_client=http)
