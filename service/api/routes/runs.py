"""Runs: batch ingestion, file import, filtered listing, exclusion."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from service.api.deps import (
    ExperimentDep,
    FitPolicyDep,
    PageLimit,
    PageToken,
    Reader,
    SessionDep,
    SettingsDep,
    Writer,
    page_size,
)
from service.api.json_body import JsonBody
from service.errors import InvalidInputError
from service.ingest import curation
from service.ingest.batch import ingest_runs
from service.ingest.collector import collector_paused
from service.ingest.tabular import parse_runs
from service.io.table import TableError, accepted_names, parse_mapping
from service.schemas.common import MAX_ID, Page, errors
from service.schemas.runs import (
    Curve,
    ImportResult,
    RunBatch,
    RunBatchResult,
    RunFilter,
    RunOut,
    RunPatch,
    check_curve_total,
)
from service.settings import Settings
from service.store import runs as store
from service.store.models import Run
from service.store.pagination import decode_token, split_page

router = APIRouter(tags=["runs"])

RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="The run's id.", examples=[1])]

CSV_EXAMPLE = "params,tokens,flops,loss,run_key\n8.0e8,6.25e9,3.0e19,2.70,sweep-3e19-n800m\n"
JSONL_EXAMPLE = '{"params": 4.0e8, "tokens": 1.25e10, "loss": 2.71, "run_key": "r1"}\n'


def run_out(run: Run, experiment_name: str, curve: Curve | None = None) -> RunOut:
    return RunOut(
        id=run.id,
        experiment=experiment_name,
        run_key=run.run_key,
        params=run.params,
        tokens=run.tokens,
        flops=run.flops,
        flops_derived=run.flops_derived,
        loss=run.loss,
        unique_tokens=run.unique_tokens,
        seed=run.seed,
        hyperparameters=run.hyperparameters,
        metadata=run.metadata_,
        source=run.source,
        excluded=run.excluded,
        excluded_reason=run.excluded_reason,
        loss_provenance=run.loss_provenance,
        cooldown_fraction=run.cooldown_fraction,
        trunk_key=run.trunk_key,
        curve_points=run.curve_points,
        curve=curve,
        created_at=run.created_at,
        updated_at=run.updated_at,
    )


def _check_batch_size(count: int, settings: Settings) -> None:
    if count > settings.max_batch_runs:
        raise InvalidInputError(
            f"a batch holds at most {settings.max_batch_runs} runs; this one has {count}",
            limit=settings.max_batch_runs,
            runs=count,
        )


def _rendered(result: RunBatchResult) -> Response:
    """JSON straight from the validated model: FastAPI would dump, revalidate and re-encode it,
    which for a 10,000-run batch costs as much as storing the runs."""
    return Response(
        result.model_dump_json(),
        media_type="application/json",
        status_code=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
    )


RUN_BATCH = JsonBody(RunBatch)


@router.post(
    "/v1/experiments/{name}/runs",
    status_code=status.HTTP_201_CREATED,
    summary="Add runs to an experiment",
    description="Store 1 to 10,000 runs, all or nothing. `flops` defaults to 6 * params * tokens "
    "(marked `flops_derived`). `loss_provenance` says how each loss was obtained "
    "(end_of_schedule when absent; after_cooldown needs `cooldown_fraction`); runs branched from "
    "one trunk share a `trunk_key`. A run may carry its loss `curve` ({tokens, loss}: at most "
    "10,000 points, tokens strictly increasing and not past the run's tokens, 1,000,000 points "
    "per batch), stored compactly and returned by GET /v1/runs/{id}?include=curve. "
    "A `run_key` makes the call idempotent: the same key with the same "
    "body is reported `existing` and stores nothing; with another body the whole batch is "
    "refused (409) naming the key. Reported flops that disagree with 6ND by more than 2x give a "
    "warning. 201 when anything was created, 200 when every run already existed. Needs `write`.",
    responses={200: {"description": "Every run already existed."}, **errors(404, 409, 413)},
    openapi_extra=RUN_BATCH.openapi_extra,
    response_model=RunBatchResult,
)
def add_runs(
    raw: Annotated[bytes, Depends(RUN_BATCH.read)],
    experiment: ExperimentDep,
    session: SessionDep,
    settings: SettingsDep,
    policy: FitPolicyDep,
    _: Writer,
) -> Response:
    with collector_paused():
        body = RUN_BATCH.parse(raw)
        _check_batch_size(len(body.runs), settings)
        return _rendered(ingest_runs(session, experiment, body.runs, policy))


async def _raw_body(request: Request) -> bytes:
    return await request.body()


def _import_format(request: Request, override: str | None, raw: bytes) -> Literal["csv", "jsonl"]:
    if override in ("csv", "jsonl"):
        return "csv" if override == "csv" else "jsonl"
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("text/csv", "application/csv"):
        return "csv"
    if content_type in ("application/x-ndjson", "application/jsonl", "application/json-lines"):
        return "jsonl"
    if content_type == "application/octet-stream":
        # A file as generated clients upload it: JSON lines open with "{", a CSV header cannot.
        return "jsonl" if raw.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") else "csv"
    raise InvalidInputError(
        "send CSV as text/csv or JSON lines as application/x-ndjson (or pass ?format=)",
        content_type=content_type or None,
    )


IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE},
            "application/x-ndjson": {"schema": {"type": "string"}, "example": JSONL_EXAMPLE},
            # How generators upload a file; CSV or JSON lines told apart by the first byte.
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "example": CSV_EXAMPLE,
            },
        },
    }
}


IMPORT_DESCRIPTION = " ".join(
    [
        "Column names match in any case, with spaces, `_` and `-` alike:",
        accepted_names() + ".",
        "Other columns (and `budget`, `experiment`, `outlier`) go to metadata;",
        "`column=NAME=HEADER` maps a header of yours (repeatable, e.g.",
        "`column=params=model_size`). CSV delimiters `,` `;` tab `|` are recognised.",
        "Without tokens, tokens = flops / (6 params). A row without a run_key gets one derived",
        "from its content (`derive_keys=false` turns that off), so a repeated import stores",
        "nothing twice and answers 200. All or nothing: a bad header or any bad row refuses the",
        "file with a report (422). Needs `write`.",
    ]
)


@router.post(
    "/v1/experiments/{name}/runs:import",
    status_code=status.HTTP_201_CREATED,
    summary="Import runs from CSV or JSON lines",
    description=IMPORT_DESCRIPTION,
    responses={200: {"description": "Every run already existed."}, **errors(404, 409, 413)},
    openapi_extra=IMPORT_BODY,
    response_model=ImportResult,
)
def import_runs(
    request: Request,
    _: Writer,  # before the body is read: a bad key never makes the server read 30 MB
    raw: Annotated[bytes, Depends(_raw_body)],
    experiment: ExperimentDep,
    session: SessionDep,
    settings: SettingsDep,
    policy: FitPolicyDep,
    format: Annotated[
        Literal["csv", "jsonl"] | None, Query(description="Overrides the Content-Type.")
    ] = None,
    column: Annotated[
        list[str],
        Query(
            max_length=20,
            description="NAME=HEADER: read column HEADER as NAME (params, tokens, flops, loss, "
            "unique_tokens, run_key, seed, source, budget, experiment, flag).",
            examples=["params=model_size"],
        ),
    ] = [],  # noqa: B006 - FastAPI copies query defaults
    derive_keys: Annotated[
        bool, Query(description="Key rows without a run_key by their content.")
    ] = True,
) -> Response:
    fmt = _import_format(request, format, raw)
    with collector_paused():
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInputError("the file is not UTF-8 text", byte=exc.start) from exc
        try:
            parsed = parse_runs(text, fmt, parse_mapping(column), derive_keys=derive_keys)
        except TableError as exc:
            raise InvalidInputError(str(exc), field="header") from exc
        if parsed.errors:
            rows = sorted({error["row"] for error in parsed.errors})
            raise InvalidInputError(
                f"{len(rows)} of {parsed.rows} rows are invalid; nothing was stored",
                errors=parsed.errors[:1000],
            )
        if not parsed.runs:
            raise InvalidInputError("the file has no data rows")
        try:
            check_curve_total(parsed.runs)
        except ValueError as exc:
            raise InvalidInputError(str(exc), field="curve") from exc
        _check_batch_size(len(parsed.runs), settings)
        result = ingest_runs(session, experiment, parsed.runs, policy)
        return _rendered(ImportResult.model_construct(**dict(result), rows=parsed.rows, format=fmt))


@router.get(
    "/v1/experiments/{name}/runs",
    summary="List an experiment's runs",
    description="Runs in id order, filtered by inclusive ranges of flops, params and tokens, by "
    "`excluded` and by `source`; keyset-paginated with an opaque `page_token`. Needs `read`.",
    responses=errors(404),
)
def list_runs(
    experiment: ExperimentDep,
    session: SessionDep,
    settings: SettingsDep,
    _: Reader,
    where: Annotated[RunFilter, Query()],
    limit: PageLimit = None,
    page_token: PageToken = None,
) -> Page[RunOut]:
    limit = page_size(limit, settings, default=100)
    filters = where.given()
    rows = store.list_page(
        session, experiment.id, where, decode_token(page_token, filters), limit + 1
    )
    page, next_token = split_page(rows, limit, filters)
    return Page[RunOut](
        items=[run_out(run, experiment.name) for run in page], next_page_token=next_token
    )


@router.get(
    "/v1/runs/{run_id}",
    summary="Get a run",
    description="One run by its id; `include=curve` adds its stored loss curve (`curve` is null "
    "when it has none). Needs the `read` scope.",
    responses=errors(404),
)
def get_run(
    run_id: RunId,
    session: SessionDep,
    _: Reader,
    include: Annotated[
        list[Literal["curve"]],
        Query(max_length=1, description="`curve`: the run's loss curve too."),
    ] = [],  # noqa: B006 - FastAPI copies query defaults
) -> RunOut:
    run = store.get(session, run_id)
    curve = None
    if "curve" in include and run.curve_points:
        tokens, loss = store.curve_of(session, run_id)
        curve = Curve.model_construct(tokens=tokens.tolist(), loss=loss.tolist())
    return run_out(run, run.experiment.name, curve)


@router.patch(
    "/v1/runs/{run_id}",
    summary="Exclude or include a run",
    description="Mark a run excluded from fits, with a reason (outliers are excluded, never "
    "dropped), or include it again. Needs the `write` scope.",
    responses=errors(404),
)
def update_run(
    run_id: RunId, body: RunPatch, session: SessionDep, policy: FitPolicyDep, _: Writer
) -> RunOut:
    run = curation.set_excluded(session, run_id, body.excluded, body.reason, policy)
    return run_out(run, run.experiment.name)
