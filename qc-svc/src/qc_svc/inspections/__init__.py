"""Inspections: one per QC round of a task, claimed and decided by an inspector."""
