"""Handlers of the events qc-svc consumes."""
