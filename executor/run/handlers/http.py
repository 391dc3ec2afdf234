"""``Request`` and ``Download``: HTTP from the host, with Kestra's outputs.

``Request`` gives ``code``, ``headers``, ``body`` (text) and ``uri``; ``Download`` streams the body
into the artifact store and gives ``uri`` (``kestra:///...``), ``code``, ``length``, ``headers``.
A status of 400 or more fails the task unless ``options.allowFailed``.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from executor.errors import ExecutorError
from executor.flow.tasks_http import DownloadTask, HttpTask, RequestTask
from executor.model import Level, State
from executor.run.handlers.attempts import AttemptResult, Handler, with_attempts
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt, seconds
from executor.run.http import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    HttpCall,
    HttpResponse,
    send,
)
from executor.store.files.artifacts import SCHEME

REQUEST_MAX_BYTES = 10 * 1024 * 1024  # Kestra's default limit of a Request's response
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def build_call(task: HttpTask, job: HostJob, max_bytes: int | None) -> HttpCall:
    """The :class:`HttpCall` a Request or Download makes, every property rendered."""
    opts = task.options
    url = job.text(task.uri).strip().replace(" ", "%20")
    method = job.text(task.method).strip().upper() or "GET"
    headers = {str(k): job.text(v) for k, v in (task.headers or {}).items()}
    content_type = job.text(task.contentType) if task.contentType else None
    charset = job.text(opts.defaultCharset) or "UTF-8"
    data: bytes | dict[str, str] | None = None
    files: dict[str, Any] | None = None
    if task.formData:
        form = job.render(task.formData)
        if content_type == "multipart/form-data":
            files = {str(k): _multipart(v, job) for k, v in form.items()}
        else:
            data = {str(k): _form_text(v) for k, v in form.items()}
    elif task.body is not None:
        body = job.render(task.body)
        text = body if isinstance(body, str) else json.dumps(body)
        try:
            data = text.encode(charset)
        except (LookupError, UnicodeEncodeError) as exc:
            raise TaskInputError(f"'body' cannot be encoded as {charset}: {exc}") from None
        if content_type and not _has(headers, "Content-Type"):
            headers["Content-Type"] = content_type
    elif content_type and not _has(headers, "Content-Type"):
        headers["Content-Type"] = content_type
    auth = _auth(task, job, headers)
    timeouts = opts.timeout
    connect = (timeouts.connectTimeout if timeouts else None) or opts.connectTimeout
    read = (
        (timeouts.readIdleTimeout if timeouts else None) or opts.readIdleTimeout or opts.readTimeout
    )
    ssl = opts.ssl or task.sslOptions
    insecure = ssl is not None and job.flag(
        ssl.insecureTrustAllCertificates, "ssl.insecureTrustAllCertificates"
    )
    return HttpCall(
        method=method,
        url=url,
        headers=headers,
        data=data,
        files=files,
        auth=auth,
        connect_timeout=seconds(connect, DEFAULT_CONNECT_TIMEOUT),
        read_timeout=seconds(read, DEFAULT_READ_TIMEOUT),
        deadline=job.deadline(),
        max_bytes=opts.maxContentLength if opts.maxContentLength is not None else max_bytes,
        follow_redirects=job.flag(opts.followRedirects, "options.followRedirects", True),
        verify=not insecure,
        proxy=_proxy(task, job),
    )


def _auth(task: HttpTask, job: HostJob, headers: dict[str, str]) -> tuple[str, str] | None:
    """Basic credentials, or a bearer header; the password or token is masked from now on."""
    auth = task.options.auth
    if auth is not None and auth.type == "BEARER":
        if not auth.token:
            raise TaskInputError("'options.auth' of type BEARER needs 'token'")
        token = job.text(auth.token)
        job.ctx.secrets.remember(token)
        headers["Authorization"] = f"Bearer {token}"
        return None
    user = auth.username if auth is not None else task.options.basicAuthUser
    password = auth.password if auth is not None else task.options.basicAuthPassword
    if user is None and password is None:
        return None
    pair = (job.text(user or ""), job.text(password or ""))
    if pair[1]:
        job.ctx.secrets.remember(pair[1])  # the user name is not a secret; the password is
    return pair


def _proxy(task: HttpTask, job: HostJob) -> str | None:
    opts, proxy = task.options, task.options.proxy
    return proxy_url(
        job,
        (proxy.type if proxy else None) or opts.proxyType or "DIRECT",
        (proxy.address if proxy else None) or opts.proxyAddress,
        (proxy.port if proxy else None) or opts.proxyPort,
        (proxy.username if proxy else None) or opts.proxyUsername,
        (proxy.password if proxy else None) or opts.proxyPassword,
    )


def proxy_url(
    job: HostJob,
    kind: str,
    address: str | None,
    port: int | str | None,
    user: str | None,
    password: str | None,
) -> str | None:
    """``http://[user:password@]address:port`` for an HTTP proxy, ``None`` for DIRECT."""
    if kind == "DIRECT":
        return None
    if kind != "HTTP":
        raise TaskInputError(f"a {kind} proxy is not supported; use an HTTP proxy")
    if not address or not port:
        raise TaskInputError("an HTTP proxy needs 'address' and 'port'")
    credentials = ""
    if user:
        rendered_user, rendered_password = job.text(user), job.text(password or "")
        if rendered_password:
            job.ctx.secrets.remember(rendered_password)
        credentials = f"{rendered_user}:{rendered_password}@"
    return f"http://{credentials}{job.text(address)}:{job.text(port)}"


