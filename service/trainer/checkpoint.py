"""An in-memory checkpoint of a run: model, optimizer, data position and random state.

A WSD branch cools down from one and the trunk resumes from it, bit for bit as if the branch
had never run. The copies live in host memory, so a branch leaves the GPU's peak unchanged.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass
from typing import Any

import torch


def _to_host(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: _to_host(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_host(item) for item in value)
    return deepcopy(value)


@dataclass(frozen=True)
class Checkpoint:
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    data_rng: torch.Tensor  # the training-window sampler's generator: the data position
    cpu_rng: torch.Tensor
    cuda_rng: list[torch.Tensor] | None

    @classmethod
    def take(
        cls, model: torch.nn.Module, optimizer: torch.optim.Optimizer, data_gen: torch.Generator
    ) -> Checkpoint:
        return cls(
            model=_to_host(model.state_dict()),
            optimizer=_to_host(optimizer.state_dict()),
            data_rng=data_gen.get_state(),
            cpu_rng=torch.get_rng_state(),
            cuda_rng=torch.cuda.get_rng_state_all() if data_gen.device.type == "cuda" else None,
        )

    def restore(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, data_gen: torch.Generator
    ) -> None:
        """Copies the values back into the same parameters (a compiled loss stays valid);
        the optimizer moves its state back to its parameters' device."""
        model.load_state_dict(self.model)
        optimizer.load_state_dict(self.optimizer)
        data_gen.set_state(self.data_rng)
        torch.set_rng_state(self.cpu_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
