"""One staleness rule: a fit is stale once the experiment's runs changed after it read them."""

import pytest

from service.fits.staleness import is_stale
from service.store.models import Experiment, Fit


@pytest.mark.parametrize(
    ("fit_version", "experiment_version", "stale"),
    [
        (3, 3, False),  # read the runs as they are
        (2, 3, True),  # runs changed since
        (0, 1, True),
        (None, 0, False),  # queued or running: it will read the runs as they are then
        (None, 5, False),
    ],
)
def test_a_fit_is_stale_when_runs_changed_after_it_read_them(
    fit_version: int | None, experiment_version: int, stale: bool
) -> None:
    fit = Fit(data_version=fit_version)
    experiment = Experiment(data_version=experiment_version)

    assert is_stale(fit, experiment) is stale
