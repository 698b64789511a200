"""Offline commands: `fit` a CSV of runs, `recommend` an allocation (or answer an inverse
question), `compare` laws and fits at one budget; no server needed."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from rich.console import Console
from rich.table import Table

from service.cli.options import (
    BudgetBindsOption,
    ConfidenceOption,
    InferenceTokensOption,
    JsonFlag,
    MaxParamsOption,
    MaxTokensOption,
    ParamsBudgetOption,
    PresetOption,
    TargetLossOption,
    TokensBudgetOption,
    UniqueTokensOption,
)
from service.cli.output import count
from service.fits.recommend import DEFAULT_MFU, budget_of
from service.io.runs_csv import parse_runs_csv
from service.io.table import TableError, accepted_names, parse_mapping
from service.scaling import Constraints, FitResult, ScalingError, fit, preset, recommend
from service.scaling.allocate import Allocation
from service.scaling.compare import Candidate, compare
from service.scaling.hyperparams import Hyperparameters, recommend_hyperparameters
from service.scaling.presets import Preset
from service.scaling.shapes import DEFAULT_VOCAB_SIZE
from service.schemas.fits import LawName, MethodName
from service.schemas.recommendations import BudgetSpec, ConstraintsSpec


def _fail(message: str, code: int = 2) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


Spec = TypeVar("Spec", BudgetSpec, ConstraintsSpec)


def _as_the_api_reads(spec: type[Spec], **options: float | str | None) -> Spec:
    """The options as the API's request model of them, or exit 2 saying why."""
    try:
        return spec.model_validate({k: v for k, v in options.items() if v is not None})
    except ValidationError as exc:
        reasons = (_invalid(error, spec.model_fields) for error in exc.errors())
        raise _fail("; ".join(reasons)) from exc


def _invalid(error: ErrorDetails, fields: Iterable[str]) -> str:
    """The API's words about its fields, in terms of this command's options."""
    message = str(error["msg"]).removeprefix("Value error, ")
    named = "|".join(name for name in fields if "_" in name)
    message = re.sub(rf"\b({named})\b", lambda m: _option(m[0]), message)
    return "".join(f"{_option(str(part))}: " for part in error["loc"]) + message


def _option(field: str) -> str:
    return "--" + field.replace("_", "-")


def _fmt(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.6g}"


def _print_fit(result: FitResult, info: dict[str, Any], console: Console) -> None:
    table = Table(title=f"{result.law.name} fit ({result.method}, {count(result.n_runs, 'run')})")
    table.add_column("parameter")
    table.add_column("estimate", justify="right")
    table.add_column("95% interval", justify="right")
    intervals = result.intervals(confidence=0.95)
    for name, value in result.estimates.items():
        lo_hi = intervals.get(name)
        table.add_row(
            name, _fmt(value), "-" if lo_hi is None else f"{lo_hi[0]:.4g} – {lo_hi[1]:.4g}"
        )
    console.print(table)
    diag = Table(title="diagnostics", show_header=False)
    for key, text in (
        ("objective (sum Huber)", _fmt(result.objective)),
        ("RMSE log loss", _fmt(result.rmse_log_loss)),
        ("leave-largest-budget-out error", _fmt(result.extrapolation_error)),
        ("iterations / converged", f"{result.iterations} / {result.converged}"),
        ("bootstrap resamples", str(len(result.bootstrap_samples))),
        (
            "rows used / errors / filtered",
            f"{info['rows']} / {info['errors']} / {info['filtered']}",
        ),
    ):
        diag.add_row(key, text)
    console.print(diag)
    for w in (*info["messages"], *result.warnings):
        console.print(f"[yellow]warning:[/yellow] {w}")


def _print_allocation(a: Allocation, hyper: Hyperparameters, console: Console) -> None:
    table = Table(title=f"allocation ({a.source})")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_column(f"{a.confidence:.0%} interval", justify="right")
    rows: list[tuple[str, float | None]] = [
        ("params", a.params),
        ("tokens", a.tokens),
        ("flops", a.flops),
        ("loss", a.loss),
        ("tokens_per_param", a.tokens_per_param),
        ("gpu_hours", a.gpu_hours),
        ("cost_usd", a.cost_usd),
    ]
    for name, value in rows:
        iv = a.intervals.get(name)
        table.add_row(name, _fmt(value), "-" if iv is None else f"{iv[0]:.4g} – {iv[1]:.4g}")
    s = a.shape
    table.add_row(
        "shape",
        f"{count(s.n_layer, 'layer')} x d_model {s.d_model}, {count(s.n_heads, 'head')}",
        "",
    )
    for name, h in (
        ("learning_rate", hyper.learning_rate),
        ("batch_size_tokens", hyper.batch_size_tokens),
    ):
        iv = h.interval
        table.add_row(name, _fmt(h.value), "-" if iv is None else f"{iv[0]:.4g} – {iv[1]:.4g}")
    if a.inference_flops > 0:
        table.add_row("inference_flops", _fmt(a.inference_flops), "-")
        table.add_row("total_flops", _fmt(a.total_flops), "-")
    ref = a.equal_loss_optimum
    if ref is not None:
        table.add_row(
            "compute-optimal, equal loss",
            f"{ref.params:.4g} params, {ref.tokens:.4g} tokens",
            f"total {ref.total_flops:.4g}",
        )
    console.print(table)
    console.print(f"learning rate: {hyper.learning_rate.rule} ({hyper.learning_rate.source})")
    console.print(f"batch size: {hyper.batch_size_tokens.rule} ({hyper.batch_size_tokens.source})")
    console.print("law: " + ", ".join(f"{k}={v}" for k, v in a.law.to_json().items()))
    for b in a.binding:
        console.print(f"binding constraint: {b}")
    for n in a.notes:
        console.print(f"note: {n}")
    for w in (*a.warnings, *hyper.warnings):
        console.print(f"[yellow]warning:[/yellow] {w}")


