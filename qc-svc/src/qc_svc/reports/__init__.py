"""Quality reports derived from the inspection history: yield, rework, defects."""
