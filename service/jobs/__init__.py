"""The jobs domain: planning runs into queued training jobs, and the autopilot's decisions.

The API, the dashboard and the worker loop all call into here; the worker (service/worker/) is
only the loop that claims jobs, runs them on an executor and ingests their results.
"""
