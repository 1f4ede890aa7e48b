"""Sending one mail over SMTP (aiosmtplib): STARTTLS, implicit TLS and login from the settings.

Every mail carries a Message-ID made from its notification id, the same on every attempt.
`before_data` runs right before the message itself is transferred (after the connection,
STARTTLS, login and the envelope were accepted): from then on the server may have the mail
whatever happens to this process, so the caller records that first.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, getaddresses

import aiosmtplib

from notify_svc.settings import Settings


@dataclass(frozen=True)
class SmtpResult:
    ok: bool
    duration_ms: int
    error: str | None = None


def message(
    *, settings: Settings, to: str, subject: str, text: str, html: str, message_id: str
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = f"<{message_id}@blueprint.notifications>"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


async def send(
    settings: Settings,
    msg: EmailMessage,
    *,
    before_data: Callable[[], Awaitable[None]] | None = None,
) -> SmtpResult:
    started = time.perf_counter()
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    client = aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=password,
        use_tls=settings.smtp_tls,
        start_tls=settings.smtp_starttls if not settings.smtp_tls else False,
        timeout=settings.smtp_timeout_seconds,
    )
    sender = getaddresses([str(msg["From"])])[0][1]
    recipients = [address for _, address in getaddresses([str(msg["To"])])]
    try:
        async with client:
            await client.mail(sender)
            for recipient in recipients:
                await client.rcpt(recipient)
            if before_data is not None:
                await before_data()
            await client.data(msg.as_bytes())
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        # Refusals (4xx and 5xx alike), timeouts and lost connections: retried until the
        # attempts run out, then the notification is failed and can be retried by hand.
        return SmtpResult(False, _ms(started), _describe(exc))
    return SmtpResult(True, _ms(started))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
