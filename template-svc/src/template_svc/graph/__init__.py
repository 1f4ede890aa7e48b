"""The task graph of a template version: its schema, pure validation, diff and checksum."""
