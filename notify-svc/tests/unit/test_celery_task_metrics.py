"""Every Celery task run is counted by its end state, through Celery's own task signals."""

from __future__ import annotations

from celery import Celery
from prometheus_client import REGISTRY

from notify_svc.webhooks import metrics


def _runs(task: str, state: str) -> float:
    value = REGISTRY.get_sample_value("celery_task_runs_total", {"task": task, "state": state})
    assert value is not None, f"no series for {task}/{state}"
    return value


def test_task_runs_are_counted_as_succeeded_failed_or_other() -> None:
    app = Celery("metrics-test", broker="memory://")
    app.conf.task_always_eager = True

    @app.task(name="notify_svc.prune")
    def prune() -> int:
        return 1

    @app.task(name="notify_svc.remind")
    def remind() -> int:
        raise RuntimeError("task-svc is gone")

    @app.task(name="somebody_else.job")
    def foreign() -> None:
        return None

    before = {
        key: _runs(*key)
        for key in (("prune", "succeeded"), ("remind", "failed"), ("remind", "succeeded"))
    }
    other_before = REGISTRY.get_sample_value(
        "celery_task_runs_total", {"task": "other", "state": "succeeded"}
    )
    prune.apply()
    prune.apply()
    remind.apply()  # eager: the exception is kept in the result, the run ended FAILURE
    foreign.apply()
    assert _runs("prune", "succeeded") - before[("prune", "succeeded")] == 2
    assert _runs("remind", "failed") - before[("remind", "failed")] == 1
    assert _runs("remind", "succeeded") == before[("remind", "succeeded")]
    assert _runs("other", "succeeded") - (other_before or 0) == 1
    assert set(metrics.CELERY_TASK_NAMES) >= {"deliver", "send_notification", "gauges"}
