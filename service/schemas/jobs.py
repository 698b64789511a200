"""Plans, jobs and the autopilot: which training runs to do next, and their progress."""

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from service.schemas.common import StrictModel

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]

# Sanity bounds keep every derived number (6ND, plan scores) finite and storable.
Flops = Annotated[float, Field(ge=1e6, le=1e40, allow_inf_nan=False)]
Params = Annotated[float, Field(ge=1.0, le=1e15, allow_inf_nan=False)]
Tokens = Annotated[float, Field(ge=1.0, le=1e17, allow_inf_nan=False)]


# Corpus roots a request may name; directories and caches on a worker are its operator's
# (SCALING_CACHE_DIR on the worker), never an API caller's to choose.
REQUEST_CORPUS_ROOTS = ("stdlib", "site")


def _storable(value: Any, where: str) -> None:
    """Every value JSON (and both databases) keep as sent: finite numbers within 64 bits, text
    without NUL; NaN was silently stored as null, a NUL refused by PostgreSQL (500)."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: numbers must be finite")
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise ValueError(f"{where}: integers must fit in 64 bits")
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(f"{where}: text must not contain NUL")
    if isinstance(value, dict):
        for key, item in value.items():
            _storable(key, where)
            _storable(item, f"{where}.{key}")
    if isinstance(value, list):
        for item in value:
            _storable(item, where)


def _operator_paths_refused(fields: dict[str, Any]) -> dict[str, Any]:
    _storable(fields, "trainer")
    if "cache_dir" in fields:
        raise ValueError(
            "cache_dir is the worker operator's setting (SCALING_CACHE_DIR), not a request field"
        )
    corpus = fields.get("corpus")
    if isinstance(corpus, dict) and "roots" in corpus:
        roots = corpus["roots"]
        if not isinstance(roots, list) or any(r not in REQUEST_CORPUS_ROOTS for r in roots):
            raise ValueError(
                f"corpus.roots may name only {', '.join(REQUEST_CORPUS_ROOTS)}: directories on a "
                "worker are its operator's to choose"
            )
    return fields


TrainerFields = Annotated[dict[str, Any], AfterValidator(_operator_paths_refused)]


OVERHEAD_DESCRIPTION = (
    "Fixed cost charged per run (start-up, compilation, evaluation) as FLOPs, in the planner's "
    "score and budget: fewer, larger runs when it is large. Default (null): the trainer's "
    "measured overhead on its `device`: 7.2e10 for cpu (3.83 s at 1.89e10 FLOP/s), 5.6e15 for "
    "cuda (18.9 s at 2.98e14 FLOP/s, an H200); 0 for auto or mps (the hardware is not known "
    "until a worker takes the job)."
)


MAX_RUNS_DESCRIPTION = (
    "The most training runs the experiment may still start (null: no cap). A plan proposes at "
    "most that many, and its active score charges each run, on top of its FLOPs and overhead, "
    "the budget left per run left, so that fewer, larger runs win; a seed needing more runs "
    "(15; a widened one 21) is refused with 422 insufficient_runs."
)


BRANCHES_DESCRIPTION = (
    "The most points (token counts) one active run may measure: 1, every run is one cosine run "
    "(one point); k > 1, the planner may instead plan a run as a constant-LR (WSD) trunk with "
    "cooldown branches at D/2, D/4, ... (k points in all), costed as trained, 6 N (D + 0.2 x "
    "the shorter branches' tokens), its points' noise counted as correlated through the trunk; "
    "it picks whichever gives more information per FLOP. Seed runs have one point."
)


class PlanRequest(StrictModel):
    target_flops: Flops = Field(
        description="The budget whose recommendation should become certain (FLOPs)."
    )
    budget_flops: Flops = Field(description="FLOPs this plan may spend in total.")
    max_flops_per_run: Flops = Field(description="The largest single run (FLOPs).")
    min_flops_per_run: Flops = Field(
        default=1e15, description="The smallest run worth planning (lower it for CPU demos)."
    )
    batch_size: int = Field(default=8, ge=1, le=100, description="Most runs in an active plan.")
    overhead_flops: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description=OVERHEAD_DESCRIPTION,
    )
    prior: str = Field(default="epoch-2024", description="Preset guessing N_opt before a fit.")
    max_branches_per_run: int = Field(default=1, ge=1, le=6, description=BRANCHES_DESCRIPTION)
    max_runs: int | None = Field(default=None, ge=1, le=100_000, description=MAX_RUNS_DESCRIPTION)
    trainer: TrainerFields = Field(
        default_factory=dict,
        description="Trainer config fields of the runs; `shape.context_tokens` and "
        "`shape.vocab_size` choose the shape family planned in (default: the autopilot's "
        "trainer fields, else byte vocabulary and context 1024).",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"target_flops": 1e24, "budget_flops": 1e22, "max_flops_per_run": 1e21}]
        }
    )


class PlannedRunOut(BaseModel):
    params: float = Field(description="Total parameters of the shape the trainer will build.")
    tokens: float
    flops: float = Field(
        description="What the run trains: 6 * params * tokens (with branches: 6 * params * "
        "(tokens + cooldown_fraction x the shorter branches' tokens))."
    )
    branch_tokens: list[float] = Field(
        default_factory=list,
        description="A run with several points: the tokens of each cooldown branch of its trunk "
        "(ascending, the last = tokens; schedule wsd); empty for a one-point (cosine) run.",
    )
    cooldown_fraction: float | None = Field(
        default=None, description="Share of each branch's steps spent cooling down."
    )
    shape: dict[str, int] = Field(
        description="The shape the trainer will build: n_layer, d_model, n_heads, head_dim, "
        "params (total) and non_embedding_params."
    )
    gain: float = Field(description="Expected drop of Var[log N_opt(target)] per FLOP.")
    reason: str


class PlanOut(BaseModel):
    phase: Literal["seed", "active"]
    runs: list[PlannedRunOut]
    total_flops: float
    target_flops: float
    sd_before: float | None = Field(description="Predicted sd of log N_opt(target) now.")
    sd_after: float | None = Field(description="Predicted sd after these runs.")
    notes: list[str]


class JobRunSpec(StrictModel):
    params: Params = Field(
        description="Total parameters; the trainer builds the nearest shape of its family "
        "(or the full shape given in `trainer.shape`)."
    )
    tokens: Tokens
    seed: int = Field(default=0, ge=0, lt=2**31)
    trainer: TrainerFields = Field(
        default_factory=dict,
        description="Extra trainer config fields (device, corpus, context, recipe...).",
    )


class JobsCreate(StrictModel):
    """Either `plan` (queue what the planner proposes now) or explicit `runs`."""

    plan: PlanRequest | None = None
    runs: list[JobRunSpec] | None = Field(default=None, min_length=1, max_length=1000)
    trainer: TrainerFields = Field(
        default_factory=dict, description="Trainer config fields for every job of a `plan`."
    )
    max_attempts: int = Field(default=3, ge=1, le=10)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"runs": [{"params": 2e5, "tokens": 2e7}, {"params": 4e5, "tokens": 1e7}]}]
        }
    )


class JobOut(BaseModel):
    id: int
    experiment: str
    status: JobStatus
    origin: str = Field(description="request, plan or autofill.")
    params: float = Field(description="Total parameters of the shape built (config.built).")
    tokens: float = Field(description="Tokens the trainer trains (whole batches).")
    flops: float = Field(
        description="FLOPs it trains, 6 * params * tokens as built (with cooldown branches: "
        "6 * params * the tokens of its trunk plus every cooldown); once succeeded, as trained. "
        "config.planned: as asked."
    )
    config: dict[str, Any]
    attempts: int
    max_attempts: int
    executor: str | None
    handle: str | None = Field(description="The executor's id for the job (pid, Ray job id).")
    lease_owner: str | None
    heartbeat_at: datetime | None
    cancel_requested: bool
    progress: float
    log_tail: str
    error: str | None
    result_run_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class AutofillSettings(StrictModel):
    enabled: bool = False
    experiment_budget_flops: Flops = Field(description="Total FLOPs the autopilot may use.")
    target_flops: Flops = Field(description="Budget whose N_opt should become certain.")
    max_flops_per_run: Flops
    min_flops_per_run: Flops = 1e15
    stop_when_n_opt_width_below: float = Field(
        default=0.1,
        gt=0,
        allow_inf_nan=False,
        description="Stop when the 90% interval of N_opt(target) is narrower than this, as "
        "log(high / low).",
    )
    batch_size: int = Field(default=8, ge=1, le=100)
    overhead_flops: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description=OVERHEAD_DESCRIPTION
    )
    max_branches_per_run: int = Field(default=3, ge=1, le=6, description=BRANCHES_DESCRIPTION)
    experiment_max_runs: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="The most jobs the autopilot may queue in all (each trains one run, its "
        "points counted once; failed and cancelled jobs do not count); null: no cap. The "
        "planner is given the runs left as its `max_runs`.",
    )
    bootstrap: int = Field(default=200, ge=20, le=2000, description="Resamples of its fits.")
    trainer: TrainerFields = Field(
        default_factory=dict,
        description="Trainer config fields for its jobs (device, corpus, context, recipe).",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "enabled": True,
                    "experiment_budget_flops": 1e22,
                    "target_flops": 1e24,
                    "max_flops_per_run": 1e21,
                }
            ]
        }
    )


class AutofillOut(BaseModel):
    settings: AutofillSettings | None
    state: Literal["off", "waiting", "running", "blocked", "done", "exhausted"]
    spent_flops: float = Field(
        description="FLOPs (6 N D) of the autopilot's finished runs as trained, plus its queued "
        "and running jobs as they will be built."
    )
    remaining_flops: float | None
    runs: int = Field(
        description="The autopilot's jobs queued, running or succeeded (what its run cap counts)."
    )
    remaining_runs: int | None = Field(
        description="Jobs it may still queue under `experiment_max_runs` (null: no cap)."
    )
    n_opt_width: float | None = Field(description="log(high / low) of N_opt(target) now.")
    message: str
