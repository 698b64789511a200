"""`scaling-service remote ...`: the API of a running server from the shell (typer + rich).

Tables for people by default, `--json` for scripts. The server is `--url` or `$SCALING_URL`
(default http://127.0.0.1:8000), the key `--api-key` or `$SCALING_API_KEY`. Errors print the
API's code and message (and an import's row errors as a table) and exit 1; an unreachable server
exits 3.

Groups: `experiments`, `runs`, `fits`, `keys`, `jobs`, `autofill`; top-level `fit`, `recommend`,
`compare`, `plan`, `laws`, `hardware`. New groups go in `register_groups` below.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import typer
from pydantic import ValidationError as InvalidRequest
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.progress_bar import ProgressBar
from rich.text import Text

from service.cli.options import (
    SCOPES,
    BudgetBindsOption,
    ConfidenceOption,
    InferenceTokensOption,
    JsonFlag,
    MaxParamsOption,
    MaxTokensOption,
    ParamsBudgetOption,
    PresetOption,
    ScopeOption,
    TargetLossOption,
    TokensBudgetOption,
    UniqueTokensOption,
)
from service.cli.output import (
    KEY_COLUMNS,
    Column,
    PlainTable,
    count,
    echo_json,
    print_list,
    table_of,
)
from service.client import (
    ApiError,
    ConflictError,
    FitFailedError,
    RetryPolicy,
    RunFilters,
    ScalingClient,
)
from service.client.core import ImportFormat
from service.io.table import TableError, accepted_names, parse_mapping
from service.schemas.catalogue import Hardware, PublishedLaw
from service.schemas.experiments import ExperimentOut, FlopsFormula, ParamConvention
from service.schemas.fits import FitOut, LawName, MethodName
from service.schemas.jobs import AutofillOut, JobOut, JobStatus, PlannedRunOut, PlanOut
from service.schemas.recommendations import Comparison, Recommendation
from service.schemas.runs import LossProvenance, RunOut

remote_app = typer.Typer(
    help="Use a running server over HTTP (--url or $SCALING_URL; key --api-key or "
    "$SCALING_API_KEY).",
    no_args_is_help=True,
)
experiments_app = typer.Typer(
    help="Create, list, show and delete experiments.", no_args_is_help=True
)
runs_app = typer.Typer(help="Import, list, exclude and include runs.", no_args_is_help=True)
fits_app = typer.Typer(
    help="List and show fits (request one with `remote fit`).", no_args_is_help=True
)
keys_app = typer.Typer(help="API keys through the API (needs an admin key).", no_args_is_help=True)
jobs_app = typer.Typer(
    help="Queue, list, show, cancel and watch training jobs (a worker runs them).",
    no_args_is_help=True,
)
autofill_app = typer.Typer(
    help="The autopilot: workers plan, run and refit until N_opt is certain or the budget spent.",
    no_args_is_help=True,
)

JobOrigin = Literal["request", "plan", "autofill"]
ExperimentArg = Annotated[str, typer.Argument(help="The experiment's name.")]

EXIT_API_ERROR = 1
EXIT_UNREACHABLE = 3


@dataclass
class Remote:
    url: str | None
    api_key: str | None
    timeout: float
    retries: int

    def client(self) -> ScalingClient:
        return ScalingClient(
            self.url,
            self.api_key,
            timeout=self.timeout,
            retry=RetryPolicy(attempts=max(1, self.retries + 1)),
        )


def _err() -> Console:
    return Console(stderr=True, soft_wrap=True)


@remote_app.callback()
def remote_options(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(envvar="SCALING_URL", help="Server URL (default: http://127.0.0.1:8000)."),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="SCALING_API_KEY", help="API key (bearer token).", show_default=False),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 30.0,
    retries: Annotated[int, typer.Option(min=0, help="Retries on 503 / connection errors.")] = 3,
) -> None:
    ctx.obj = Remote(url, api_key, timeout, retries)


@contextmanager
def _api(ctx: typer.Context) -> Iterator[ScalingClient]:
    """A client for the command; API and connection errors become messages and exit codes."""
    remote: Remote = ctx.find_object(Remote) or Remote(None, None, 30.0, 3)
    client = remote.client()
    try:
        yield client
    except ApiError as exc:
        _print_api_error(exc)
        raise typer.Exit(EXIT_API_ERROR) from exc
    except InvalidRequest as exc:  # the request's own checks, before anything is sent
        _err().print(f"[red]invalid request:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    except FitFailedError as exc:
        _err().print(f"[red]fit {exc.fit.id} failed:[/red] {escape(json.dumps(exc.fit.error))}")
        raise typer.Exit(EXIT_API_ERROR) from exc
    except TimeoutError as exc:
        _err().print(f"[red]timed out:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_API_ERROR) from exc
    except httpx.TransportError as exc:
        _err().print(f"[red]cannot reach {escape(client.url)}:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_UNREACHABLE) from exc
    finally:
        client.close()


ROW_ERROR_COLUMNS: list[Column[dict[str, Any]]] = [
    Column("row", lambda item: str(item.get("row", ""))),
    Column("field", lambda item: str(item.get("field") or "")),
    Column("message", lambda item: str(item["message"])),
]


def _print_api_error(exc: ApiError) -> None:
    err = _err()
    err.print(f"[red]error {exc.status} {escape(exc.code)}:[/red] {escape(exc.message)}")
    rows = exc.row_errors
    if rows:
        err.print(table_of(rows[:200], ROW_ERROR_COLUMNS, count(len(rows), "row error")))
        if len(rows) > 200:
            err.print(f"... and {len(rows) - 200} more")
    elif exc.details:
        err.print(json.dumps(exc.details, indent=2))


def _fmt(value: float | int | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4g}"


# -- experiments ---------------------------------------------------------------------------------


EXPERIMENT_COLUMNS: list[Column[ExperimentOut]] = [
    Column("name", lambda e: e.name),
    Column("runs", lambda e: str(e.run_count)),
    Column("params", lambda e: e.param_convention),
    Column("flops", lambda e: e.flops_formula),
    Column("description", lambda e: e.description),
]


@experiments_app.command("list")
def experiments_list(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List every experiment."""
    with _api(ctx) as api:
        items = list(api.iter_experiments())
    print_list(items, EXPERIMENT_COLUMNS, title="experiments", json_out=json_out)


