"""MailSend over SMTP against a real aiosmtpd server on 127.0.0.1 (STARTTLS, SMTPS, login)."""

from __future__ import annotations

import base64
import email
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from tests.integration.host_flows import logs, run_json, state_of, task_run
from tests.receivers import Answer, http_receiver, smtp_receiver

pytestmark = pytest.mark.integration

PASSWORD_ENV = {"SECRET_SMTP_PASSWORD": base64.b64encode(b"s3cret").decode()}


def _flow(port: int, strategy: str, extra: str = "") -> str:
    return f"""
id: mailer
namespace: tests.mail
tasks:
  - id: report
    type: io.kestra.plugin.core.http.Download
    uri: "{{{{ inputs.report }}}}"
  - id: send
    type: io.kestra.plugin.notifications.mail.MailSend
    host: 127.0.0.1
    port: {port}
    transportStrategy: {strategy}
    username: mailer
    password: "{{{{ secret('SMTP_PASSWORD') }}}}"
    from: robot@example.test
    to: ops@example.test; lead@example.test
    cc: audit@example.test
    subject: "{{{{ flow.id }}}} report"
    htmlTextContent: "<p>Run {{{{ execution.id }}}} is done</p>"
    attachments:
      - name: report.csv
        uri: "{{{{ outputs.report.uri }}}}"
        contentType: text/csv
{extra}
inputs:
  - id: report
    type: STRING
"""


def _parsed(content: bytes) -> EmailMessage:
    message = email.message_from_bytes(content, policy=default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize("strategy", ["SMTP_TLS", "SMTPS"])
def test_mail_is_delivered_with_login_tls_and_attachment(
    home: Path, tmp_path: Path, strategy: str
) -> None:
    """STARTTLS or SMTPS with a trusted self-signed host: the mail, its recipients and file."""
    with (
        smtp_receiver(tmp_path, implicit_tls=strategy == "SMTPS") as smtp,
        http_receiver() as web,
    ):
        web.answers["/r.csv"] = Answer(body=b"id,total\n1,10\n")
        flow = _flow(smtp.port, strategy, "    trustedHosts: [127.0.0.1]")
        proc, execution = run_json(
            home, tmp_path, flow, "-i", f"report={web.url}/r.csv", env=PASSWORD_ENV
        )
        assert proc.returncode == 0, proc.stderr
        (mail,) = smtp.mails
    assert mail.user == "mailer"
    assert mail.envelope_from == "robot@example.test"
    assert mail.recipients == ["ops@example.test", "lead@example.test", "audit@example.test"]
    message = _parsed(mail.content)
    assert message["Subject"] == "mailer report"
    assert message["Cc"] == "audit@example.test"
    html = message.get_body(("html",))
    assert html is not None and f"Run {execution['id']} is done" in html.get_content()
    (attached,) = list(message.iter_attachments())
    assert attached.get_filename() == "report.csv"
    assert attached.get_content_type() == "text/csv"
    assert attached.get_payload(decode=True) == b"id,total\n1,10\n"
    assert "s3cret" not in logs(home, execution)


def test_untrusted_certificate_and_wrong_password_fail_clearly(home: Path, tmp_path: Path) -> None:
    """A self-signed server not in trustedHosts, then a refused login: one reason each."""
    with smtp_receiver(tmp_path) as smtp, http_receiver() as web:
        web.answers["/r.csv"] = Answer(body=b"x")
        proc, untrusted = run_json(
            home, tmp_path, _flow(smtp.port, "SMTP_TLS"), "-i", f"report={web.url}/r.csv",
            env=PASSWORD_ENV,
        )  # fmt: skip
        assert proc.returncode == 1
        reason = task_run(untrusted, "send")["reason"]
        assert "TLS with 127.0.0.1:" in reason and "trustedHosts" in reason
        wrong = {"SECRET_SMTP_PASSWORD": base64.b64encode(b"nope-wrong").decode()}
        flow = _flow(smtp.port, "SMTP_TLS", "    verifyServerIdentity: false")
        proc, refused = run_json(home, tmp_path, flow, "-i", f"report={web.url}/r.csv", env=wrong)
        assert proc.returncode == 1
        assert smtp.mails == []
    assert state_of(refused, "send") == "FAILED"
    assert "refused the login: 535" in task_run(refused, "send")["reason"]
    assert "nope-wrong" not in logs(home, refused)


def test_nothing_listening_is_one_clear_reason(home: Path, tmp_path: Path) -> None:
    """No SMTP server at the port: FAILED, 'cannot send through 127.0.0.1:PORT'."""
    from tests.receivers import _free_port

    port = _free_port()
    with http_receiver() as web:
        web.answers["/r.csv"] = Answer(body=b"x")
        proc, execution = run_json(
            home, tmp_path, _flow(port, "SMTP"), "-i", f"report={web.url}/r.csv",
            env=PASSWORD_ENV,
        )  # fmt: skip
    assert proc.returncode == 1
    assert f"cannot send through 127.0.0.1:{port}" in task_run(execution, "send")["reason"]
