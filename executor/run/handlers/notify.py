"""Chat incoming webhooks (Slack, Microsoft Teams, Discord, Google Chat): one POST from the host.

The payload is rendered twice, as Kestra does (a payload read from a variable may hold templates
itself); Slack's ``messageText`` becomes ``{"text": ...}`` unless it is JSON already. The webhook
URL is a credential: it is masked in every log line and reason.
"""

from __future__ import annotations

import json
from typing import Any

from executor.flow.tasks_http import HttpProxy
from executor.flow.tasks_notify import SLACK_WEBHOOK_TYPES, WebhookTask
from executor.model import Level, State
from executor.run.handlers.attempts import AttemptResult, Handler, with_attempts
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt, seconds
from executor.run.handlers.http import proxy_url
from executor.run.http import DEFAULT_CONNECT_TIMEOUT, HttpCall, send

WEBHOOK_READ_TIMEOUT = 10.0  # Kestra's RequestOptions.readTimeout default
WEBHOOK_MAX_ANSWER = 1024 * 1024


def webhook_payload(task: WebhookTask, job: HostJob) -> str:
    """The JSON text to post."""
    if task.payload is not None:
        rendered = job.render(task.payload)
        if isinstance(rendered, str):
            rendered = job.render(rendered)
        text = rendered if isinstance(rendered, str) else json.dumps(rendered)
        if task.type in SLACK_WEBHOOK_TYPES:
            try:
                return json.dumps(json.loads(text))
            except ValueError as exc:
                raise TaskInputError(f"'payload' is not JSON ({exc})") from None
        return text
    message = job.text(task.messageText)
    try:
        parsed = json.loads(message)
        if isinstance(parsed, dict):
            return json.dumps(parsed)
    except ValueError:
        pass
    return json.dumps({"text": _slack_markdown(message)})


def _slack_markdown(text: str) -> str:
    """Markdown's bold, italic and links in Slack's mrkdwn, as Kestra converts them."""
    import re

    text = re.sub(r"\*\*(.*?)\*\*", r"*\1*", text)
    text = re.sub(r"__(.*?)__", r"_\1_", text)
    return re.sub(r"\[(.*?)\]\((.*?)\)", r"<\2|\1>", text)


def _webhook(task: WebhookTask, job: HostJob) -> AttemptResult:
    url = job.text(task.url).strip()
    if not url:
        raise TaskInputError("'url' is empty")
    job.ctx.secrets.remember(url)  # a webhook URL is all it takes to post
    payload = webhook_payload(task, job)
    opts = task.options
    headers = {"Content-Type": "application/json"}
    if opts is not None and opts.headers:
        headers.update({str(k): job.text(v) for k, v in opts.headers.items()})
    charset = (job.text(opts.defaultCharset) if opts and opts.defaultCharset else "") or "UTF-8"
    call = HttpCall(
        method="POST",
        url=url,
        headers=headers,
        data=payload.encode(charset),
        connect_timeout=seconds(opts.connectTimeout if opts else None, DEFAULT_CONNECT_TIMEOUT),
        read_timeout=seconds(opts.readTimeout if opts else None, WEBHOOK_READ_TIMEOUT),
        deadline=job.deadline(),
        max_bytes=WEBHOOK_MAX_ANSWER,
        proxy=_proxy(opts.proxy if opts else None, job),
    )
    response = send(call)
    if response.code >= 300:
        answer = response.body[:300].decode("utf-8", errors="replace").strip()
        raise TaskInputError(
            f"the {task.service} webhook answered {response.code}"
            + (f": {answer}" if answer else "")
        )
    job.log(Level.INFO, f"{task.service} message sent ({response.code})")
    return AttemptResult(State.SUCCESS)


def _proxy(proxy: HttpProxy | None, job: HostJob) -> str | None:
    if proxy is None:
        return None
    return proxy_url(job, proxy.type, proxy.address, proxy.port, proxy.username, proxy.password)


webhook_attempt = host_attempt(_webhook)


HANDLES: dict[type[Any], Handler[Any]] = {
    WebhookTask: with_attempts(webhook_attempt),
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
