"""What the tasks that call a self-hosted service's JSON API share (GitLab, Jira, n8n).

One bounded call from the host (:mod:`executor.run.http`), an error answer turned into one line
with the service's own words (``GitLab answered 404 Not Found: 404 Project Not Found``), and the
JSON of the answer. Kestra's HTTP client options (``options``: timeouts, proxy, auth, TLS,
redirects, size cap) are read the way ``core.http.Request`` reads them.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any

from executor.flow.tasks_http import HttpOptions
from executor.run.handlers.host import HostJob, TaskInputError, seconds
from executor.run.handlers.http import proxy_url
from executor.run.http import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    HttpCall,
    HttpResponse,
    send,
)

SERVICE_MAX_ANSWER = 10 * 1024 * 1024  # Kestra's HTTP client's default maxContentLength
_WORDS = 300  # characters of the service's answer kept in a reason


def service_call(
    job: HostJob,
    method: str,
    url: str,
    headers: dict[str, str],
    data: bytes | None,
    options: HttpOptions | None = None,
) -> HttpCall:
    """The call, bounded by ``options`` (when given), the task's timeout and a size cap.

    ``options.auth`` adds an ``Authorization`` header unless ``headers`` has one already (a
    task's own credentials win); every password and token is masked from now on.
    """
    if options is None:
        options = HttpOptions()
    timeouts = options.timeout
    connect = (timeouts.connectTimeout if timeouts else None) or options.connectTimeout
    read = (
        (timeouts.readIdleTimeout if timeouts else None)
        or options.readIdleTimeout
        or options.readTimeout
    )
    insecure = options.ssl is not None and job.flag(
        options.ssl.insecureTrustAllCertificates, "options.ssl.insecureTrustAllCertificates"
    )
    auth = None if _has(headers, "Authorization") else _options_auth(job, options, headers)
    proxy = options.proxy
    return HttpCall(
        method=method,
        url=url,
        headers=headers,
        data=data,
        auth=auth,
        connect_timeout=seconds(connect, DEFAULT_CONNECT_TIMEOUT),
        read_timeout=seconds(read, DEFAULT_READ_TIMEOUT),
        deadline=job.deadline(),
        max_bytes=(
            options.maxContentLength if options.maxContentLength is not None else SERVICE_MAX_ANSWER
        ),
        follow_redirects=job.flag(options.followRedirects, "options.followRedirects", True),
        verify=not insecure,
        proxy=proxy_url(
            job,
            (proxy.type if proxy else None) or options.proxyType or "DIRECT",
            (proxy.address if proxy else None) or options.proxyAddress,
            (proxy.port if proxy else None) or options.proxyPort,
            (proxy.username if proxy else None) or options.proxyUsername,
            (proxy.password if proxy else None) or options.proxyPassword,
        ),
    )


def allow_failed(job: HostJob, options: HttpOptions | None) -> bool:
    return options is not None and job.flag(options.allowFailed, "options.allowFailed")


def checked(
    job: HostJob, call: HttpCall, service: str, allow: bool = False, ok: range = range(200, 400)
) -> HttpResponse:
    """Send ``call``; a status outside ``ok`` fails the task with the service's words."""
    response = send(call)
    if response.code not in ok and not allow:
        raise TaskInputError(f"{service} answered {status_line(response.code)}{words(response)}")
    return response


def status_line(code: int) -> str:
    """``404 Not Found``; the bare number for a code HTTP does not name."""
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def words(response: HttpResponse) -> str:
    """``: <what the service said>``, one line, from its JSON error shapes or its text."""
    text = response.body[: 64 * 1024].decode("utf-8", errors="replace").strip()
    if not text:
        return ""
    try:
        said = _said(json.loads(text))
    except ValueError:
        said = _page_title(text) if text.startswith("<") else text
    said = " ".join(said.split())
    if len(said) > _WORDS:
        said = said[:_WORDS] + "..."
    return f": {said}" if said else ""


def _page_title(html: str) -> str:
    """An HTML error page (a proxy's, a login page) as its title."""
    found = re.search(r"<title[^>]*>(.*?)</title>", html, re.I | re.S)
    return f"an HTML page: {found.group(1).strip()}" if found else "an HTML page"


def _said(value: Any) -> str:
    """The message in the error shapes of GitLab (``message``, ``error``), Jira
    (``errorMessages``, ``errors``), n8n and Zulip (``message``, ``msg``), else the JSON."""
    if isinstance(value, dict):
        parts: list[str] = []
        for key in ("message", "msg", "error", "error_description", "errorMessages", "hint"):
            if key in value and value[key] not in (None, "", [], {}):
                parts.append(_flat(value[key]))
        if isinstance(value.get("errors"), dict) and value["errors"]:
            parts.append(_flat(value["errors"]))
        if parts:
            return "; ".join(parts)
    return json.dumps(value, ensure_ascii=False)


def _flat(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(_flat(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flat(v)}" for k, v in value.items())
    return json.dumps(value)


def json_answer(response: HttpResponse, service: str) -> Any:
    """The answer's JSON; a body that is not JSON fails the task, naming the service."""
    text = response.body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        excerpt = " ".join(text[:_WORDS].split())
        raise TaskInputError(
            f"{service} answered {status_line(response.code)} with a body that is not JSON"
            + (f": {excerpt}" if excerpt else " (empty)")
        ) from None


def _options_auth(
    job: HostJob, options: HttpOptions, headers: dict[str, str]
) -> tuple[str, str] | None:
    auth = options.auth
    if auth is not None and auth.type == "BEARER":
        if not auth.token:
            raise TaskInputError("'options.auth' of type BEARER needs 'token'")
        token = job.text(auth.token)
        job.ctx.secrets.remember(token)
        headers["Authorization"] = f"Bearer {token}"
        return None
    user = auth.username if auth is not None else options.basicAuthUser
    password = auth.password if auth is not None else options.basicAuthPassword
    if user is None and password is None:
        return None
    pair = (job.text(user or ""), job.text(password or ""))
    if pair[1]:
        job.ctx.secrets.remember(pair[1])
    return pair


def _has(headers: dict[str, str], name: str) -> bool:
    return any(k.lower() == name.lower() for k in headers)


def optional_text(value: Any) -> str | None:
    """A field of a service's answer as text, ``None`` when it is absent."""
    return None if value is None else str(value)
