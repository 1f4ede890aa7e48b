"""Deliverables: the produced items of a project, each with a serial number."""
