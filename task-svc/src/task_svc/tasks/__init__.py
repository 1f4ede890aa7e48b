"""Tasks: one per template node per deliverable, their dependencies and their history."""
