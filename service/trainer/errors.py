"""Errors raised by the trainer; each docstring is the message."""


class TrainerError(Exception):
    """The trainer failed."""

    def __str__(self) -> str:
        detail = super().__str__()
        doc = (type(self).__doc__ or "").strip()
        return f"{doc} {detail}".strip() if detail else doc


class ConfigError(TrainerError):
    """The training configuration is invalid."""


class JobError(TrainerError):
    """The job file is invalid."""


class CorpusError(TrainerError):
    """The corpus could not be built or loaded."""


class ReportError(TrainerError):
    """The service did not accept the run."""
