"""`remote sources`: MLflow sources of an experiment over the API (docs/integrations.md)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from rich.console import Console

from service.cli.options import JsonFlag
from service.cli.output import Column, count, echo_json, print_list
from service.cli.remote import ExperimentArg, _api
from service.schemas.sources import MlflowSourceOut, SyncResult, Unmapped

sources_app = typer.Typer(
    help="MLflow sources: pull finished runs from tracking servers the operator configured.",
    no_args_is_help=True,
)
FIELDS = ("params", "tokens", "loss", "flops", "unique_tokens")
_MAP = re.compile(
    r"^(?P<field>\w+)=(?P<kind>param|metric|tag):(?P<key>[^:*]+)"
    r"(?::(?P<reduce>last|min))?(?:\*(?P<scale>[0-9.eE+-]+))?$"
)
SourceIdArg = Annotated[int, typer.Argument(min=1, help="The source's id.")]
ResultsExperimentOption = Annotated[
    str | None,
    typer.Option(help="The MLflow experiment id fits are logged into (default: the first read)."),
]
ResultsTargetOption = Annotated[
    float | None,
    typer.Option(
        min=1e6,
        help="Training FLOPs whose recommendation is logged with each fit (default: the "
        "autopilot's target, if any).",
    ),
]


def parse_mapping(items: list[str]) -> dict[str, Any]:
    """FIELD=KIND:KEY[:last|min][*SCALE] items -> the API's mapping object."""
    mapping: dict[str, Any] = {}
    for item in items:
        match = _MAP.match(item.strip())
        if match is None or match["field"] not in FIELDS:
            raise typer.BadParameter(
                f"{item!r}: expected FIELD=KIND:KEY[:last|min][*SCALE], FIELD one of "
                f"{', '.join(FIELDS)}, KIND param, metric or tag (e.g. loss=metric:val_loss:min, "
                "tokens=param:n_tokens*1e6)",
                param_hint="--map",
            )
        spec: dict[str, Any] = {"kind": match["kind"], "key": match["key"]}
        if match["reduce"]:
            spec["reduce"] = match["reduce"]
        if match["scale"]:
            try:
                spec["scale"] = float(match["scale"])
            except ValueError:
                raise typer.BadParameter(f"{item!r}: bad scale", param_hint="--map") from None
        mapping[match["field"]] = spec
    missing = [field for field in ("params", "tokens", "loss") if field not in mapping]
    if missing:
        raise typer.BadParameter(f"map {', '.join(missing)} too", param_hint="--map")
    return mapping


@sources_app.command("add")
def add(
    ctx: typer.Context,
    experiment: ExperimentArg,
    server: Annotated[str, typer.Option(help="A server named in SCALING_MLFLOW_SERVERS.")],
    mlflow_experiment: Annotated[
        list[str], typer.Option(help="An MLflow experiment id (repeat for several).")
    ],
    map_: Annotated[
        list[str],
        typer.Option(
            "--map",
            help="FIELD=KIND:KEY[:last|min][*SCALE] for params, tokens and loss (flops and "
            "unique_tokens optional), e.g. --map loss=metric:val_loss:min.",
        ),
    ],
    filter_: Annotated[
        str, typer.Option("--filter", help="An MLflow search filter (ANDed with FINISHED).")
    ] = "",
    every: Annotated[
        float | None,
        typer.Option(min=60, help="Sync this often (seconds) from the worker; default: on demand."),
    ] = None,
    meta_param: Annotated[
        list[str] | None, typer.Option(help="An MLflow param to copy into metadata.")
    ] = None,
    meta_tag: Annotated[
        list[str] | None, typer.Option(help="An MLflow tag to copy into metadata.")
    ] = None,
    log_results: Annotated[
        bool,
        typer.Option(
            "--log-results", help="Log each succeeded fit back to MLflow as a run (the worker)."
        ),
    ] = False,
    results_experiment: ResultsExperimentOption = None,
    results_target_flops: ResultsTargetOption = None,
    json_out: JsonFlag = False,
) -> None:
    """Attach MLflow experiments on a configured server to EXPERIMENT."""
    mapping = parse_mapping(map_)
    mapping["metadata_params"] = meta_param or []
    mapping["metadata_tags"] = meta_tag or []
    body = {
        "server": server,
        "experiment_ids": mlflow_experiment,
        "filter": filter_,
        "mapping": mapping,
        "schedule_seconds": every,
        "log_results": log_results,
        "results_experiment_id": results_experiment,
        "results_target_flops": results_target_flops,
    }
    with _api(ctx) as api:
        source = api.create_source(experiment, body)
    if json_out:
        echo_json(source)
    else:
        Console().print(
            f"source {source.id}: {server}, MLflow experiments {', '.join(mlflow_experiment)}"
        )


