"""One MLflow run -> one run (RunIn), or the reason it cannot be one."""

import math
from collections.abc import Callable

from pydantic import ValidationError

from service.schemas.runs import RunIn
from service.schemas.sources import FieldFrom, MlflowMapping
from service.sources.mlflow_rest import MetricPoint, MlflowRun

History = Callable[[str, str], list[MetricPoint]]


class UnmappableRunError(Exception):
    """The run lacks a mapped field, or a value is not a usable number."""


def run_key(run: MlflowRun) -> str:
    return f"mlflow:{run.run_id}"


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UnmappableRunError(f"{what} = {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UnmappableRunError(f"{what} = {text!r} is not finite")
    return value


def _value(run: MlflowRun, spec: FieldFrom, history: History) -> tuple[float, int | None, int]:
    """The mapped value (scaled) and, for a metric, the step it was logged at and the metric's
    last step (params and tags: None and 0)."""
    what = f"{spec.kind} {spec.key!r}"
    if spec.kind == "param":
        if spec.key not in run.params:
            raise UnmappableRunError(f"no {what}")
        return _number(run.params[spec.key], what) * spec.scale, None, 0
    if spec.kind == "tag":
        if spec.key not in run.tags:
            raise UnmappableRunError(f"no {what}")
        return _number(run.tags[spec.key], what) * spec.scale, None, 0
    if spec.key not in run.metrics:
        raise UnmappableRunError(f"no {what}")
    point = last = run.metrics[spec.key]
    if spec.reduce == "min":
        points = [p for p in history(run.run_id, spec.key) if math.isfinite(p.value)]
        if not points:
            raise UnmappableRunError(f"{what} has no finite value in its history")
        point = min(points, key=lambda p: (p.value, p.step))
        last = max(points, key=lambda p: p.step)
    if not math.isfinite(point.value):
        raise UnmappableRunError(f"{what} = {point.value} is not finite")
    return point.value * spec.scale, point.step, last.step


def map_run(run: MlflowRun, mapping: MlflowMapping, history: History) -> RunIn:
    """The run with run_key ``mlflow:<run id>``; the metadata records where it came from
    (MLflow run and experiment ids, run name, the loss metric's step).

    A loss taken (``reduce`` min) at a step before the metric's last is a checkpoint of a longer
    schedule, not the end of one: the run is ``mid_schedule``, which fits leave out by default.
    """
    params, _, _ = _value(run, mapping.params, history)
    tokens, _, _ = _value(run, mapping.tokens, history)
    loss, loss_step, last_step = _value(run, mapping.loss, history)
    mid_schedule = loss_step is not None and loss_step < last_step
    flops = None if mapping.flops is None else _value(run, mapping.flops, history)[0]
    unique = None
    if mapping.unique_tokens is not None:
        unique = _value(run, mapping.unique_tokens, history)[0]
    metadata: dict[str, object] = {
        "mlflow_run_id": run.run_id,
        "mlflow_experiment_id": run.experiment_id,
        "mlflow_run_name": run.run_name,
    }
    if loss_step is not None:
        metadata["mlflow_loss_step"] = loss_step
    if mid_schedule:
        metadata["mlflow_loss_last_step"] = last_step
    metadata.update(
        {f"param.{k}": run.params[k] for k in mapping.metadata_params if k in run.params}
    )
    metadata.update({f"tag.{k}": run.tags[k] for k in mapping.metadata_tags if k in run.tags})
    try:
        return RunIn(
            run_key=run_key(run),
            params=params,
            tokens=tokens,
            loss=loss,
            flops=flops,
            unique_tokens=unique,
            metadata=metadata,
            source="mlflow",
            loss_provenance="mid_schedule" if mid_schedule else "end_of_schedule",
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UnmappableRunError(f"{where}: {first['msg']}") from None
