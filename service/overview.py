"""What the dashboard shows about many experiments at once, in a fixed number of queries
whatever their count (one per concept, not one per experiment)."""

from dataclasses import dataclass

from sqlalchemy.orm import Session

from service.store import experiments as experiment_store
from service.store import fits as fit_store
from service.store.models import Experiment, Fit


@dataclass(frozen=True)
class ExperimentSummary:
    """One experiment's line: its run count, the fit in force for the law and method asked
    for, and its newest fit of any kind."""

    experiment: Experiment
    runs: int
    current: Fit | None
    latest: Fit | None


def experiments_overview(
    session: Session, *, limit: int, law: str, method: str
) -> list[ExperimentSummary]:
    """The first ``limit`` experiments in id order, each with its summary: four queries."""
    experiments = experiment_store.list_page(session, None, limit)
    ids = [experiment.id for experiment in experiments]
    counts = experiment_store.run_counts(session, ids)
    current = fit_store.current_by_experiment(session, ids, law, method)
    latest = fit_store.latest_by_experiment(session, ids)
    return [
        ExperimentSummary(e, counts.get(e.id, 0), current.get(e.id), latest.get(e.id))
        for e in experiments
    ]
