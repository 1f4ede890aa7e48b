"""A notification's mail: subject, plain text and HTML from the Jinja2 templates of this package.

HTML templates escape every value (autoescape); the plain text ones do not. Links go through the
gateway (`public_base_url`): a task's link is its API resource, which a user's token opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from notify_svc.notifications import rules


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str
    html: str


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("notify_svc.notifications", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def subject_of(rule: str, values: dict[str, Any]) -> str:
    task = values.get("task") or {}
    event = values.get("event") or {}
    subjects = {
        rules.TASK_ASSIGNED: f"Assigned to you: {task.get('title')}",
        rules.QC_FAILED: f"QC rejected: {task.get('title')}",
        rules.READY_FOR_SIGNOFF: f"Ready for sign-off: {event.get('serial')}",
        rules.DEADLINE_REMINDER: f"Due soon: {task.get('title')}",
        rules.DEADLINE_OVERDUE: f"Overdue: {task.get('title')}",
    }
    subject = subjects.get(rule) or str(values.get("subject") or "Blueprint notification")
    return " ".join(subject.split())[:200]  # one line: a header cannot hold line breaks


def link_of(base_url: str, values: dict[str, Any]) -> str | None:
    base = base_url.rstrip("/")
    task = values.get("task") or {}
    event = values.get("event") or {}
    if task.get("task_id"):
        return f"{base}/api/v1/tasks/{task['task_id']}"
    if event.get("deliverable_id"):
        return f"{base}/api/v1/deliverables/{event['deliverable_id']}"
    return None


def render(rule: str, values: dict[str, Any], *, base_url: str) -> Mail:
    """The mail of `rule` (an event type, a deadline rule, or `adhoc`) for these values."""
    name = rule if rule in rules.CATALOGUE else "adhoc"
    link = link_of(base_url, values) if name != "adhoc" else None
    subject = subject_of(rule, values)
    variables = {"locale": "en", "recipient_name": "", **values, "link": link, "subject": subject}
    env = _environment()
    text = env.get_template(f"{name}.txt.j2").render(variables)
    html = env.get_template(f"{name}.html.j2").render(variables)
    return Mail(subject=subject, text=text, html=html)
