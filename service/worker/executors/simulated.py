"""Simulated executor: losses drawn from a given law with noise, for demos and the planner
benchmark. Every run it produces says so (source `simulated`, metadata.simulated = true)."""

import hashlib

import numpy as np

from service.scaling import AnyLaw, simulate_loss
from service.worker.executors.base import JobSpec, Outcome, UnknownHandleError


class SimulatedExecutor:
    name = "simulated"

    def __init__(self, law: AnyLaw, law_name: str, noise: float = 0.01, slots: int = 8) -> None:
        self.law = law
        self.law_name = law_name
        self.noise = noise
        self.slots = slots
        self._pending: dict[str, JobSpec] = {}
        self._cancelled: set[str] = set()

    def submit(self, spec: JobSpec) -> str:
        handle = spec.run_key
        self._pending[handle] = spec
        return handle

    def _loss(self, spec: JobSpec) -> float:
        # The same job gives the same loss on every attempt (seeded by its id).
        seed = int.from_bytes(hashlib.sha256(spec.run_key.encode()).digest()[:8], "little")
        rng = np.random.default_rng(seed)
        return float(simulate_loss(self.law, [spec.params], [spec.tokens], self.noise, rng)[0])

    def poll(self, handle: str) -> Outcome:
        if handle in self._cancelled:
            self._cancelled.discard(handle)
            return Outcome("cancelled")
        spec = self._pending.pop(handle, None)
        if spec is None:
            raise UnknownHandleError(handle)
        run = {
            "run_key": spec.run_key,
            "params": spec.params,
            "tokens": spec.tokens,
            "loss": self._loss(spec),
            "seed": spec.job_id,
            "metadata": {"simulated": True, "law": self.law_name, "noise": self.noise},
            "source": "simulated",
        }
        return Outcome("succeeded", progress=1.0, run=run)

    def cancel(self, handle: str) -> None:
        if self._pending.pop(handle, None) is None:
            raise UnknownHandleError(handle)
        self._cancelled.add(handle)

    def close(self) -> None:
        self._pending.clear()
