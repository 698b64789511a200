"""scaling-service: fit scaling laws to training runs and allocate training budgets."""

__version__ = "0.1.0"
