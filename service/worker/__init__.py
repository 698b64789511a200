"""The gap-filling worker: a loop over the jobs table that runs training jobs on an executor."""
