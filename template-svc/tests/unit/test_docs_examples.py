"""The version documents the docs hand to new users (docs/examples/) import and publish as they
are: a valid import document, and a graph with no validation problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from template_svc.graph.validation import validate_graph
from template_svc.versions.schemas import VersionDocument

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "docs" / "examples").glob("*.yaml"))


def test_the_docs_have_examples() -> None:
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_an_example_imports_and_publishes_as_it_is(path: Path) -> None:
    document = VersionDocument.model_validate(yaml.safe_load(path.read_text()))
    assert validate_graph(document.model_dump(mode="json")) == []
