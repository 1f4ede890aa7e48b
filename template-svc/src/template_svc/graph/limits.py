"""Size limits of templates and graphs (documented in docs/templates.md)."""

from __future__ import annotations

# A version holds up to 10,000 nodes and 20,000 edges (tests/perf/bench_templates.py measures
# validating, publishing and reading a graph of exactly that size).
MAX_NODES = 10_000
MAX_EDGES = 20_000
MAX_CHECKLIST_ITEMS = 50
MAX_KEY_LENGTH = 64
MAX_TITLE_LENGTH = 200
MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 4000
MAX_CHANGELOG_LENGTH = 4000
MAX_CHECKLIST_TEXT_LENGTH = 1000
MAX_KIND_LENGTH = 64
MAX_ROLE_HINT_LENGTH = 64
MAX_HOURS = 100_000.0
MIN_PRIORITY, MAX_PRIORITY, DEFAULT_PRIORITY = 0, 100, 50
MAX_IMPORT_BYTES = 16 * 1024 * 1024  # an export at the node and edge limits fits

# Template keys are slugs; node and checklist keys may also use '_' and '.'.
TEMPLATE_KEY_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
NODE_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
