"""The in-process test double: the real app behind a ScalingClient, no port."""

from pathlib import Path

import pytest

from service.client import NotFoundError
from service.client.testing import in_process_client
from service.settings import Settings
from tests.client.conftest import EPOCH_CSV
from tests.conftest import ADMIN_TOKEN


def test_in_process_client(database_url: str) -> None:
    settings = Settings(database_url=database_url, bootstrap_admin_key=ADMIN_TOKEN)
    with in_process_client(settings, ADMIN_TOKEN) as api:
        api.create_experiment("exp")
        assert api.import_runs("exp", Path(EPOCH_CSV)).created == 245
        fit = api.create_fit("exp")
        assert fit.status == "succeeded"
        assert api.recommendation("exp", 1e22).params > 0
        with pytest.raises(NotFoundError):
            api.get_fit(fit.id + 1)
