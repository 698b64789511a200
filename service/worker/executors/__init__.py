"""Executors behind one interface (base.Executor): local subprocesses, Ray Jobs, simulated."""
