"""Values of the planner: a planned run, a plan (JSON round-trip), and the set of runs taken."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.scaling.result import Source, source_from_json
from service.scaling.shapes import ModelShape

# Two runs are the same when params and tokens both agree within this relative tolerance.
DUPLICATE_RTOL = 0.02
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PlannedRun:
    """params (total), tokens, flops = what the run trains (6 N D; with branches 6 N (Dk + f
    sum_{i<k} Di), ``branches.trained_flops``); gain: expected reduction of Var[log N_opt(C_target)]
    per FLOP (plus the per-run overhead) when picked (linearised; seed runs: in the order
    listed); variance_drop: that reduction; reason: why this run; branch_tokens: for a run with
    several points, the tokens of each (ascending, the last = tokens), each a cooldown of
    ``cooldown_fraction`` of its steps from one constant-LR trunk (schedule wsd); () for a run
    of one point (cosine)."""

    params: float
    tokens: float
    flops: float
    shape: ModelShape
    gain: float
    variance_drop: float
    reason: str
    branch_tokens: tuple[float, ...] = ()
    cooldown_fraction: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "tokens": self.tokens,
            "flops": self.flops,
            "shape": self.shape.to_json(),
            "gain": self.gain,
            "variance_drop": self.variance_drop,
            "reason": self.reason,
            "branch_tokens": list(self.branch_tokens),
            "cooldown_fraction": self.cooldown_fraction,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlannedRun:
        return cls(
            params=float(data["params"]),
            tokens=float(data["tokens"]),
            flops=float(data["flops"]),
            shape=ModelShape(**data["shape"]),
            gain=float(data["gain"]),
            variance_drop=float(data["variance_drop"]),
            reason=str(data["reason"]),
            branch_tokens=tuple(float(d) for d in data.get("branch_tokens") or ()),
            cooldown_fraction=(
                None if data.get("cooldown_fraction") is None else float(data["cooldown_fraction"])
            ),
        )


@dataclass(frozen=True)
class Plan:
    """phase: "seed" or "active"; sd_before / sd_after: linearised standard deviation of
    log N_opt(target_flops) (natural log) under ``law`` with log-loss noise ``noise``, before the
    runs and expected after them (sd_before is None with no runs yet); total_flops: what the runs
    train (6 N D; runs with branches: the trunk once plus every cooldown); overhead_flops: the
    fixed cost charged per run (start-up, evaluation), so the plan costs ``cost_flops`` =
    total_flops + runs x overhead_flops."""

    phase: str
    runs: tuple[PlannedRun, ...]
    total_flops: float
    target_flops: float
    budget_left: float
    sd_before: float | None
    sd_after: float
    noise: float
    law: Source
    notes: tuple[str, ...] = ()
    overhead_flops: float = 0.0

    @property
    def cost_flops(self) -> float:
        return self.total_flops + len(self.runs) * self.overhead_flops

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "runs": [r.to_json() for r in self.runs],
            "total_flops": self.total_flops,
            "target_flops": self.target_flops,
            "budget_left": self.budget_left,
            "sd_before": self.sd_before,
            "sd_after": self.sd_after,
            "noise": self.noise,
            "law": self.law.to_json(),
            "notes": list(self.notes),
            "overhead_flops": self.overhead_flops,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        sd = data.get("sd_before")
        return cls(
            phase=str(data["phase"]),
            runs=tuple(PlannedRun.from_json(r) for r in data["runs"]),
            total_flops=float(data["total_flops"]),
            target_flops=float(data["target_flops"]),
            budget_left=float(data["budget_left"]),
            sd_before=None if sd is None else float(sd),
            sd_after=float(data["sd_after"]),
            noise=float(data["noise"]),
            law=source_from_json(data["law"]),
            notes=tuple(str(n) for n in data.get("notes", [])),
            overhead_flops=float(data.get("overhead_flops", 0.0)),
        )


class Taken:
    """Runs done, queued or planned, for the duplicate check (log space)."""

    def __init__(self, pairs: Iterable[tuple[float, float]]) -> None:
        arr = np.asarray(list(pairs), dtype=np.float64).reshape(-1, 2)
        self.logs = np.log(arr) if arr.size else np.zeros((0, 2))

    def clashes(self, log_n: FloatArray, log_d: FloatArray) -> NDArray[np.bool_]:
        if self.logs.shape[0] == 0:
            return np.zeros(log_n.shape, dtype=bool)
        tol = np.log1p(DUPLICATE_RTOL)
        dn = np.abs(log_n[..., None] - self.logs[:, 0])
        dd = np.abs(log_d[..., None] - self.logs[:, 1])
        return np.asarray(((dn <= tol) & (dd <= tol)).any(axis=-1))

    def add(self, params: float, tokens: float) -> None:
        self.logs = np.vstack([self.logs, np.log([[params, tokens]])])
