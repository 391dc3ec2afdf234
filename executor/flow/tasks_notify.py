"""Notifications people put in ``errors`` branches: chat incoming webhooks and MailSend.

Property names are those of Kestra's plugin-notifications, plugin-slack, plugin-zulip and
plugin-email.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from executor.flow.base import Model, TaskBase
from executor.flow.durations import Duration
from executor.flow.tasks_http import HttpProxy

SLACK_WEBHOOK_TYPES = (
    "io.kestra.plugin.slack.notifications.SlackIncomingWebhook",
    "io.kestra.plugin.notifications.slack.SlackIncomingWebhook",
    "io.kestra.plugin.slack.SlackIncomingWebhook",
)
TEAMS_WEBHOOK_TYPES = ("io.kestra.plugin.notifications.teams.TeamsIncomingWebhook",)
DISCORD_WEBHOOK_TYPES = (
    "io.kestra.plugin.discord.DiscordIncomingWebhook",
    "io.kestra.plugin.notifications.discord.DiscordIncomingWebhook",
)
GOOGLE_CHAT_WEBHOOK_TYPES = (
    "io.kestra.plugin.googleworkspace.chat.GoogleChatIncomingWebhook",
    "io.kestra.plugin.notifications.google.GoogleChatIncomingWebhook",
)
ZULIP_WEBHOOK_TYPES = (
    "io.kestra.plugin.zulip.ZulipIncomingWebhook",
    "io.kestra.plugin.notifications.zulip.ZulipIncomingWebhook",
)
MAIL_SEND_TYPES = (
    "io.kestra.plugin.email.MailSend",
    "io.kestra.plugin.notifications.mail.MailSend",
)
WEBHOOK_TYPES = (
    SLACK_WEBHOOK_TYPES
    + TEAMS_WEBHOOK_TYPES
    + DISCORD_WEBHOOK_TYPES
    + GOOGLE_CHAT_WEBHOOK_TYPES
    + ZULIP_WEBHOOK_TYPES
)


class WebhookOptions(Model):
    """``options`` of a webhook task (Kestra's ``RequestOptions``)."""

    connectTimeout: Duration | None = None
    readTimeout: Duration | None = None
    readIdleTimeout: Duration | None = None
    connectionPoolIdleTimeout: Duration | None = None
    maxContentLength: int | None = Field(default=None, ge=0)
    defaultCharset: str | None = None
    headers: dict[str, Any] | None = None
    proxy: HttpProxy | None = None


class WebhookTask(TaskBase):
    """A chat incoming webhook: POST ``payload`` (JSON) to ``url``."""

    type: Literal[WEBHOOK_TYPES]  # type: ignore[valid-type]
    url: str
    payload: Any = None
    messageText: str | None = None  # Slack's plugin only; refused on the others below
    options: WebhookOptions | None = None

    @model_validator(mode="after")
    def _message(self) -> WebhookTask:
        if self.messageText is not None and self.type not in SLACK_WEBHOOK_TYPES:
            raise ValueError("'messageText' is a Slack webhook property; give 'payload'")
        if self.payload is None and self.messageText is None:
            raise ValueError(
                "give 'payload' (the JSON message)"
                + (" or 'messageText'" if self.type in SLACK_WEBHOOK_TYPES else "")
            )
        return self

    @property
    def service(self) -> str:
        """The service's name, for messages."""
        if self.type in SLACK_WEBHOOK_TYPES:
            return "Slack"
        if self.type in TEAMS_WEBHOOK_TYPES:
            return "Microsoft Teams"
        if self.type in DISCORD_WEBHOOK_TYPES:
            return "Discord"
        if self.type in ZULIP_WEBHOOK_TYPES:
            return "Zulip"
        return "Google Chat"


class MailAttachment(Model):
    """One of ``attachments`` or ``embeddedImages``: a file of the artifact store."""

    uri: str
    name: str
    contentType: str = "application/octet-stream"


class MailSendTask(TaskBase):
    """``MailSend``: one email over SMTP (SMTPS, STARTTLS or plain)."""

    type: Literal[MAIL_SEND_TYPES]  # type: ignore[valid-type]
    host: str
    port: int | str | None = None
    username: str | None = None
    password: str | None = None
    transportStrategy: Literal["SMTP", "SMTPS", "SMTP_TLS", "SMTP_OAUTH2"] | str = "SMTPS"
    sessionTimeout: int | str = 10000
    verifyServerIdentity: bool | str = True
    trustedHosts: list[str] | None = None
    from_: str = Field(alias="from")
    to: str | list[str]
    cc: str | list[str] | None = None
    subject: str | None = None
    htmlTextContent: str | None = None
    plainTextContent: str | None = None
    attachments: list[MailAttachment] | str | None = None
    embeddedImages: list[MailAttachment] | str | None = None
