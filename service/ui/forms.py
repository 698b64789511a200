"""HTML forms to the service's request models: blank fields are left out, pydantic validates."""

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from service.schemas.jobs import AutofillSettings
from service.schemas.recommendations import BudgetSpec

Model = TypeVar("Model", bound=BaseModel)

# Which fields each kind of budget on the recommendation form sends.
# GPU, MFU and price ride along with every kind, so the answer shows GPU-hours and cost.
BUDGET_FIELDS = {
    "flops": ("flops", "gpu", "mfu", "usd_per_gpu_hour"),
    "gpu_hours": ("gpu_hours", "gpu", "mfu", "usd_per_gpu_hour"),
    "usd": ("usd", "gpu", "usd_per_gpu_hour", "mfu"),
}
AUTOFILL_FIELDS = tuple(AutofillSettings.model_fields)


class FormError(Exception):
    """The form's values, said in words for the page."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def _validate(model: type[Model], values: dict[str, Any]) -> Model:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        messages = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            messages.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
        raise FormError(messages) from None


def budget(form: dict[str, str]) -> BudgetSpec:
    kind = form.get("budget_kind", "flops")
    if kind not in BUDGET_FIELDS:
        raise FormError([f"unknown budget kind {kind!r}"])
    values = {k: form[k].strip() for k in BUDGET_FIELDS[kind] if form.get(k, "").strip()}
    if kind not in values:
        raise FormError([f"give the budget: {kind}"])
    return _validate(BudgetSpec, values)


def confidence(form: dict[str, str]) -> float:
    try:
        value = float(form.get("confidence", "") or 0.9)
    except ValueError:
        raise FormError(["confidence: not a number"]) from None
    if not 0.5 <= value <= 0.999:
        raise FormError(["confidence: between 0.5 and 0.999"])
    return value


def autofill(form: dict[str, str]) -> AutofillSettings:
    values: dict[str, Any] = {
        k: form[k].strip()
        for k in AUTOFILL_FIELDS
        if k not in ("enabled", "trainer") and form.get(k, "").strip()
    }
    values["enabled"] = form.get("enabled") == "on"
    trainer = form.get("trainer", "").strip()
    if trainer:
        try:
            values["trainer"] = json.loads(trainer)
        except json.JSONDecodeError as exc:
            raise FormError([f"trainer: not JSON ({exc.msg})"]) from None
    return _validate(AutofillSettings, values)
