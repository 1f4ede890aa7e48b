"""Handlers of the events task-svc consumes (QC decisions from qc-svc)."""
