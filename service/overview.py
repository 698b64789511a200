"""What the dashboard shows about experiments: the list in a fixed number of queries whatever
their count (one per concept, not one per experiment), and one experiment's page."""

from dataclasses import dataclass

from sqlalchemy.orm import Session

from service.schemas.runs import RunFilter
from service.store import experiments as experiment_store
from service.store import fits as fit_store
from service.store import jobs as job_store
from service.store import runs as run_store
from service.store.models import Experiment, Fit, Job, Run


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


@dataclass(frozen=True)
class ExperimentDetail:
    """One experiment's page: its first runs, the fit in force and whether one is coming, and
    its newest jobs."""

    run_count: int
    runs: list[Run]
    current: Fit | None
    fit_pending: bool
    jobs: list[Job]


def experiment_detail(
    session: Session,
    experiment: Experiment,
    *,
    runs_shown: int,
    jobs_shown: int,
    law: str,
    method: str,
) -> ExperimentDetail:
    return ExperimentDetail(
        run_count=experiment_store.run_counts(session, [experiment.id]).get(experiment.id, 0),
        runs=run_store.list_page(session, experiment.id, RunFilter(), None, runs_shown),
        current=fit_store.current(session, experiment.id, law, method),
        fit_pending=fit_store.pending(session, experiment.id, law, method),
        jobs=job_store.list_page(
            session, job_store.JobFilter(experiment_id=experiment.id), None, jobs_shown
        ),
    )