@experiments_app.command("create")
def experiments_create(
    ctx: typer.Context,
    name: ExperimentArg,
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    param_convention: Annotated[
        ParamConvention, typer.Option(help="Chinchilla counts total, Kaplan non_embedding.")
    ] = "total",
    flops_formula: Annotated[
        FlopsFormula, typer.Option(help="FLOPs as 6ND or as the runs report them.")
    ] = "6ND",
    json_out: JsonFlag = False,
) -> None:
    """Create an experiment."""
    with _api(ctx) as api:
        experiment = api.create_experiment(
            name,
            description=description,
            param_convention=param_convention,
            flops_formula=flops_formula,
        )
    if json_out:
        echo_json(experiment)
    else:
        _err().print(f"created experiment {escape(experiment.name)}")


@experiments_app.command("show")
def experiments_show(ctx: typer.Context, name: ExperimentArg, json_out: JsonFlag = False) -> None:
    """Show one experiment."""
    with _api(ctx) as api:
        experiment = api.get_experiment(name)
    if json_out:
        echo_json(experiment)
        return
    table = PlainTable(show_header=False, title=f"experiment {name}")
    for key, value in experiment.model_dump(mode="json").items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    Console().print(table)


@experiments_app.command("delete")
def experiments_delete(
    ctx: typer.Context,
    name: ExperimentArg,
    force: Annotated[bool, typer.Option(help="Delete its runs too.")] = False,
) -> None:
    """Delete an experiment (refused while it has runs, unless --force)."""
    with _api(ctx) as api:
        try:
            api.delete_experiment(name, force=force)
        except ConflictError as exc:
            # The API's words name its query parameter; here the switch is --force.
            _err().print(
                f"[red]error:[/red] {escape(name)} still has runs: --force deletes them too"
            )
            raise typer.Exit(1) from exc
    _err().print(f"deleted experiment {escape(name)}")


# -- runs ----------------------------------------------------------------------------------------


@runs_app.command("import")
def runs_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV or JSON-lines file of runs.", exists=True)],
    experiment: Annotated[str, typer.Option("--experiment", "-e", help="Experiment name.")],
    format: Annotated[
        ImportFormat | None, typer.Option(help="Default: from the file's suffix.")
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=HEADER: read your column HEADER as NAME, e.g. params=model_size "
            "(repeatable). Recognised without it: " + accepted_names() + "."
        ),
    ] = None,
    derive_keys: Annotated[
        bool,
        typer.Option(
            "--derive-keys/--no-derive-keys",
            help="Key rows without a run_key by their content, so importing a file twice "
            "stores it once.",
        ),
    ] = True,
    json_out: JsonFlag = False,
) -> None:
    """Import a file of runs, all or nothing; bad rows are listed and nothing is stored."""
    try:
        columns = parse_mapping(column or [])
    except TableError as exc:
        _err().print(f"[red]error:[/red] --column: {escape(str(exc))}")
        raise typer.Exit(2) from exc
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=_err(),
        transient=True,
        disable=json_out,
    )
    with _api(ctx) as api, progress:
        task = progress.add_task(f"uploading {escape(file.name)}", total=file.stat().st_size)

        def report(sent: int, total: int) -> None:
            progress.update(task, completed=sent, total=total)
            if sent >= total:
                progress.update(task, description=f"storing {escape(file.name)}")

        result = api.import_runs(
            experiment,
            file,
            format=format,
            progress=report,
            columns=columns,
            derive_keys=derive_keys,
        )
    if json_out:
        echo_json(result)
        return
    err = _err()
    err.print(
        f"{escape(file.name)}: {count(result.rows, 'row')}, "
        f"{count(result.created, 'run')} created, {result.existing} already stored "
        f"(experiment {experiment})"
    )
    for warning in result.warnings:
        where = f"row {warning.row}: " if warning.row is not None else ""
        err.print(f"[yellow]warning:[/yellow] {escape(where)}{escape(warning.message)}")


RUN_COLUMNS: list[Column[RunOut]] = [
    Column("id", lambda r: str(r.id)),
    Column("run_key", lambda r: r.run_key or ""),
    Column("params", lambda r: _fmt(r.params)),
    Column("tokens", lambda r: _fmt(r.tokens)),
    Column("flops", lambda r: _fmt(r.flops)),
    Column("loss", lambda r: f"{r.loss:.4f}"),
    Column("provenance", lambda r: _provenance(r)),
    Column("trunk", lambda r: r.trunk_key or ""),
    Column("excluded", lambda r: r.excluded_reason or "" if r.excluded else ""),
]


def _provenance(run: RunOut) -> str:
    if run.loss_provenance == "after_cooldown":
        return f"after_cooldown ({run.cooldown_fraction:g})"
    return run.loss_provenance


@runs_app.command("list")
def runs_list(
    ctx: typer.Context,
    experiment: ExperimentArg,
    flops_min: Annotated[float | None, typer.Option()] = None,
    flops_max: Annotated[float | None, typer.Option()] = None,
    params_min: Annotated[float | None, typer.Option()] = None,
    params_max: Annotated[float | None, typer.Option()] = None,
    excluded: Annotated[
        bool | None, typer.Option("--excluded/--included", help="Only excluded / included runs.")
    ] = None,
    source: Annotated[str | None, typer.Option()] = None,
    provenance: Annotated[
        LossProvenance | None,
        typer.Option(help="Only runs whose loss was obtained this way."),
    ] = None,
    trunk: Annotated[str | None, typer.Option(help="Only the runs of this trunk_key.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many runs (default: all).")] = (
        None
    ),
    json_out: JsonFlag = False,
) -> None:
    """List an experiment's runs (every page), filtered."""
    filters = RunFilters(
        flops_min=flops_min,
        flops_max=flops_max,
        params_min=params_min,
        params_max=params_max,
        excluded=excluded,
        source=source,
        loss_provenance=provenance,
        trunk_key=trunk,
    )
    with _api(ctx) as api:
        runs: list[RunOut] = []
        for run in api.iter_runs(experiment, filters, page_size=min(limit or 1000, 1000)):
            if limit is not None and len(runs) >= limit:
                break
            runs.append(run)
    print_list(runs, RUN_COLUMNS, title="runs", json_out=json_out)


