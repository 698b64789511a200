"""Whether a fit is behind its experiment's runs: one rule for the API, recommendations and the
autopilot."""

from service.store.facts import AnyExperiment, AnyFit


def is_stale(fit: AnyFit, experiment: AnyExperiment) -> bool:
    """Runs were added, excluded or included since `fit` read them.

    A fit records the experiment's data version when it reads its runs (service.fits.service)
    or fails (service.fits.runner); until then, queued or running, it has none and is fresh:
    it will read the runs as they are when it runs.
    """
    return fit.data_version is not None and fit.data_version < experiment.data_version