COLUMNS: list[Column[MlflowSourceOut]] = [
    Column("id", lambda s: str(s.id)),
    Column("server", lambda s: s.server),
    Column("MLflow experiments", lambda s: ", ".join(s.experiment_ids)),
    Column(
        "every",
        lambda s: "on demand" if s.schedule_seconds is None else f"{s.schedule_seconds:g} s",
    ),
    Column(
        "last sync",
        lambda s: (
            "never" if s.last_sync_at is None else s.last_sync_at.isoformat(timespec="seconds")
        ),
    ),
    Column("results to MLflow", lambda s: f"{s.exported_fits} fits" if s.log_results else "off"),
    Column(
        "last error",
        lambda s: " / ".join(e for e in (s.last_error, s.last_export_error) if e),
        one_line=True,
    ),
]


@sources_app.command("list")
def list_(ctx: typer.Context, experiment: ExperimentArg, json_out: JsonFlag = False) -> None:
    """EXPERIMENT's sources and their last syncs."""
    with _api(ctx) as api:
        sources = api.list_sources(experiment)
    print_list(
        sources, COLUMNS, title=f"{experiment}: {count(len(sources), 'source')}", json_out=json_out
    )


UNMAPPED: list[Column[Unmapped]] = [
    Column("MLflow run", lambda u: u.mlflow_run_id),
    Column("why not stored", lambda u: u.reason, one_line=True),
]


def _print_sync(result: SyncResult) -> None:
    Console().print(
        f"{count(result.created, 'run')} created, {result.unchanged} already stored, "
        f"{len(result.unmapped)} not stored"
    )
    if result.unmapped:
        print_list(result.unmapped, UNMAPPED, title="Not stored", json_out=False)


@sources_app.command("sync")
def sync(
    ctx: typer.Context,
    source_id: SourceIdArg,
    full: Annotated[
        bool, typer.Option("--full", help="Read every run, not only new ones.")
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Pull the runs finished since the last sync now."""
    with _api(ctx) as api:
        result = api.sync_source(source_id, full=full)
    if json_out:
        echo_json(result)
    else:
        _print_sync(result)


@sources_app.command("set")
def set_(
    ctx: typer.Context,
    source_id: SourceIdArg,
    log_results: Annotated[
        bool | None,
        typer.Option(
            "--log-results/--no-log-results", help="Log succeeded fits back to MLflow, or stop."
        ),
    ] = None,
    results_experiment: ResultsExperimentOption = None,
    results_target_flops: ResultsTargetOption = None,
    every: Annotated[
        float | None, typer.Option(min=60, help="Sync this often (seconds) from the worker.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Change a source: the options given change, the others stay."""
    given = {
        "log_results": log_results,
        "results_experiment_id": results_experiment,
        "results_target_flops": results_target_flops,
        "schedule_seconds": every,
    }
    patch = {key: value for key, value in given.items() if value is not None}
    if not patch:
        raise typer.BadParameter("give at least one option to change")
    with _api(ctx) as api:
        source = api.update_source(source_id, patch)
    if json_out:
        echo_json(source)
    else:
        state = "on" if source.log_results else "off"
        Console().print(f"source {source.id}: results to MLflow {state}")


@sources_app.command("delete")
def delete(ctx: typer.Context, source_id: SourceIdArg) -> None:
    """Detach a source (its runs stay; needs an admin key)."""
    with _api(ctx) as api:
        api.delete_source(source_id)
    Console().print(f"source {source_id} deleted")
