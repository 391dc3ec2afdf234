"""HTTP tasks run on the host: ``core.http.Request`` and ``core.http.Download``.

Properties are Kestra's (``AbstractHttp`` and ``HttpConfiguration``), deprecated ones included,
so a flow written for any Kestra 0.x/1.x validates; what is accepted and not acted on is listed
in the README's task table.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from executor.flow.base import Model, TaskBase
from executor.flow.durations import Duration

REQUEST_TYPES = ("io.kestra.plugin.core.http.Request", "io.kestra.plugin.fs.http.Request")
DOWNLOAD_TYPES = ("io.kestra.plugin.core.http.Download", "io.kestra.plugin.fs.http.Download")

# A value Kestra types as Property<Boolean>: a literal, or an expression rendered when it runs.
Flag = bool | str


class HttpTimeouts(Model):
    """``options.timeout``."""

    connectTimeout: Duration | None = None
    readIdleTimeout: Duration | None = None


class HttpProxy(Model):
    """``options.proxy``: an HTTP proxy (``DIRECT`` means none)."""

    type: Literal["DIRECT", "HTTP", "SOCKS"] = "DIRECT"
    address: str | None = None
    port: int | str | None = None
    username: str | None = None
    password: str | None = None


class HttpAuth(Model):
    """``options.auth``: ``BASIC`` (username, password) or ``BEARER`` (token)."""

    type: Literal["BASIC", "BEARER"]
    username: str | None = None
    password: str | None = None
    token: str | None = None


class HttpSsl(Model):
    """``options.ssl`` (and the deprecated ``sslOptions``)."""

    insecureTrustAllCertificates: Flag | None = None


class HttpOptions(Model):
    """Kestra's ``HttpConfiguration``: timeouts, proxy, auth, redirects, failed codes."""

    timeout: HttpTimeouts | None = None
    proxy: HttpProxy | None = None
    auth: HttpAuth | None = None
    ssl: HttpSsl | None = None
    followRedirects: Flag = True
    allowFailed: Flag = False
    defaultCharset: str = "UTF-8"
    logs: list[Literal["REQUEST_HEADERS", "REQUEST_BODY", "RESPONSE_HEADERS", "RESPONSE_BODY"]] = (
        Field(default_factory=list)
    )
    # Deprecated spellings, mapped onto the ones above.
    connectTimeout: Duration | None = None
    readTimeout: Duration | None = None
    readIdleTimeout: Duration | None = None
    connectionPoolIdleTimeout: Duration | None = None
    maxContentLength: int | None = Field(default=None, ge=0)
    proxyType: Literal["DIRECT", "HTTP", "SOCKS"] | None = None
    proxyAddress: str | None = None
    proxyPort: int | str | None = None
    proxyUsername: str | None = None
    proxyPassword: str | None = None
    basicAuthUser: str | None = None
    basicAuthPassword: str | None = None
    logLevel: str | None = None


class HttpTask(TaskBase):
    """What Request and Download share (Kestra's ``AbstractHttp``)."""

    uri: str
    method: str = "GET"
    body: Any = None
    formData: dict[str, Any] | None = None
    contentType: str | None = "application/json"
    headers: dict[str, Any] | None = None
    options: HttpOptions = Field(default_factory=HttpOptions)
    allowFailed: Flag | None = None  # deprecated: options.allowFailed
    sslOptions: HttpSsl | None = None  # deprecated: options.ssl


class RequestTask(HttpTask):
    """``Request``: the response as ``outputs.<id>.code``, ``headers``, ``body``, ``uri``."""

    type: Literal[REQUEST_TYPES]  # type: ignore[valid-type]
    encryptBody: Flag = False


class DownloadTask(HttpTask):
    """``Download``: the response body into the artifact store as ``outputs.<id>.uri``."""

    type: Literal[DOWNLOAD_TYPES]  # type: ignore[valid-type]
    failOnEmptyResponse: Flag = True
