"""The pure numerical core: laws, fitting, allocation.

numpy/scipy only: nothing here imports the web framework, the database or does I/O.

    runs = RunArrays(params=N, tokens=D, loss=L)
    result = fit(runs, law="chinchilla", method="parametric", bootstrap=1000, seed=0)
    print(result.summary())
    cons = Constraints(max_params=7e10)
    alloc = recommend(result, FlopBudget(1e24), constraints=cons, confidence=0.9)
"""

from service.scaling.allocate import (
    Allocation,
    Budget,
    Constraints,
    EqualLossOptimum,
    FlopBudget,
    GpuHoursBudget,
    Hardware,
    ModelSize,
    MoneyBudget,
    TargetLoss,
    UniqueData,
    least_flops_for_loss,
    optimum_at_flops,
    recommend,
)
from service.scaling.compare import Candidate, Comparison, compare
from service.scaling.design import plan_runs
from service.scaling.design_info import simulate_loss
from service.scaling.design_plan import Plan, PlannedRun
from service.scaling.errors import (
    DegenerateDataError,
    ExponentAtBoundError,
    InfeasibleConstraintsError,
    InsufficientBudgetError,
    InsufficientDataError,
    InsufficientRunsError,
    InvalidArgumentError,
    InvalidBudgetError,
    InvalidDataError,
    NoScalingLawError,
    ScalingError,
    UnknownNameError,
    UnreachableLossError,
)
from service.scaling.fit import METHODS, fit
from service.scaling.fit_isoflop import BudgetMinimum
from service.scaling.frontier import Frontier
from service.scaling.hardware import CATALOGUE, Accelerator, accelerator
from service.scaling.laws import (
    LAWS,
    AnyLaw,
    Chinchilla,
    DataConstrained,
    Kaplan,
    Law,
    law_from_json,
)
from service.scaling.presets import PRESETS, Preset, list_presets, preset
from service.scaling.result import FitResult, Source, source_from_json
from service.scaling.runs import RunArrays
from service.scaling.shapes import ModelShape, shape_for_params

__all__ = [
    "CATALOGUE",
    "LAWS",
    "METHODS",
    "PRESETS",
    "Accelerator",
    "Allocation",
    "AnyLaw",
    "Budget",
    "BudgetMinimum",
    "Candidate",
    "Chinchilla",
    "Comparison",
    "Constraints",
    "DataConstrained",
    "DegenerateDataError",
    "EqualLossOptimum",
    "ExponentAtBoundError",
    "FitResult",
    "FlopBudget",
    "Frontier",
    "GpuHoursBudget",
    "Hardware",
    "InfeasibleConstraintsError",
    "InsufficientBudgetError",
    "InsufficientDataError",
    "InsufficientRunsError",
    "InvalidArgumentError",
    "InvalidBudgetError",
    "InvalidDataError",
    "Kaplan",
    "Law",
    "ModelShape",
    "ModelSize",
    "MoneyBudget",
    "NoScalingLawError",
    "Plan",
    "PlannedRun",
    "Preset",
    "RunArrays",
    "ScalingError",
    "Source",
    "TargetLoss",
    "UniqueData",
    "UnknownNameError",
    "UnreachableLossError",
    "accelerator",
    "compare",
    "fit",
    "law_from_json",
    "least_flops_for_loss",
    "list_presets",
    "optimum_at_flops",
    "plan_runs",
    "preset",
    "recommend",
    "shape_for_params",
    "simulate_loss",
    "source_from_json",
]
