"""Chat incoming webhooks in ``errors`` branches, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.host_flows import logs, run_json, state_of, task_run
from tests.receivers import Answer, http_receiver

pytestmark = pytest.mark.integration

FAILING = """
id: nightly
namespace: tests.notify
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: disk full
errors:
  - id: alert
    type: {type}
    url: "{url}/hooks/T0K3N-abc"
{body}
"""


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        (
            "io.kestra.plugin.slack.notifications.SlackIncomingWebhook",
            '    messageText: "**{{ flow.id }}** failed: {{ execution.id }}"',
            None,
        ),
        (
            "io.kestra.plugin.notifications.slack.SlackIncomingWebhook",
            "    payload: |\n"
            '      {"text": "Failure alert for {{ flow.namespace }}.{{ flow.id }}"}',
            {"text": "Failure alert for tests.notify.nightly"},
        ),
        (
            "io.kestra.plugin.notifications.teams.TeamsIncomingWebhook",
            '    payload: \'{"text": "{{ flow.id }} failed"}\'',
            {"text": "nightly failed"},
        ),
        (
            "io.kestra.plugin.notifications.discord.DiscordIncomingWebhook",
            '    payload: \'{"content": "{{ flow.id }} failed", "username": "kestra"}\'',
            {"content": "nightly failed", "username": "kestra"},
        ),
        (
            "io.kestra.plugin.notifications.google.GoogleChatIncomingWebhook",
            '    payload: \'{"text": "{{ flow.id }} failed"}\'',
            {"text": "nightly failed"},
        ),
    ],
)
def test_webhook_in_errors_posts_the_message(
    home: Path, tmp_path: Path, kind: str, body: str, expected: dict[str, str] | None
) -> None:
    """A failed flow's errors branch posts the rendered JSON; the webhook URL is masked."""
    with http_receiver() as server:
        proc, execution = run_json(
            home, tmp_path, FAILING.format(type=kind, url=server.url, body=body)
        )
        assert proc.returncode == 1  # the flow failed; errors never rescue it
        assert state_of(execution, "alert") == "SUCCESS"
        (sent,) = server.received
    assert sent.method == "POST" and sent.path == "/hooks/T0K3N-abc"
    assert sent.headers["Content-Type"] == "application/json"
    posted = json.loads(sent.body)
    if expected is None:  # messageText: Slack mrkdwn, as Kestra converts it
        assert posted["text"].startswith("*nightly* failed: ")
    else:
        assert posted == expected
    assert "T0K3N-abc" not in logs(home, execution)


def test_refused_answer_and_bad_payload_are_clear(home: Path, tmp_path: Path) -> None:
    """A 403 from the service, and a Slack payload that is not JSON: each one reason, by task."""
    with http_receiver() as server:
        server.answers["/denied"] = Answer(status=403, body=b"invalid_token")
        proc, execution = run_json(
            home,
            tmp_path,
            f"""
            id: hooks
            namespace: tests.notify
            tasks:
              - id: parallel
                type: io.kestra.plugin.core.flow.Parallel
                onChildFailure: CONTINUE
                tasks:
                  - id: denied
                    type: io.kestra.plugin.notifications.teams.TeamsIncomingWebhook
                    url: "{server.url}/denied"
                    payload: '{{"text": "hi"}}'
                  - id: not_json
                    type: io.kestra.plugin.notifications.slack.SlackIncomingWebhook
                    url: "{server.url}/ok"
                    payload: "hello {{{{ flow.id }}}}"
            """,
        )
        assert [r.path for r in server.received] == ["/denied"]  # nothing sent when not JSON
    assert proc.returncode == 1
    denied = task_run(execution, "denied")["reason"]
    assert "task 'denied'" in denied
    assert "Microsoft Teams webhook answered 403: invalid_token" in denied
    assert "'payload' is not JSON" in task_run(execution, "not_json")["reason"]


def test_webhook_without_a_message_is_refused_at_validation(home: Path, tmp_path: Path) -> None:
    """No payload and no messageText: `executor validate` says which is needed, exit 2."""
    from tests.integration.helpers import cli, write_flow

    flow = write_flow(
        tmp_path,
        """
        id: nomsg
        namespace: tests.notify
        tasks:
          - id: hook
            type: io.kestra.plugin.notifications.discord.DiscordIncomingWebhook
            url: http://127.0.0.1:9/x
        """,
    )
    proc = cli(home, "validate", str(flow))
    assert proc.returncode == 2
    assert "give 'payload'" in proc.stderr and "task 'hook'" in proc.stderr
