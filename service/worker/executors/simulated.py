"""Simulated executor: losses drawn from a given law with noise, for demos and the planner
benchmark. Every run it produces says so (source `simulated`, metadata.simulated = true).

A job whose trainer config asks for schedule wsd with `branch_tokens` is simulated as the
trainer would run it: one run per branch (the job's own, its longest, first; the others
`job-<id>@<tokens>`, shortest first), all after a cooldown and sharing the job's trunk_key,
their log-noise correlated through the trunk (``service.scaling.branches``), and the job's
trained FLOPs the trunk once plus every cooldown.
"""

import hashlib
from typing import Any

import numpy as np

from service.scaling import AnyLaw, simulate_loss
from service.scaling.branches import (
    COOLDOWN_FRACTION,
    TRUNK_CORRELATION,
    simulate_trunk_losses,
    trained_flops,
)
from service.trainer.report import branch_run_key
from service.worker.executors.base import JobSpec, Outcome, UnknownHandleError


class SimulatedExecutor:
    name = "simulated"

    def __init__(
        self,
        law: AnyLaw,
        law_name: str,
        noise: float = 0.01,
        slots: int = 8,
        trunk_correlation: float = TRUNK_CORRELATION,
    ) -> None:
        self.law = law
        self.law_name = law_name
        self.noise = noise
        self.slots = slots
        self.trunk_correlation = trunk_correlation
        self._pending: dict[str, JobSpec] = {}
        self._cancelled: set[str] = set()

    def submit(self, spec: JobSpec) -> str:
        handle = spec.run_key
        self._pending[handle] = spec
        return handle

    def _rng(self, spec: JobSpec) -> np.random.Generator:
        # The same job gives the same losses on every attempt (seeded by its id).
        seed = int.from_bytes(hashlib.sha256(spec.run_key.encode()).digest()[:8], "little")
        return np.random.default_rng(seed)

    def poll(self, handle: str) -> Outcome:
        if handle in self._cancelled:
            self._cancelled.discard(handle)
            return Outcome("cancelled")
        spec = self._pending.pop(handle, None)
        if spec is None:
            raise UnknownHandleError(handle)
        trainer: dict[str, Any] = spec.config.get("trainer") or {}
        branches = [float(d) for d in trainer.get("branch_tokens") or ()]
        if trainer.get("schedule") != "wsd" or not branches:
            loss = simulate_loss(
                self.law, [spec.params], [spec.tokens], self.noise, self._rng(spec)
            )
            run = self._run(spec, spec.run_key, spec.tokens, float(loss[0]))
            return Outcome("succeeded", progress=1.0, runs=(run,), trained_flops=run["flops"])
        fraction = float(trainer.get("cooldown_fraction", COOLDOWN_FRACTION))
        losses = simulate_trunk_losses(
            self.law, spec.params, branches, self.noise, self.trunk_correlation, self._rng(spec)
        )
        runs = []
        for index, (tokens, loss) in enumerate(zip(branches, losses.tolist(), strict=True)):
            last = index == len(branches) - 1
            key = spec.run_key if last else branch_run_key(spec.run_key, round(tokens))
            run = self._run(spec, key, tokens, loss)
            run.update(
                loss_provenance="after_cooldown",
                cooldown_fraction=fraction,
                trunk_key=spec.run_key,
            )
            runs.append(run)
        return Outcome(
            "succeeded",
            progress=1.0,
            runs=(runs[-1], *runs[:-1]),
            trained_flops=trained_flops(spec.params, branches, fraction),
        )

    def _run(self, spec: JobSpec, key: str, tokens: float, loss: float) -> dict[str, Any]:
        return {
            "run_key": key,
            "params": spec.params,
            "tokens": tokens,
            "flops": 6.0 * spec.params * tokens,
            "loss": loss,
            "seed": spec.job_id,
            "metadata": {
                "simulated": True,
                "law": self.law_name,
                "noise": self.noise,
                "trunk_correlation": self.trunk_correlation,
            },
            "source": "simulated",
        }

    def cancel(self, handle: str) -> None:
        if self._pending.pop(handle, None) is None:
            raise UnknownHandleError(handle)
        self._cancelled.add(handle)

    def close(self) -> None:
        self._pending.clear()
