"""Projects: started from a pinned template version, with a frozen snapshot of its graph."""
