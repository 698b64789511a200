"""Typed errors of the scaling core.

Each class's docstring is its message template (``str.format`` fields come from ``details``), so
an HTTP layer can map ``code`` and ``details`` to a 422 response without parsing text.

Bad arguments (``InvalidArgumentError`` and its subclasses) are also ``ValueError``s, as in numpy
and scipy; ``DegenerateDataError`` and its kin are for valid data that cannot be fitted.
"""

from __future__ import annotations

from typing import Any


class ScalingError(Exception):
    """Scaling computation failed: {reason}"""

    code = "scaling_error"

    def __init__(self, **details: Any) -> None:
        self.details: dict[str, Any] = details
        template = (type(self).__doc__ or "").strip().splitlines()[0]
        try:
            message = template.format(**details)
        except (KeyError, IndexError):
            message = f"{template} ({details})"
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self)


class InvalidArgumentError(ScalingError, ValueError):
    """Invalid {name}: {reason}"""

    code = "invalid_argument"


class InvalidDataError(InvalidArgumentError):
    """Column {column!r} has non-finite or non-positive values in rows {rows}"""

    code = "invalid_data"


class InsufficientDataError(ScalingError):
    """Need at least {needed} {what} to fit {target}, got {got}"""

    code = "insufficient_data"


class DegenerateDataError(ScalingError):
    """Data cannot identify {target}: {reason}"""

    code = "degenerate_data"


class ExponentAtBoundError(ScalingError):
    """Fitted exponent {name} = {value:.4g} is not pinned down by the data; bound: {bound}"""

    code = "exponent_at_bound"


class UnreachableLossError(ScalingError):
    """Target loss {target_loss:.4g} nats/token is not reachable: {reason}"""

    code = "unreachable_loss"


class InfeasibleConstraintsError(ScalingError):
    """No allocation satisfies the constraints: {reason}"""

    code = "infeasible_constraints"


class UnknownNameError(InvalidArgumentError):
    """Unknown {kind} {name!r}; known: {known}"""

    code = "unknown_name"


class InvalidBudgetError(InvalidArgumentError):
    """{name} must be a positive, finite number of FLOPs; got {value!r}"""

    code = "invalid_budget"


class InsufficientBudgetError(ScalingError):
    """Not enough compute for {what}: need {needed:.3g} FLOPs, {have_name} is {have:.3g}"""

    code = "insufficient_budget"


class InsufficientRunsError(ScalingError):
    """Not enough training runs left for {what}: need {needed}, max_runs is {have}"""

    code = "insufficient_runs"


class NoScalingLawError(ScalingError):
    """These data show no scaling law for {target}: {reason}"""

    code = "no_scaling_law"
