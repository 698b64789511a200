"""Plans, jobs and the autopilot over HTTP."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from service.api.deps import (
    ExperimentDep,
    FitCacheDep,
    PageLimit,
    PageToken,
    Reader,
    SessionDep,
    SettingsDep,
    Writer,
    page_size,
)
from service.errors import InvalidInputError
from service.jobs import autofill
from service.jobs.planning import make_plan, queue_plan, queue_runs
from service.scaling import Plan
from service.schemas.common import MAX_ID, Page, errors
from service.schemas.jobs import (
    AutofillOut,
    AutofillSettings,
    JobOut,
    JobsCreate,
    JobStatus,
    PlanOut,
    PlanRequest,
)
from service.store import experiments as experiment_store
from service.store import jobs as store
from service.store.models import Job
from service.store.pagination import decode_token, split_page
from service.webhooks import events as webhook_events

router = APIRouter(tags=["jobs"])

JobId = Annotated[int, Path(ge=1, le=MAX_ID, description="The job's id.", examples=[1])]


def job_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        experiment=job.experiment.name,
        status=job.status,
        origin=job.origin,
        params=job.params,
        tokens=job.tokens,
        flops=job.flops,
        config=job.config,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        executor=job.executor,
        handle=job.handle,
        lease_owner=job.lease_owner,
        heartbeat_at=job.heartbeat_at,
        cancel_requested=job.cancel_requested,
        progress=job.progress,
        log_tail=job.log_tail,
        error=job.error,
        result_run_id=job.result_run_id,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def plan_out(plan: Plan) -> PlanOut:
    return PlanOut.model_validate({**plan.to_json(), "notes": list(plan.notes)})


@router.post(
    "/v1/experiments/{name}/plans",
    summary="Propose the next training runs",
    description="The planner's proposal, nothing queued: a cold start gets an IsoFLOP seed design "
    "(3+ budgets a decade apart, 5-7 sizes around the current guess of N_opt); with a fit, the "
    "runs that most reduce the uncertainty of N_opt at `target_flops` per FLOP. Never repeats a "
    "stored run or an active job. Needs `read`.",
    responses=errors(404),
)
def propose_plan(
    body: PlanRequest, experiment: ExperimentDep, session: SessionDep, cache: FitCacheDep, _: Reader
) -> PlanOut:
    return plan_out(make_plan(session, experiment, body, cache))


@router.post(
    "/v1/experiments/{name}/jobs",
    status_code=status.HTTP_201_CREATED,
    summary="Queue training jobs",
    description="Queue what the planner proposes now (`plan`) or explicit `runs` (params, tokens, "
    "seed, trainer config). A run that repeats a stored run or an active job is refused (409). "
    "A worker (`scaling-service worker`) runs them. Needs `write`.",
    responses=errors(404, 409),
)
def queue_jobs(
    body: JobsCreate,
    experiment: ExperimentDep,
    session: SessionDep,
    cache: FitCacheDep,
    _: Writer,
) -> list[JobOut]:
    if (body.plan is None) == (body.runs is None):
        raise InvalidInputError("give exactly one of plan, runs", field="plan")
    if body.plan is not None:
        jobs = queue_plan(
            session, experiment, body.plan, cache, "plan", body.max_attempts, trainer=body.trainer
        ).jobs
    else:
        assert body.runs is not None
        jobs = queue_runs(session, experiment, body.runs, "request", body.max_attempts)
    return [job_out(job) for job in jobs]


@router.get(
    "/v1/jobs",
    summary="List jobs",
    description="Newest first, filtered by experiment, status and origin. Needs `read`.",
    responses=errors(404),
)
def list_jobs(
    session: SessionDep,
    settings: SettingsDep,
    _: Reader,
    experiment: Annotated[str | None, Query(max_length=64)] = None,
    status: JobStatus | None = None,
    origin: Annotated[str | None, Query(max_length=16)] = None,
    limit: PageLimit = None,
    page_token: PageToken = None,
) -> Page[JobOut]:
    experiment_id = experiment_store.get_by_name(session, experiment).id if experiment else None
    where = store.JobFilter(experiment_id=experiment_id, status=status, origin=origin)
    filters = where.as_dict()
    size = page_size(limit, settings, default=100)
    rows = store.list_page(session, where, decode_token(page_token, filters), size + 1)
    page, next_token = split_page(rows, size, filters)
    return Page[JobOut](items=[job_out(job) for job in page], next_page_token=next_token)


@router.get(
    "/v1/jobs/{job_id}",
    summary="Get a job",
    description="Status, attempts, progress, the log's tail, the error, and the run it produced. "
    "Needs `read`.",
    responses=errors(404),
)
def get_job(job_id: JobId, session: SessionDep, _: Reader) -> JobOut:
    return job_out(store.get(session, job_id))


@router.post(
    "/v1/jobs/{job_id}:cancel",
    summary="Cancel a job",
    description="A queued job is cancelled at once; a running one is stopped by its worker "
    "(its process is killed) within a tick. 409 for a job already finished. Needs `write`.",
    responses=errors(404, 409),
)
def cancel_job(job_id: JobId, session: SessionDep, _: Writer) -> JobOut:
    job = store.request_cancel(session, store.get(session, job_id))
    if job.status in store.FINAL:  # a queued job ends now; a running one when its worker stops it
        webhook_events.job_finished(session, job)
    return job_out(job)


def _autofill_out(
    session: SessionDep, experiment: ExperimentDep, cache: FitCacheDep
) -> AutofillOut:
    now = autofill.status(session, experiment, cache)
    return AutofillOut(
        settings=autofill.settings_of(experiment),
        state=now.state,
        spent_flops=now.spent_flops,
        remaining_flops=now.remaining_flops,
        runs=now.runs,
        remaining_runs=now.remaining_runs,
        n_opt_width=now.n_opt_width,
        message=now.message,
    )


@router.get(
    "/v1/experiments/{name}/autofill",
    summary="The autopilot's settings and state",
    description="Compute spent and remaining, the current width of N_opt's interval at the "
    "target, and what the autopilot is doing. Needs `read`.",
    responses=errors(404),
)
def get_autofill(
    experiment: ExperimentDep, session: SessionDep, cache: FitCacheDep, _: Reader
) -> AutofillOut:
    return _autofill_out(session, experiment, cache)


@router.put(
    "/v1/experiments/{name}/autofill",
    summary="Configure the autopilot",
    description="When enabled, workers plan and queue runs for this experiment whenever none are "
    "in flight, refit, and stop once N_opt's 90% interval at `target_flops` is narrower than "
    "`stop_when_n_opt_width_below` or the experiment budget is spent. Needs `write`.",
    responses=errors(404),
)
def set_autofill(
    body: AutofillSettings,
    experiment: ExperimentDep,
    session: SessionDep,
    cache: FitCacheDep,
    _: Writer,
) -> AutofillOut:
    autofill.configure(session, experiment, body)
    return _autofill_out(session, experiment, cache)
