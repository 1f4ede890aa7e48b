"""The event catalogue: registry contents, envelope parsing, and docs/events.md kept current."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts import CloudEvent, all_events, spec_for
from contracts.catalogue import default_doc_path, main, render, updated
from contracts.templates import TemplateVersionPublishedV1


def test_docs_events_md_is_up_to_date() -> None:
    current = default_doc_path().read_text(encoding="utf-8")
    assert updated(current, render()) == current, "run `uv run python -m contracts.catalogue`"
    assert main(["--check"]) == 0


def test_every_registered_event_has_a_type_version_producer_and_schema() -> None:
    specs = all_events()
    assert specs
    for spec in specs:
        assert "." in spec.event_type
        assert spec.version >= 1
        assert spec.producer.endswith("-svc")
        assert spec.model.model_json_schema()["properties"]


def test_template_version_published_is_published_by_template_svc() -> None:
    spec = spec_for("template.version.published")
    assert spec is not None
    assert spec.model is TemplateVersionPublishedV1
    assert spec.producer == "template-svc"
    assert spec.dataschema == "urn:blueprint:event:template.version.published:v1"
    assert f"### `{spec.event_type}` (v1)" in render()


def test_an_envelope_parses_into_its_typed_payload() -> None:
    template_id = uuid.uuid4()
    document = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "template-svc",
        "type": "template.version.published",
        "time": datetime.now(UTC).isoformat(),
        "subject": str(template_id),
        "data": {
            "template_id": str(template_id),
            "org_id": str(uuid.uuid4()),
            "key": "cabinet",
            "version": 2,
            "checksum": "a" * 64,
            "published_at": datetime.now(UTC).isoformat(),
            "published_by": str(uuid.uuid4()),
        },
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
    event = CloudEvent[TemplateVersionPublishedV1].model_validate(document)
    assert event.data.template_id == template_id
    assert event.data.version == 2
    assert event.datacontenttype == "application/json"