@runs_app.command("show")
def runs_show(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(help="The run's id.")],
    curve: Annotated[bool, typer.Option(help="Also print its stored loss curve.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Show one run: sizes, loss and how it was obtained, and (--curve) its loss curve."""
    with _api(ctx) as api:
        run = api.get_run(run_id, include_curve=curve)
    if json_out:
        echo_json(run)
        return
    table = PlainTable(show_header=False, title=f"run {run_id}")
    for key, value in run.model_dump(mode="json", exclude={"curve"}).items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    Console().print(table)
    if run.curve is not None:
        points = PlainTable("tokens", "loss", title=f"loss curve ({run.curve_points} points)")
        for tokens, loss in zip(run.curve.tokens, run.curve.loss, strict=True):
            points.add_row(_fmt(tokens), f"{loss:.4f}")
        Console().print(points)


@runs_app.command("exclude")
def runs_exclude(
    ctx: typer.Context,
    run_ids: Annotated[list[int], typer.Argument(help="One or more run ids.")],
    reason: Annotated[str, typer.Option(help="Why (kept with the run).")],
) -> None:
    """Exclude runs from fits (they stay stored)."""
    with _api(ctx) as api:
        for run_id in run_ids:
            api.exclude_run(run_id, reason)
    _err().print(f"excluded {count(len(run_ids), 'run')}")


@runs_app.command("include")
def runs_include(
    ctx: typer.Context,
    run_ids: Annotated[list[int], typer.Argument(help="One or more run ids.")],
) -> None:
    """Include excluded runs again."""
    with _api(ctx) as api:
        for run_id in run_ids:
            api.include_run(run_id)
    _err().print(f"included {count(len(run_ids), 'run')}")


# -- fits ----------------------------------------------------------------------------------------


def _print_fit(fit: FitOut, plot_url: str) -> None:
    console = Console()
    runs = "? runs" if fit.n_runs is None else count(fit.n_runs, "run")
    title = f"fit {fit.id}: {fit.law} {fit.method} on {runs} ({fit.status})"
    table = PlainTable("parameter", "estimate", "95% interval", title=title)
    intervals = fit.intervals_95 or {}
    for name, value in (fit.parameters or {}).items():
        interval = intervals.get(name)
        shown = f"{interval[0]:.4g} – {interval[1]:.4g}" if interval else "-"
        table.add_row(name, _fmt(value), shown)
    console.print(table)
    if fit.goodness is not None:
        console.print(
            f"RMSE log loss {_fmt(fit.goodness.rmse_log_loss)}, extrapolation error "
            f"{_fmt(fit.goodness.extrapolation_error)}, bootstrap resamples "
            f"{fit.bootstrap_samples}, converged {fit.goodness.converged}"
        )
    for warning in fit.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(str(warning))}")
    for dropped in fit.dropped_runs:
        shown = ", ".join(str(i) for i in dropped.run_ids[:10])
        more = " ..." if dropped.count > 10 else ""
        console.print(f"left out ({dropped.reason}): runs {shown}{more}")
    if fit.status == "succeeded":
        console.print("plots: " + plot_url.replace("KIND", "{isoflop,frontier,residuals}"))


def fit_command(
    ctx: typer.Context,
    experiment: ExperimentArg,
    law: Annotated[LawName, typer.Option(help="The law's form.")] = "chinchilla",
    method: Annotated[MethodName, typer.Option(help="How it is fitted.")] = "parametric",
    bootstrap: Annotated[int, typer.Option(min=0, help="Bootstrap resamples.")] = 0,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    include_mid_schedule: Annotated[
        bool,
        typer.Option(
            help="Also fit runs whose loss was read mid-schedule (left out by default, and "
            "reported)."
        ),
    ] = False,
    wait: Annotated[bool, typer.Option(help="Follow a background fit to its end.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for it.")] = 3600.0,
    json_out: JsonFlag = False,
) -> None:
    """Fit a scaling law to an experiment's runs on the server (live progress with --wait)."""
    spec: dict[str, Any] = {"law": law, "method": method, "bootstrap": bootstrap, "seed": seed}
    if include_mid_schedule:
        spec["include_mid_schedule"] = True
    with _api(ctx) as api:
        fit = api.create_fit(experiment, spec)
        if wait and fit.status in ("queued", "running"):
            progress = Progress(
                TextColumn("[bold]fit {task.fields[fit_id]} {task.fields[status]}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeRemainingColumn(),
                console=_err(),
                transient=True,
                disable=json_out,
            )
            with progress:
                task = progress.add_task("fit", total=1.0, fit_id=fit.id, status=fit.status)

                def report(state: FitOut) -> None:
                    progress.update(task, completed=state.progress, status=state.status)

                fit = api.wait_for(fit.id, timeout=timeout, on_progress=report)
        plot_url = api.plot_url(fit.id, "KIND")
    if json_out:
        echo_json(fit)
    elif fit.status in ("queued", "running"):
        _err().print(f"fit {fit.id} is {fit.status}: `remote fits show {fit.id}` follows it")
    else:
        _print_fit(fit, plot_url)


FIT_COLUMNS: list[Column[FitOut]] = [
    Column("id", lambda f: str(f.id)),
    Column("law", lambda f: f.law),
    Column("method", lambda f: f.method),
    Column("status", lambda f: f.status),
    Column("runs", lambda f: str(f.n_runs or "")),
    Column("stale", lambda f: "yes" if f.stale else ""),
    Column("created", lambda f: f.created_at.isoformat(timespec="seconds")),
]


@fits_app.command("list")
def fits_list(ctx: typer.Context, experiment: ExperimentArg, json_out: JsonFlag = False) -> None:
    """An experiment's fits, newest first."""
    with _api(ctx) as api:
        fits = list(api.iter_fits(experiment))
    print_list(fits, FIT_COLUMNS, title="fits", json_out=json_out)


@fits_app.command("show")
def fits_show(
    ctx: typer.Context, fit_id: Annotated[int, typer.Argument()], json_out: JsonFlag = False
) -> None:
    """One fit: parameters, intervals, goodness, or its progress."""
    with _api(ctx) as api:
        fit = api.get_fit(fit_id)
        plot_url = api.plot_url(fit.id, "KIND")
    if json_out:
        echo_json(fit)
    else:
        if fit.status in ("queued", "running"):
            eta = f", about {fit.eta_seconds:.0f} s left" if fit.eta_seconds is not None else ""
            _err().print(f"fit {fit.id} {fit.status}: {fit.progress:.0%}{eta}")
        _print_fit(fit, plot_url)


# -- recommendations -----------------------------------------------------------------------------


def _print_recommendation(rec: Recommendation) -> None:
    source = rec.source
    what = f"fit {source.fit_id} of {source.experiment}" if source.kind == "fit" else source.preset
    table = PlainTable("quantity", "value", f"{rec.confidence:.0%} interval", title=f"from {what}")
    for name in ("params", "tokens", "tokens_per_param", "flops", "loss", "gpu_hours", "cost_usd"):
        value = getattr(rec, name)
        interval = rec.intervals.get(name)
        shown = f"{interval.low:.4g} – {interval.high:.4g}" if interval else "-"
        table.add_row(name, _fmt(value), shown)
    if rec.shape:
        table.add_row(
            "shape",
            f"{count(rec.shape['n_layer'], 'layer')} x d_model {rec.shape['d_model']}",
            "",
        )
    hyper = rec.hyperparameters
    if hyper is not None:
        for name, h in (
            ("learning_rate", hyper.learning_rate),
            ("batch_size_tokens", hyper.batch_size_tokens),
        ):
            shown = f"{h.interval[0]:.4g} – {h.interval[1]:.4g}" if h.interval else "-"
            table.add_row(name, _fmt(h.value), shown)
    if rec.inference_flops > 0:
        table.add_row("inference_flops", _fmt(rec.inference_flops), "-")
        table.add_row("total_flops", _fmt(rec.total_flops), "-")
    ref = rec.equal_loss_optimum
    if ref is not None:
        table.add_row(
            "compute-optimal, equal loss",
            f"{_fmt(ref.params)} params, {_fmt(ref.tokens)} tokens",
            f"total {_fmt(ref.total_flops)}",
        )
    console = Console()
    console.print(table)
    if hyper is not None:
        console.print(
            escape(f"learning rate: {hyper.learning_rate.rule} ({hyper.learning_rate.source})")
        )
        console.print(
            escape(f"batch size: {hyper.batch_size_tokens.rule} ({hyper.batch_size_tokens.source})")
        )
    for binding in rec.binding:
        console.print(f"binding constraint: {escape(str(binding))}")
    for note in rec.notes:
        console.print(f"note: {escape(note)}")
    for warning in [*rec.warnings, *(hyper.warnings if hyper is not None else [])]:
        console.print(f"[yellow]warning:[/yellow] {escape(str(warning))}")


def recommend_command(
    ctx: typer.Context,
    experiment: Annotated[
        str | None, typer.Argument(help="Use this experiment's current fit.")
    ] = None,
    preset: PresetOption = None,
    fit_id: Annotated[int | None, typer.Option("--fit-id", help="Or a fit by id.")] = None,
    law: Annotated[LawName, typer.Option(help="Law of the experiment's fit.")] = "chinchilla",
    method: Annotated[MethodName, typer.Option(help="Method of the experiment's fit.")] = (
        "parametric"
    ),
    flops: Annotated[float | None, typer.Option(help="Training FLOPs.")] = None,
    gpu_hours: Annotated[float | None, typer.Option(help="GPU-hours (with --gpu, --mfu).")] = None,
    usd: Annotated[float | None, typer.Option(help="Dollars (with --usd-per-gpu-hour).")] = None,
    target_loss: TargetLossOption = None,
    params: ParamsBudgetOption = None,
    tokens: TokensBudgetOption = None,
    gpu: Annotated[str | None, typer.Option(help="Accelerator (see `hardware`).")] = None,
    mfu: Annotated[float | None, typer.Option(help="Model FLOPs utilisation.")] = None,
    usd_per_gpu_hour: Annotated[float | None, typer.Option()] = None,
    max_params: MaxParamsOption = None,
    max_tokens: MaxTokensOption = None,
    unique_tokens: UniqueTokensOption = None,
    inference_tokens: InferenceTokensOption = 0.0,
    budget_binds: BudgetBindsOption = "total",
    confidence: ConfidenceOption = 0.9,
    json_out: JsonFlag = False,
) -> None:
    """Recommend params and tokens for a budget from a fit on the server or a preset (or answer
    an inverse question: --params, --tokens, --target-loss)."""
    sources = [experiment is not None, preset is not None, fit_id is not None]
    if sum(sources) != 1:
        _err().print("[red]error:[/red] give exactly one of EXPERIMENT, --preset, --fit-id")
        raise typer.Exit(2)
    if sum(x is not None for x in (flops, gpu_hours, usd, target_loss, params, tokens)) != 1:
        _err().print(
            "[red]error:[/red] give exactly one of --flops, --gpu-hours, --usd, --target-loss, "
            "--params, --tokens"
        )
        raise typer.Exit(2)
    source: dict[str, Any] = {"experiment": experiment, "preset": preset, "fit_id": fit_id}
    source = {k: v for k, v in source.items() if v is not None}
    if experiment is not None:
        source |= {"law": law, "method": method}
    budget = {
        "flops": flops,
        "gpu_hours": gpu_hours,
        "usd": usd,
        "target_loss": target_loss,
        "params": params,
        "tokens": tokens,
        "gpu": gpu,
        "mfu": mfu,
        "usd_per_gpu_hour": usd_per_gpu_hour,
    }
    constraints = _given(
        max_params=max_params,
        max_tokens=max_tokens,
        unique_tokens=unique_tokens,
        inference_tokens=inference_tokens,
        budget_binds=budget_binds,
    )
    with _api(ctx) as api:
        rec = api.recommend(
            source,
            _given(**budget),
            constraints,
            confidence=confidence,
        )
    if json_out:
        echo_json(rec)
    else:
        _print_recommendation(rec)


def _given(**values: Any) -> dict[str, Any]:
    """The options given (not None), as the API's body fields."""
    return {k: v for k, v in values.items() if v is not None}


def _print_comparison(result: Comparison) -> None:
    table = PlainTable(
        "source", "params", "tokens", "flops", "loss", "conventions", title="comparison"
    )
    for row in result.rows:
        rec = row.recommendation
        conventions = f"{row.params_convention or '-'} N, {row.flops_convention or '-'}"
        if rec is None:
            message = row.error.message if row.error is not None else "no answer"
            table.add_row(row.label, "error: " + message, "", "", "", conventions)
            continue
        table.add_row(
            row.label,
            _fmt(rec.params),
            _fmt(rec.tokens),
            _fmt(rec.flops),
            _fmt(rec.loss),
            conventions,
        )
    console = Console()
    console.print(table)
    console.print(escape(result.disagreement.statement))


def compare_command(
    ctx: typer.Context,
    presets: Annotated[
        list[str] | None, typer.Option("--preset", help="A published law (repeatable).")
    ] = None,
    fit_ids: Annotated[
        list[int] | None, typer.Option("--fit-id", help="A fit by id (repeatable).")
    ] = None,
    experiments: Annotated[
        list[str] | None,
        typer.Option("--experiment", help="An experiment's current fit (repeatable)."),
    ] = None,
    law: Annotated[LawName, typer.Option(help="Law of the experiments' fits.")] = "chinchilla",
    method: Annotated[MethodName, typer.Option(help="Method of the experiments' fits.")] = (
        "parametric"
    ),
    flops: Annotated[float | None, typer.Option(help="Budget in FLOPs.")] = None,
    target_loss: TargetLossOption = None,
    params: ParamsBudgetOption = None,
    tokens: TokensBudgetOption = None,
    max_params: MaxParamsOption = None,
    max_tokens: MaxTokensOption = None,
    unique_tokens: UniqueTokensOption = None,
    inference_tokens: InferenceTokensOption = 0.0,
    budget_binds: BudgetBindsOption = "total",
    confidence: ConfidenceOption = 0.9,
    json_out: JsonFlag = False,
) -> None:
    """Fits and presets at one budget, side by side, and how far apart their answers are."""
    sources: list[dict[str, Any]] = [{"preset": p} for p in presets or []]
    sources += [{"fit_id": i} for i in fit_ids or []]
    sources += [{"experiment": e, "law": law, "method": method} for e in experiments or []]
    if not sources:
        _err().print("[red]error:[/red] give sources: --preset, --fit-id, --experiment")
        raise typer.Exit(2)
    budget = {"flops": flops, "target_loss": target_loss, "params": params, "tokens": tokens}
    if sum(v is not None for v in budget.values()) != 1:
        _err().print(
            "[red]error:[/red] give exactly one of --flops, --target-loss, --params, --tokens"
        )
        raise typer.Exit(2)
    constraints = _given(
        max_params=max_params,
        max_tokens=max_tokens,
        unique_tokens=unique_tokens,
        inference_tokens=inference_tokens,
        budget_binds=budget_binds,
    )
    with _api(ctx) as api:
        result = api.compare(
            sources,
            _given(**budget),
            constraints,
            confidence=confidence,
        )
    if json_out:
        echo_json(result)
    else:
        _print_comparison(result)


LAW_COLUMNS: list[Column[PublishedLaw]] = [
    Column("name", lambda item: item.name),
    Column("params", lambda item: item.params_convention),
    Column(
        "law",
        lambda item: (
            f"{item.law.law}: "
            + ", ".join(f"{k}={_fmt(v)}" for k, v in item.law.parameters.items())
        ),
    ),
    Column("source", lambda item: item.source),
]
HARDWARE_COLUMNS: list[Column[Hardware]] = [
    Column("name", lambda a: a.name),
    Column("peak bf16 FLOP/s", lambda a: _fmt(a.peak_bf16_flops)),
    Column("memory GB", lambda a: _fmt(a.memory_gb)),
    Column("source", lambda a: a.source or ""),
]


def laws_command(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Published laws usable as --preset."""
    with _api(ctx) as api:
        laws = api.laws()
    print_list(laws, LAW_COLUMNS, title="published laws", json_out=json_out)


def hardware_command(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Accelerators for GPU-hour and dollar budgets."""
    with _api(ctx) as api:
        items = api.hardware()
    print_list(items, HARDWARE_COLUMNS, title="hardware", json_out=json_out)


# -- keys ----------------------------------------------------------------------------------------


@keys_app.command("list")
def keys_list(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List keys (never their secrets)."""
    with _api(ctx) as api:
        keys = api.list_keys()
    print_list(keys, KEY_COLUMNS, title="API keys", json_out=json_out)


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    scope: ScopeOption,
) -> None:
    """Create a key; prints its token (shown once) on stdout."""
    with _api(ctx) as api:
        created = api.create_key(name, [SCOPES[s] for s in scope])
    _err().print(f"created key {created.prefix}; the token is shown once:")
    typer.echo(created.token)


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, prefix: Annotated[str, typer.Argument()]) -> None:
    """Revoke a key."""
    with _api(ctx) as api:
        api.revoke_key(prefix)
    _err().print(f"revoked {prefix}")


# -- plans, jobs and the autopilot ---------------------------------------------------------------

JOB_STATUSES: tuple[JobStatus, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE: tuple[JobStatus, ...] = ("running", "queued")
STATUS_STYLE = {
    "queued": "cyan",
    "running": "yellow",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "dim",
}

TargetFlops = Annotated[
    float | None,
    typer.Option(help="The budget whose recommendation should become certain (FLOPs)."),
]
BudgetFlops = Annotated[float | None, typer.Option(help="FLOPs to spend in total.")]
MaxPerRun = Annotated[float | None, typer.Option(help="The largest single run (FLOPs).")]
MinPerRun = Annotated[
    float | None,
    typer.Option(help="The smallest run worth planning, FLOPs (server default: 1e15)."),
]
BatchSize = Annotated[int | None, typer.Option(min=1, max=100, help="Most runs in an active plan.")]
OverheadFlops = Annotated[
    float | None,
    typer.Option(
        min=0,
        help="Fixed cost per run (start-up, compile, evaluation) in FLOPs, charged in the plan's "
        "score and budget (default: the trainer's measured one for its device).",
    ),
]
MaxBranches = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=6,
        help="Most points one active run may measure: 1 = one cosine run each; k > 1 lets the "
        "planner choose a WSD trunk with cooldown branches at D/2, D/4 and so on when it gives "
        "more information per FLOP.",
    ),
]
TrainerJson = Annotated[
    str | None,
    typer.Option(
        help='Trainer config fields as JSON, e.g. \'{"device": "cpu", "shape": '
        "{\"context_tokens\": 64}}'; the shape's context and vocabulary choose the sizes planned."
    ),
]


MaxRuns = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="The most training runs the experiment may still start: the plan proposes at most "
        "that many and charges each run the budget left per run left, so fewer, larger runs win.",
    ),
]


def _trainer_fields(text: str | None) -> dict[str, Any] | None:
    """--trainer's JSON object, or None when not given; exit 2 on anything else."""
    if text is None:
        return None
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        _err().print(f"[red]error:[/red] --trainer is not JSON: {escape(str(exc))}")
        raise typer.Exit(2) from exc
    if not isinstance(fields, dict):
        _err().print("[red]error:[/red] --trainer is a JSON object")
        raise typer.Exit(2)
    return fields


def _plan_fields(
    target_flops: float | None,
    budget_flops: float | None,
    max_flops_per_run: float | None,
    min_flops_per_run: float | None,
    batch_size: int | None,
    overhead_flops: float | None = None,
    max_branches: int | None = None,
    max_runs: int | None = None,
) -> dict[str, Any]:
    needed = {
        "--target-flops": target_flops,
        "--budget-flops": budget_flops,
        "--max-flops-per-run": max_flops_per_run,
    }
    missing = [name for name, value in needed.items() if value is None]
    if missing:
        _err().print(f"[red]error:[/red] missing {', '.join(missing)}")
        raise typer.Exit(2)
    fields = {
        "target_flops": target_flops,
        "budget_flops": budget_flops,
        "max_flops_per_run": max_flops_per_run,
        "min_flops_per_run": min_flops_per_run,
        "batch_size": batch_size,
        "overhead_flops": overhead_flops,
        "max_branches_per_run": max_branches,
        "max_runs": max_runs,
    }
    return {k: v for k, v in fields.items() if v is not None}


PLAN_COLUMNS: list[Column[tuple[int, PlannedRunOut]]] = [
    Column("#", lambda item: str(item[0])),
    Column("params", lambda item: _fmt(item[1].params)),
    Column("tokens", lambda item: _fmt(item[1].tokens)),
    Column("flops", lambda item: _fmt(item[1].flops)),
    Column("points", lambda item: str(max(len(item[1].branch_tokens), 1))),
    Column(
        "layers x d_model",
        lambda item: f"{item[1].shape.get('n_layer', '?')} x {item[1].shape.get('d_model', '?')}",
    ),
    Column("gain", lambda item: _fmt(item[1].gain)),
    Column("why", lambda item: item[1].reason, one_line=True),
]


def _print_plan(experiment: str, plan: PlanOut) -> None:
    console = Console()
    title = (
        f"{plan.phase} plan for {experiment}: {count(len(plan.runs), 'run')}, "
        f"{_fmt(plan.total_flops)} FLOPs, target {_fmt(plan.target_flops)}"
    )
    console.print(table_of(enumerate(plan.runs, 1), PLAN_COLUMNS, title))
    if plan.sd_before is not None:
        console.print(
            f"sd of log N_opt(target): {_fmt(plan.sd_before)} now, {_fmt(plan.sd_after)} after"
        )
    for note in plan.notes:
        console.print(f"note: {escape(note)}")


def plan_command(
    ctx: typer.Context,
    experiment: ExperimentArg,
    target_flops: TargetFlops = None,
    budget_flops: BudgetFlops = None,
    max_flops_per_run: MaxPerRun = None,
    min_flops_per_run: MinPerRun = None,
    batch_size: BatchSize = None,
    overhead_flops: OverheadFlops = None,
    max_branches: MaxBranches = None,
    max_runs: MaxRuns = None,
    trainer: TrainerJson = None,
    json_out: JsonFlag = False,
) -> None:
    """Propose the next training runs for an experiment (nothing is queued), as shapes the
    trainer will build (default: the autopilot's trainer fields, else context 1024)."""
    fields = _plan_fields(
        target_flops,
        budget_flops,
        max_flops_per_run,
        min_flops_per_run,
        batch_size,
        overhead_flops,
        max_branches,
        max_runs,
    )
    trainer_fields = _trainer_fields(trainer)
    if trainer_fields is not None:
        fields["trainer"] = trainer_fields
    with _api(ctx) as api:
        plan = api.plan(experiment, fields)
    if json_out:
        echo_json(plan)
    else:
        _print_plan(experiment, plan)


def _progress_cell(job: JobOut) -> Any:
    if job.status == "running":
        return ProgressBar(total=1.0, completed=job.progress, width=20)
    return f"{job.progress:.0%}" if job.status == "succeeded" else ""


JOB_COLUMNS: list[Column[JobOut]] = [
    Column("id", lambda job: str(job.id)),
    Column("experiment", lambda job: job.experiment),
    Column("status", lambda job: Text(job.status, style=STATUS_STYLE.get(job.status, ""))),
    Column("origin", lambda job: job.origin),
    Column("params", lambda job: _fmt(job.params)),
    Column("tokens", lambda job: _fmt(job.tokens)),
    Column("flops", lambda job: _fmt(job.flops)),
    Column("progress", _progress_cell),
    Column("run", lambda job: str(job.result_run_id or "")),
]


@jobs_app.command("list")
def jobs_list(
    ctx: typer.Context,
    experiment: Annotated[str | None, typer.Option("--experiment", "-e")] = None,
    status: Annotated[JobStatus | None, typer.Option()] = None,
    origin: Annotated[JobOrigin | None, typer.Option(help="Who queued them.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
    json_out: JsonFlag = False,
) -> None:
    """List jobs, newest first."""
    with _api(ctx) as api:
        jobs: list[JobOut] = []
        for job in api.iter_jobs(
            experiment=experiment, status=status, origin=origin, page_size=min(limit, 1000)
        ):
            if len(jobs) >= limit:
                break
            jobs.append(job)
    print_list(jobs, JOB_COLUMNS, title="jobs", json_out=json_out)


@jobs_app.command("show")
def jobs_show(
    ctx: typer.Context, job_id: Annotated[int, typer.Argument()], json_out: JsonFlag = False
) -> None:
    """One job: status, attempts, progress, its config, the log's tail, its run."""
    with _api(ctx) as api:
        job = api.get_job(job_id)
    if json_out:
        echo_json(job)
        return
    table = PlainTable(show_header=False, title=f"job {job.id} ({job.experiment})")
    for key, value in job.model_dump(mode="json").items():
        if key == "log_tail":
            continue
        shown = json.dumps(value) if isinstance(value, dict) else "" if value is None else value
        table.add_row(key, str(shown))
    console = Console()
    console.print(table)
    if job.log_tail:
        console.print("log tail:")
        console.print(job.log_tail, markup=False, highlight=False)


def _run_spec(text: str) -> dict[str, Any]:
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError(text)
        spec: dict[str, Any] = {"params": float(parts[0]), "tokens": float(parts[1])}
        if len(parts) == 3:
            spec["seed"] = int(parts[2])
    except ValueError:
        _err().print(
            "[red]error:[/red] --run is PARAMS:TOKENS\\[:SEED], e.g. 3e5:6e6, "
            f"not {escape(repr(text))}"
        )
        raise typer.Exit(2) from None
    return spec


@jobs_app.command("queue")
def jobs_queue(
    ctx: typer.Context,
    experiment: ExperimentArg,
    run: Annotated[
        list[str] | None,
        typer.Option(help="A run PARAMS:TOKENS[:SEED]; repeatable (instead of a plan)."),
    ] = None,
    target_flops: TargetFlops = None,
    budget_flops: BudgetFlops = None,
    max_flops_per_run: MaxPerRun = None,
    min_flops_per_run: MinPerRun = None,
    batch_size: BatchSize = None,
    overhead_flops: OverheadFlops = None,
    max_branches: MaxBranches = None,
    max_runs: MaxRuns = None,
    trainer: TrainerJson = None,
    max_attempts: Annotated[int | None, typer.Option(min=1, max=10)] = None,
    json_out: JsonFlag = False,
) -> None:
    """Queue jobs: what the planner proposes now (the plan options) or explicit --run sizes."""
    options = (
        target_flops,
        budget_flops,
        max_flops_per_run,
        min_flops_per_run,
        batch_size,
        overhead_flops,
        max_branches,
        max_runs,
    )
    plan_given = any(v is not None for v in options)
    if bool(run) == plan_given:
        _err().print("[red]error:[/red] give --run PARAMS:TOKENS or the plan options, not both")
        raise typer.Exit(2)
    fields = _trainer_fields(trainer) or {}
    with _api(ctx) as api:
        if run:
            jobs = api.queue_jobs(
                experiment,
                runs=[_run_spec(text) for text in run],
                trainer=fields,
                max_attempts=max_attempts,
            )
        else:
            plan = _plan_fields(*options)
            jobs = api.queue_jobs(experiment, plan=plan, trainer=fields, max_attempts=max_attempts)
    print_list(
        jobs,
        JOB_COLUMNS,
        title=f"queued {count(len(jobs), 'job')} for {experiment}",
        json_out=json_out,
    )
    if json_out:
        return
    _err().print("a worker runs them: `scaling-service worker`; follow with `remote jobs watch`")


@jobs_app.command("cancel")
def jobs_cancel(
    ctx: typer.Context, job_id: Annotated[int, typer.Argument()], json_out: JsonFlag = False
) -> None:
    """Cancel a job: a queued one at once, a running one by its worker within a tick."""
    with _api(ctx) as api:
        job = api.cancel_job(job_id)
    if json_out:
        echo_json(job)
    elif job.status == "cancelled":
        _err().print(f"cancelled job {job.id}")
    else:
        _err().print(f"job {job.id} is {job.status}: its worker stops it within a tick")


@jobs_app.command("watch")
def jobs_watch(
    ctx: typer.Context,
    experiment: Annotated[str | None, typer.Option("--experiment", "-e")] = None,
    timeout: Annotated[float, typer.Option(help="Give up (exit 1) after this many seconds.")] = (
        3600.0
    ),
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 2.0,
    json_out: JsonFlag = False,
) -> None:
    """Follow queued and running jobs live until none are left; then show how they ended."""
    seen: dict[int, JobOut] = {}
    deadline = time.monotonic() + timeout
    title = f"jobs of {experiment}" if experiment else "jobs"
    live = Live(console=_err(), refresh_per_second=4)
    with _api(ctx) as api, nullcontext() if json_out else live:
        while True:
            active = [
                job
                for status in ACTIVE
                for job in api.iter_jobs(experiment=experiment, status=status)
            ]
            now_active = {job.id for job in active}
            for job_id, job in list(seen.items()):
                if job_id not in now_active and job.status in ACTIVE:
                    seen[job_id] = api.get_job(job_id)  # finished since the last poll
            seen.update({job.id: job for job in active})
            jobs = sorted(seen.values(), key=lambda job: job.id)
            if not json_out:
                counts = {s: sum(job.status == s for job in jobs) for s in JOB_STATUSES}
                summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"
                live.update(table_of(jobs, JOB_COLUMNS, f"{title}: {summary}"))
            if not active:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"{count(len(active), 'job')} still queued or running after {timeout:g} s"
                )
            time.sleep(min(interval, left))
    if json_out:
        echo_json(jobs)
    elif not jobs:
        _err().print("no queued or running jobs")


def _print_autofill(experiment: str, out: AutofillOut) -> None:
    table = PlainTable(show_header=False, title=f"autopilot of {experiment}: {out.state}")
    table.add_row("message", out.message)
    table.add_row("spent FLOPs", _fmt(out.spent_flops))
    table.add_row("remaining FLOPs", _fmt(out.remaining_flops))
    left = "" if out.remaining_runs is None else f" ({out.remaining_runs} left)"
    table.add_row("runs started", f"{out.runs}{left}")
    table.add_row("N_opt width log(high/low)", _fmt(out.n_opt_width))
    if out.settings is not None:
        for key, value in out.settings.model_dump().items():
            shown = _fmt(value) if isinstance(value, float) else str(value)
            table.add_row(key, shown)
    Console().print(table)


@autofill_app.command("show")
def autofill_show(
    ctx: typer.Context, experiment: ExperimentArg, json_out: JsonFlag = False
) -> None:
    """The autopilot's settings and state: spent and remaining FLOPs, N_opt's width."""
    with _api(ctx) as api:
        out = api.get_autofill(experiment)
    if json_out:
        echo_json(out)
    else:
        _print_autofill(experiment, out)


@autofill_app.command("set")
def autofill_set(
    ctx: typer.Context,
    experiment: ExperimentArg,
    budget_flops: Annotated[
        float | None, typer.Option(help="Total FLOPs the autopilot may use.")
    ] = None,
    target_flops: Annotated[
        float | None, typer.Option(help="Budget whose N_opt should become certain.")
    ] = None,
    max_flops_per_run: Annotated[
        float | None, typer.Option(help="The largest single run (FLOPs).")
    ] = None,
    min_flops_per_run: MinPerRun = None,
    enable: Annotated[
        bool | None,
        typer.Option("--enable/--disable", help="Run it or pause it (default: on, or as it was)."),
    ] = None,
    stop_width: Annotated[
        float | None,
        typer.Option(help="Stop when N_opt's 90% interval is narrower than this, log(high/low)."),
    ] = None,
    batch_size: BatchSize = None,
    overhead_flops: OverheadFlops = None,
    max_branches: MaxBranches = None,
    max_runs: Annotated[
        int | None,
        typer.Option(min=1, help="The most jobs the autopilot may queue in all (default: no cap)."),
    ] = None,
    bootstrap: Annotated[int | None, typer.Option(help="Resamples of its fits.")] = None,
    trainer: TrainerJson = None,
    json_out: JsonFlag = False,
) -> None:
    """Configure the autopilot of an experiment. The first time needs --budget-flops,
    --target-flops and --max-flops-per-run; later, options not given keep their values (so
    `set NAME --disable` pauses it and `set NAME --enable` resumes it)."""
    given: dict[str, Any] = {
        "enabled": enable,
        "experiment_budget_flops": budget_flops,
        "target_flops": target_flops,
        "max_flops_per_run": max_flops_per_run,
        "min_flops_per_run": min_flops_per_run,
        "stop_when_n_opt_width_below": stop_width,
        "batch_size": batch_size,
        "overhead_flops": overhead_flops,
        "max_branches_per_run": max_branches,
        "experiment_max_runs": max_runs,
        "bootstrap": bootstrap,
        "trainer": _trainer_fields(trainer),
    }
    with _api(ctx) as api:
        current = api.get_autofill(experiment).settings
        fields = current.model_dump() if current is not None else {"enabled": True}
        fields |= {k: v for k, v in given.items() if v is not None}
        missing = [
            flag
            for flag, key in (
                ("--budget-flops", "experiment_budget_flops"),
                ("--target-flops", "target_flops"),
                ("--max-flops-per-run", "max_flops_per_run"),
            )
            if key not in fields
        ]
        if missing:
            _err().print(
                f"[red]error:[/red] {experiment} has no autopilot yet: give {', '.join(missing)}"
            )
            raise typer.Exit(2)
        out = api.set_autofill(experiment, fields)
    if json_out:
        echo_json(out)
    else:
        _print_autofill(experiment, out)


def register_groups(app: typer.Typer) -> None:
    """The sub-commands of `remote`."""
    app.add_typer(experiments_app, name="experiments")
    app.add_typer(runs_app, name="runs")
    app.add_typer(fits_app, name="fits")
    app.add_typer(keys_app, name="keys")
    app.add_typer(jobs_app, name="jobs")
    app.add_typer(autofill_app, name="autofill")
    # Imported here: remote_sources and remote_webhooks build on this module's helpers.
    from service.cli.remote_sources import sources_app

    app.add_typer(sources_app, name="sources")
    from service.cli.remote_webhooks import webhooks_app

    app.add_typer(webhooks_app, name="webhooks")
    app.command("fit")(fit_command)
    app.command("recommend")(recommend_command)
    app.command("compare")(compare_command)
    app.command("plan")(plan_command)
    app.command("laws")(laws_command)
    app.command("hardware")(hardware_command)


register_groups(remote_app)


def register(app: typer.Typer) -> None:
    """Add `remote` to the console script."""
    app.add_typer(remote_app, name="remote")
