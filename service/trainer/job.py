"""The worker's job file: which experiment, which run key, which training config."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.trainer.config import TrainConfig
from service.trainer.errors import ConfigError, JobError
from service.trainer.recipe import make_plan
from service.trainer.schedule import make_branches


@dataclass(frozen=True)
class Job:
    """job_id is the run key: reporting the same job twice is idempotent."""

    job_id: str
    experiment: str
    config: TrainConfig
    hyperparameters: dict[str, Any]

    @classmethod
    def from_dict(cls, data: Any) -> Job:
        if not isinstance(data, dict):
            raise JobError("top level must be an object")
        for key in ("job_id", "experiment", "config"):
            if key not in data:
                raise JobError(f"missing {key!r}")
        if not isinstance(data["job_id"], str | int) or not isinstance(data["experiment"], str):
            raise JobError("job_id must be a string or integer and experiment a string")
        try:
            config = TrainConfig.from_dict(data["config"])
            if config.schedule == "wsd":  # the branches' steps need the recipe's batch
                make_branches(config, make_plan(config))
        except ConfigError as exc:
            raise JobError(str(exc)) from exc
        extra = data.get("hyperparameters", {})
        if not isinstance(extra, dict):
            raise JobError("hyperparameters must be an object")
        return cls(str(data["job_id"]), data["experiment"], config, extra)

    @classmethod
    def load(cls, path: Path) -> Job:
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise JobError(f"{path}: {exc}") from exc
        return cls.from_dict(data)
