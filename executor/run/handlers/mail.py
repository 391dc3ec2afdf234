"""``MailSend``: one email over SMTP from the host.

``transportStrategy`` is Kestra's: ``SMTPS`` (TLS from the first byte, port 465, the default),
``SMTP_TLS`` (STARTTLS, required, port 587) or ``SMTP`` (plain, port 25). Certificates are
checked unless ``verifyServerIdentity: false`` or the host is one of ``trustedHosts``. Attachments
and embedded images come from the artifact store (``kestra:///`` URIs).
"""

from __future__ import annotations

import json
import smtplib
import ssl
import time
from email.message import EmailMessage
from typing import Any

from executor.errors import ExecutorError
from executor.flow.tasks_notify import MailAttachment, MailSendTask
from executor.model import Level, State
from executor.run.handlers.attempts import AttemptResult, Handler, with_attempts
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt

DEFAULT_PORTS = {"SMTPS": 465, "SMTP_TLS": 587, "SMTP": 25}
NO_HTML_CLIENT = "Please view this email in a modern email client"  # Kestra's plain-text default


def _addresses(value: str | list[str] | None, job: HostJob) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    found: list[str] = []
    for item in items:
        text = job.text(item)
        found += [a.strip() for a in text.replace(",", ";").split(";") if a.strip()]
    return found


def _attachments(value: list[MailAttachment] | str | None, job: HostJob) -> list[MailAttachment]:
    """Attachments given as a list, or as JSON text (``{{ inputs.files | toJson }}``)."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    text = job.text(value).strip()
    if not text:
        return []
    try:
        parsed = json.loads(text)
        if isinstance(parsed, str):
            parsed = json.loads(parsed)
        items = parsed if isinstance(parsed, list) else [parsed]
        return [MailAttachment.model_validate(item) for item in items]
    except ValueError as exc:
        raise TaskInputError(f"attachments must be a list of {{uri, name}}: {exc}") from None


def build_message(task: MailSendTask, job: HostJob) -> tuple[EmailMessage, list[str]]:
    """The message and its envelope recipients (to and cc)."""
    to, cc = _addresses(task.to, job), _addresses(task.cc, job)
    if not to:
        raise TaskInputError("'to' names no recipient")
    message = EmailMessage()
    message["From"] = job.text(task.from_)
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    if task.subject is not None:
        message["Subject"] = job.text(task.subject)
    html = job.text(task.htmlTextContent) if task.htmlTextContent is not None else None
    plain = job.text(task.plainTextContent) if task.plainTextContent is not None else None
    message.set_content(plain if plain is not None else NO_HTML_CLIENT)
    if html is not None:
        message.add_alternative(html, subtype="html")
        images = _attachments(task.embeddedImages, job)
        if images:
            html_part = message.get_body(("html",))
            assert isinstance(html_part, EmailMessage)  # add_alternative made it
            for image in images:
                data, maintype, subtype = _read(image, job)
                html_part.add_related(
                    data, maintype, subtype, cid=f"<{job.text(image.name)}>", filename=image.name
                )
    for attachment in _attachments(task.attachments, job):
        data, maintype, subtype = _read(attachment, job)
        message.add_attachment(
            data, maintype=maintype, subtype=subtype, filename=job.text(attachment.name)
        )
    return message, to + cc


def _read(attachment: MailAttachment, job: HostJob) -> tuple[bytes, str, str]:
    uri = job.text(attachment.uri)
    try:
        with job.artifacts().open(uri) as fh:
            data = fh.read()
    except ExecutorError as exc:
        raise TaskInputError(f"attachment '{attachment.name}': {exc.message}") from None
    maintype, _, subtype = job.text(attachment.contentType).partition("/")
    return data, maintype or "application", subtype or "octet-stream"


def _tls_context(task: MailSendTask, job: HostJob, host: str) -> ssl.SSLContext:
    context = ssl.create_default_context()
    trusted = [job.text(h) for h in task.trustedHosts or []]
    verify = job.flag(task.verifyServerIdentity, "verifyServerIdentity", True)
    if not verify or host in trusted:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _send(task: MailSendTask, job: HostJob) -> AttemptResult:
    strategy = job.text(task.transportStrategy).strip().upper()
    if strategy not in DEFAULT_PORTS:
        raise TaskInputError(
            f"transportStrategy {strategy!r} is not supported here (SMTPS, SMTP_TLS or SMTP)"
        )
    host = job.text(task.host).strip()
    port = job.integer(task.port, "port") or DEFAULT_PORTS[strategy]
    timeout = (job.integer(task.sessionTimeout, "sessionTimeout") or 10000) / 1000
    deadline = job.deadline()
    if deadline is not None:
        timeout = max(0.1, min(timeout, deadline - time.monotonic()))
    user = job.text(task.username) if task.username else None
    password = job.text(task.password) if task.password else None
    if password:
        job.ctx.secrets.remember(password)
    message, recipients = build_message(task, job)
    where = f"{host}:{port}"
    try:
        _deliver(task, job, strategy, host, port, timeout, user, password, message, recipients)
    except smtplib.SMTPAuthenticationError as exc:
        raise TaskInputError(f"the SMTP server {where} refused the login: {_smtp(exc)}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        refused = ", ".join(exc.recipients)
        raise TaskInputError(f"the SMTP server {where} refused the recipients {refused}") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise TaskInputError(f"the SMTP server {where}: {exc}") from None
    except smtplib.SMTPResponseException as exc:
        raise TaskInputError(f"the SMTP server {where} answered {_smtp(exc)}") from None
    except ssl.SSLError as exc:
        raise TaskInputError(
            f"TLS with {where} failed ({exc.reason or exc}); for a self-signed certificate "
            "list the host in trustedHosts"
        ) from None
    except TimeoutError:
        raise TaskInputError(f"the SMTP server {where} did not answer in {timeout:g}s") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise TaskInputError(f"cannot send through {where}: {exc}") from None
    job.log(Level.INFO, f"email sent to {', '.join(recipients)} through {where} ({strategy})")
    return AttemptResult(State.SUCCESS)


def _deliver(
    task: MailSendTask,
    job: HostJob,
    strategy: str,
    host: str,
    port: int,
    timeout: float,
    user: str | None,
    password: str | None,
    message: EmailMessage,
    recipients: list[str],
) -> None:
    client: smtplib.SMTP
    if strategy == "SMTPS":
        client = smtplib.SMTP_SSL(
            host, port, timeout=timeout, context=_tls_context(task, job, host)
        )
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    with client:
        if strategy == "SMTP_TLS":
            client.ehlo()
            if not client.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError(
                    "no STARTTLS (transportStrategy SMTP_TLS needs it)"
                )
            client.starttls(context=_tls_context(task, job, host))
            client.ehlo()
        if user:
            client.login(user, password or "")
        client.send_message(message, to_addrs=recipients)


def _smtp(exc: Any) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else ""
    return f"{exc.smtp_code} {text}".strip()


mail_attempt = host_attempt(_send)


HANDLES: dict[type[Any], Handler[Any]] = {
    MailSendTask: with_attempts(mail_attempt),
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