def _allow_failed(task: HttpTask, job: HostJob) -> bool:
    if task.allowFailed is not None:
        return job.flag(task.allowFailed, "allowFailed")
    return job.flag(task.options.allowFailed, "options.allowFailed")


def _check_status(task: HttpTask, job: HostJob, call: HttpCall, response: HttpResponse) -> None:
    job.log(Level.INFO, f"{call.method} {call.url} -> {response.code} ({response.length} bytes)")
    if response.code >= 400 and not _allow_failed(task, job):
        raise TaskInputError(
            f"{call.method} {call.url} failed with response code {response.code}"
            + _excerpt(response.body)
        )


def _request(task: RequestTask, job: HostJob) -> AttemptResult:
    call = build_call(task, job, REQUEST_MAX_BYTES)
    response = send(call)
    _check_status(task, job, call, response)
    charset = job.text(task.options.defaultCharset) or "UTF-8"
    body = response.body.decode(charset, errors="replace") if response.body else None
    encrypt = job.flag(task.encryptBody, "encryptBody")
    if encrypt:
        job.log(Level.WARN, "encryptBody: no encryption is configured here; body kept as text")
    return AttemptResult(
        State.SUCCESS,
        outputs={"code": response.code, "headers": response.headers, "body": body, "uri": call.url},
    )


def _download(task: DownloadTask, job: HostJob) -> AttemptResult:
    call = build_call(task, job, None)
    # the body is staged on this host first: its name (Content-Disposition) and whether it
    # is kept at all (the status) are known only once it has arrived
    with tempfile.TemporaryFile(prefix="executor-download-") as staged:

        def sink(chunks: Iterator[bytes]) -> None:
            for chunk in chunks:
                staged.write(chunk)

        response = send(call, sink)
        _check_status(task, job, call, response)
        if response.length == 0:
            if job.flag(task.failOnEmptyResponse, "failOnEmptyResponse", True):
                if not _allow_failed(task, job):
                    raise TaskInputError(f"{call.url}: no response from server (empty body)")
            else:
                job.log(Level.WARN, f"file '{call.url}' is empty")
        name = _file_name(call.url, _first(response.headers, "Content-Disposition"))
        staged.seek(0)
        uri = job.artifacts().write(job.store_prefix(), name, staged)
    return AttemptResult(
        State.SUCCESS,
        outputs={
            "uri": uri,
            "code": response.code,
            "length": response.length,
            "headers": response.headers,
        },
    )


def _file_name(url: str, disposition: str | None) -> str:
    """A safe file name: the Content-Disposition's, else the URL's last segment."""
    name = None
    if disposition:
        for part in disposition.split(";"):
            part = part.strip()
            if part.lower().startswith("filename*="):
                name = unquote(part.split("''", 1)[-1].strip('"'))
                break
            if part.lower().startswith("filename="):
                name = part.split("=", 1)[1].strip().strip('"')
    if not name:
        name = unquote(PurePosixPath(urlsplit(url).path).name)
    name = _SAFE_NAME.sub("_", name.rsplit("/", 1)[-1]).strip("._")
    return name or "download"


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    for key, values in headers.items():
        if key.lower() == name.lower() and values:
            return values[0]
    return None


def _has(headers: dict[str, str], name: str) -> bool:
    return any(k.lower() == name.lower() for k in headers)


def _multipart(value: Any, job: HostJob) -> tuple[str | None, Any]:
    """A multipart part: a stored file (``kestra:///`` URI, or ``{name, content}``) or text."""
    if isinstance(value, dict) and {"name", "content"} <= value.keys():
        return str(value["name"]), _stored(str(value["content"]), job)
    if isinstance(value, str) and value.startswith(SCHEME + "/"):
        return PurePosixPath(value).name, _stored(value, job)
    return None, _form_text(value)


def _stored(uri: str, job: HostJob) -> bytes:
    try:
        with job.artifacts().open(uri) as fh:
            return fh.read()
    except ExecutorError as exc:
        raise TaskInputError(f"formData: {exc.message}") from None


def _form_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _excerpt(body: bytes) -> str:
    text = body[:300].decode("utf-8", errors="replace").strip()
    return f": {text}" if text else ""


request_attempt = host_attempt(_request)
download_attempt = host_attempt(_download)


HANDLES: dict[type[Any], Handler[Any]] = {
    RequestTask: with_attempts(request_attempt),
    DownloadTask: with_attempts(download_attempt),
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