def _source(preset_name: str | None, fit_file: Path | None) -> Preset | FitResult:
    """A preset, or a fit from `fit --json`; exits 2 when the file cannot be read."""
    if fit_file is None:
        assert preset_name is not None
        try:
            return preset(preset_name)
        except ScalingError as exc:
            raise _fail(str(exc)) from exc
    try:
        return FitResult.from_json(json.loads(fit_file.read_text()))
    except (OSError, ValueError, KeyError) as exc:
        raise _fail(f"cannot read fit {fit_file}: {exc}") from exc


def _question(
    budget: dict[str, float | str | None], constraints: dict[str, float | str | None]
) -> tuple[BudgetSpec, ConstraintsSpec]:
    """The budget options (exactly one kind) and constraints, as the API reads them."""
    kinds = ("flops", "gpu_hours", "usd", "target_loss", "params", "tokens")
    if sum(budget.get(k) is not None for k in kinds) != 1:
        raise _fail("give exactly one of " + ", ".join(_option(k) for k in kinds))
    return _as_the_api_reads(BudgetSpec, **budget), _as_the_api_reads(
        ConstraintsSpec, **constraints
    )


def register(app: typer.Typer) -> None:
    """Add the offline `fit`, `recommend` and `compare` commands to `app`."""

    @app.command("fit")
    def fit_command(
        file: Annotated[
            Path,
            typer.Argument(
                help="CSV of runs (e.g. examples/data/kyo_chinchilla_llm_df.csv). Columns: "
                + accepted_names()
                + "."
            ),
        ],
        law: Annotated[LawName, typer.Option(help="The law's form.")] = "chinchilla",
        method: Annotated[MethodName, typer.Option(help="How it is fitted.")] = "parametric",
        bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples (0: none).")] = 0,
        seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
        huber_delta: Annotated[float, typer.Option(help="Huber delta on log loss.")] = 1e-3,
        max_loss: Annotated[
            float | None, typer.Option(help="Leave out rows with loss >= this (reported).")
        ] = None,
        experiment: Annotated[
            str | None, typer.Option(help="Use only rows of this `experiment` column value.")
        ] = None,
        column: Annotated[
            list[str] | None,
            typer.Option(help="NAME=HEADER: read column HEADER as NAME, e.g. params=model_size."),
        ] = None,
        include_mid_schedule: Annotated[
            bool,
            typer.Option(
                help="Also fit rows whose loss_provenance is mid_schedule (left out and "
                "reported by default: a loss read mid-schedule is not a valid point)."
            ),
        ] = False,
        json_out: JsonFlag = False,
    ) -> None:
        """Fit a scaling law to the runs in FILE."""
        try:
            parsed = parse_runs_csv(
                file.read_text(),
                max_loss=max_loss,
                mapping=parse_mapping(column or []),
                include_mid_schedule=include_mid_schedule,
            )
        except (OSError, TableError) as exc:
            raise _fail(str(exc)) from exc
        experiments = parsed.experiments()
        if experiment is None and len(experiments) > 1:
            raise _fail(
                f"{file} holds {count(len(experiments), 'experiment')}; pick one with "
                "--experiment: " + ", ".join(experiments)
            )
        if experiment is not None and experiment not in experiments:
            raise _fail(f"no experiment {experiment!r}; known: {', '.join(experiments)}")
        messages = [
            f"line {e.line}, column {e.column!r}: {e.message} (row left out)" for e in parsed.errors
        ]
        messages += [f"line {line}: {why} (row left out)" for line, why in parsed.filtered]
        try:
            runs = parsed.to_runs(experiment)
            result = fit(
                runs,
                law=law,
                method=method,
                huber_delta=huber_delta,
                bootstrap=bootstrap,
                seed=seed,
            )
        except ScalingError as exc:  # first: bad arguments are ScalingErrors and ValueErrors
            for m in messages:
                Console(stderr=True).print(f"[yellow]warning:[/yellow] {m}")
            raise _fail(str(exc)) from exc
        info = {
            "file": str(file),
            "rows": len(runs),
            "errors": len(parsed.errors),
            "filtered": len(parsed.filtered),
            "messages": messages,
        }
        if json_out:
            typer.echo(json.dumps({**result.to_json(), "input": info}))
        else:
            _print_fit(result, info, Console())

    @app.command("recommend")
    def recommend_command(
        preset_name: PresetOption = None,
        fit_file: Annotated[Path | None, typer.Option("--fit", help="JSON from `fit --json`.")] = (
            None
        ),
        flops: Annotated[float | None, typer.Option(help="Training budget in FLOPs.")] = None,
        gpu_hours: Annotated[float | None, typer.Option(help="Budget in GPU-hours.")] = None,
        usd: Annotated[float | None, typer.Option(help="Budget in US dollars.")] = None,
        target_loss: TargetLossOption = None,
        params: ParamsBudgetOption = None,
        tokens: TokensBudgetOption = None,
        gpu: Annotated[str, typer.Option(help="Accelerator (see catalogue).")] = "H100-SXM",
        mfu: Annotated[
            float | None, typer.Option(help=f"Model FLOPs utilisation (default: {DEFAULT_MFU}).")
        ] = None,
        usd_per_gpu_hour: Annotated[float | None, typer.Option(help="Price per GPU-hour.")] = (
            None
        ),
        max_params: MaxParamsOption = None,
        max_tokens: MaxTokensOption = None,
        unique_tokens: UniqueTokensOption = None,
        inference_tokens: InferenceTokensOption = 0.0,
        budget_binds: BudgetBindsOption = "total",
        confidence: ConfidenceOption = 0.9,
        vocab_size: Annotated[
            int, typer.Option(min=1, help="Vocabulary of the model (its embedding's rows).")
        ] = DEFAULT_VOCAB_SIZE,
        context_tokens: Annotated[
            int | None, typer.Option(min=1, help="Context length, for DeepSeek's C = M D.")
        ] = None,
        json_out: JsonFlag = False,
        old_law: Annotated[str | None, typer.Option("--law", hidden=True)] = None,
    ) -> None:
        """Recommend params and tokens for a budget under a preset law or a stored fit."""
        if old_law is not None:
            Console(stderr=True).print(
                "[yellow]warning:[/yellow] --law is deprecated; use --preset"
            )
            preset_name = preset_name or old_law
        if (preset_name is None) == (fit_file is None):
            raise _fail("give exactly one of --preset NAME or --fit FIT.json")
        budget_spec, constraints = _question(
            {
                "flops": flops,
                "gpu_hours": gpu_hours,
                "usd": usd,
                "target_loss": target_loss,
                "params": params,
                "tokens": tokens,
                "gpu": gpu,
                "mfu": mfu,
                "usd_per_gpu_hour": usd_per_gpu_hour,
            },
            {
                "max_params": max_params,
                "max_tokens": max_tokens,
                "unique_tokens": unique_tokens,
                "inference_tokens": inference_tokens,
                "budget_binds": budget_binds,
            },
        )
        source = _source(preset_name, fit_file)
        try:
            budget = budget_of(budget_spec)
            cons = Constraints(**constraints.model_dump())
            alloc = recommend(
                source, budget, constraints=cons, confidence=confidence, vocab_size=vocab_size
            )
            hyper = recommend_hyperparameters(
                shape=alloc.shape,
                tokens=alloc.tokens,
                flops=alloc.flops,
                context_tokens=context_tokens,
                confidence=confidence,
            )
        except ScalingError as exc:
            raise _fail(str(exc)) from exc
        if json_out:
            typer.echo(json.dumps({**alloc.to_json(), "hyperparameters": hyper.to_json()}))
        else:
            _print_allocation(alloc, hyper, Console())

    @app.command("compare")
    def compare_command(
        presets: Annotated[
            list[str] | None,
            typer.Option("--preset", help="A published law (repeatable; `remote laws`)."),
        ] = None,
        fit_files: Annotated[
            list[Path] | None, typer.Option("--fit", help="JSON from `fit --json` (repeatable).")
        ] = None,
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
        """Several presets and fits at one budget, side by side, and how far apart they are."""
        budget_spec, constraints = _question(
            {"flops": flops, "target_loss": target_loss, "params": params, "tokens": tokens},
            {
                "max_params": max_params,
                "max_tokens": max_tokens,
                "unique_tokens": unique_tokens,
                "inference_tokens": inference_tokens,
                "budget_binds": budget_binds,
            },
        )
        candidates = [Candidate(name, _source(name, None)) for name in presets or []]
        candidates += [Candidate(str(f), _source(None, f)) for f in fit_files or []]
        if len(candidates) < 2:
            raise _fail("give at least two sources: --preset NAME and/or --fit FIT.json")
        try:
            result = compare(
                candidates,
                budget_of(budget_spec),
                constraints=Constraints(**constraints.model_dump()),
                confidence=confidence,
            )
        except ScalingError as exc:
            raise _fail(str(exc)) from exc
        if json_out:
            typer.echo(json.dumps(result.to_json()))
        else:
            typer.echo(result.summary())
