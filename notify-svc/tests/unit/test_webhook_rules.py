"""Pure rules of webhooks: SSRF address rules, signatures as Standard Webhooks verifies them,
the retry policy and event type filters."""

from __future__ import annotations

import ipaddress
import random
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from notify_svc.delivery.policy import DEAD, FAILED, SUCCEEDED, decide, retry_after_seconds
from notify_svc.webhooks import signing
from notify_svc.webhooks.matching import matches, unknown_patterns
from notify_svc.webhooks.ssrf import address_rule


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("10.0.0.1", "private"),
        ("192.168.1.10", "private"),
        ("172.16.0.1", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.1.2.3", "private"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.10.1", "link_local"),
        ("fe80::1", "link_local"),
        ("100.64.0.1", "carrier_grade_nat"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("fc00::1", "private"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_every_address_class_is_named_by_its_rule(address: str, rule: str | None) -> None:
    assert address_rule(ipaddress.ip_address(address)) == rule


def test_signatures_verify_with_the_standardwebhooks_package() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_") and len(signing.secret_key_bytes(secret)) >= 24
    body = b'{"type":"task.status_changed"}'
    now = int(datetime.now(UTC).timestamp())
    headers = {
        "webhook-id": "evt-1",
        "webhook-timestamp": str(now),
        "webhook-signature": signing.signature_header([secret], "evt-1", now, body),
    }
    assert Webhook(secret).verify(body, headers) == {"type": "task.status_changed"}
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)


def test_during_rotation_both_secrets_verify() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    body, now = b"{}", int(datetime.now(UTC).timestamp())
    header = signing.signature_header([new, old], "evt-2", now, body)
    assert header.count("v1,") == 2
    headers = {"webhook-id": "evt-2", "webhook-timestamp": str(now), "webhook-signature": header}
    assert Webhook(old).verify(body, headers) == {}
    assert Webhook(new).verify(body, headers) == {}


def test_secrets_are_encrypted_at_rest_and_come_back() -> None:
    from notify_svc.settings import Settings

    box = signing.SecretBox(Settings())
    secret = signing.new_secret()
    sealed = box.encrypt(secret)
    assert secret not in sealed
    assert box.decrypt(sealed) == secret
    with pytest.raises(RuntimeError, match="production"):
        signing.SecretBox(Settings(environment="production"))


NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_only_2xx_succeeds_and_the_schedule_ends_in_dead() -> None:
    schedule = [10.0, 100.0]
    rng = random.Random(1)
    assert decide(status_code=204, attempt=1, schedule=schedule, now=NOW).status == SUCCEEDED
    first = decide(status_code=500, attempt=1, schedule=schedule, now=NOW, rng=rng)
    assert first.status == FAILED and first.next_attempt_at is not None
    assert timedelta(seconds=8) <= first.next_attempt_at - NOW <= timedelta(seconds=12)
    second = decide(status_code=None, attempt=2, schedule=schedule, now=NOW, rng=rng)
    assert second.next_attempt_at is not None
    assert timedelta(seconds=80) <= second.next_attempt_at - NOW <= timedelta(seconds=120)
    assert decide(status_code=302, attempt=3, schedule=schedule, now=NOW).status == DEAD


def test_410_disables_and_retry_after_is_honoured_up_to_the_cap() -> None:
    gone = decide(status_code=410, attempt=1, schedule=[5.0], now=NOW)
    assert gone.disable_endpoint
    limited = decide(
        status_code=429, attempt=1, schedule=[5.0], retry_after="120", now=NOW,
        retry_after_cap=60.0,
    )  # fmt: skip
    assert limited.next_attempt_at == NOW + timedelta(seconds=60)
    unavailable = decide(status_code=503, attempt=1, schedule=[5.0], retry_after="7", now=NOW)
    assert unavailable.next_attempt_at == NOW + timedelta(seconds=7)
    assert retry_after_seconds("Tue, 01 Dec 2026 09:00:30 GMT", NOW) == 30.0
    assert retry_after_seconds("soon", NOW) is None


def test_event_type_patterns() -> None:
    assert matches("task.*", "task.status_changed")
    assert not matches("task.*", "taskx.status_changed")
    assert matches("qc.*", "qc.inspection.failed")
    assert matches("*", "project.created")
    assert not matches("task.assigned", "task.unblocked")
    assert unknown_patterns(["task.*", "nothing.*", "task.nope"]) == ["nothing.*", "task.nope"]


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://[::1/hook", "url"),
        ("http://example.com:99999/", "port"),
        ("http:///nohost", "host"),
        ("https://exa\x00mple.com/", "unresolvable"),
    ],
)
async def test_malformed_urls_are_refused_with_a_rule_never_an_error(url: str, rule: str) -> None:
    from notify_svc.webhooks.ssrf import UrlRefused, check_url

    with pytest.raises(UrlRefused) as refused:
        await check_url(url, allowed=[], require_https=False)
    assert refused.value.rule == rule
