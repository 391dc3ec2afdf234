"""Reading a container's archive (``GET /containers/{id}/archive``) off the engine's socket.

The request goes out as HTTP/1.0 on a connection of its own: the engine cannot frame an
HTTP/1.0 answer in chunks, so it sends the tar bytes as they are and closes the connection at
the end. A caller then reads the body in blocks as large as it likes, each one ``recv`` loop
into its own buffer, where over HTTP/1.1 every 32 KiB chunk went through ``http.client``'s
Python-level decoding (that alone kept a harvest slower than ``docker cp``).

A body without framing cannot tell a cut connection from the end: the tar reader does, by
insisting on the archive's end-of-archive block (see ``tar_members(require_end=True)``).
"""

from __future__ import annotations

import http.client
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests


class Body(Protocol):
    """A response body read into the caller's buffers; closing it ends the engine's copy."""

    def readinto(self, buffer: Any) -> int: ...

    def close(self) -> None: ...


def open_unframed(api: Any, container_id: str, path: str) -> Body | None:
    """The archive of ``path`` as an unframed HTTP/1.0 body, or ``None`` when not answered 200.

    ``api`` is the SDK's ``APIClient``: its adapter gives the connection (unix socket, TCP,
    TLS with the client's certificates or ssh, as configured), and its session the headers.
    On any other status nothing is kept; the caller asks again through the SDK, whose error
    (no such container, no such path...) is then the one reported.

    Raises:
        OSError, requests.RequestException, urllib3.exceptions.HTTPError: the transport's own.
    """
    url = api._url("/containers/{0}/archive", container_id)
    request = requests.Request("GET", url, params={"path": path})
    prepared = api.prepare_request(request)
    adapter = api.get_adapter(prepared.url)
    pool = adapter.get_connection_with_tls_context(prepared, verify=api.verify, cert=api.cert)
    conn = pool._new_conn()  # a connection of its own: it is closed at the end of the body
    conn._http_vsn, conn._http_vsn_str = 10, "HTTP/1.0"
    target = urlsplit(prepared.url)
    try:
        conn.putrequest("GET", f"{target.path}?{target.query}", True, True)
        conn.putheader("Host", target.netloc)
        # identity: asked for gzip, the engine compresses at some 25 MB/s
        conn.putheader("Accept-Encoding", "identity")
        conn.putheader("Connection", "close")
        for name, value in prepared.headers.items():
            if name.lower() not in ("host", "accept-encoding", "connection"):
                conn.putheader(name, value)
        conn.endheaders()
        # http.client's own response (urllib3's wrapper would copy every read into new bytes)
        response: http.client.HTTPResponse = http.client.HTTPConnection.getresponse(conn)
    except BaseException:
        conn.close()
        raise
    body = _Response(conn, response)
    if response.status != 200:
        body.close()
        return None
    return body


class _Response:
    """The response and its connection, closed together (the engine's copy ends with them)."""

    def __init__(self, conn: Any, response: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._response = response
        self.readinto = response.readinto  # no Python layer between a read and the socket

    def close(self) -> None:
        try:
            self._response.close()
        finally:
            self._conn.close()


def sdk_archive(api: Any, container_id: str, path: str) -> Body:
    """The archive through the SDK's own request; its errors are the ones reported."""
    url = api._url("/containers/{0}/archive", container_id)
    # identity: asked for gzip, the engine compresses at some 25 MB/s
    response = api._get(
        url, params={"path": path}, stream=True, headers={"Accept-Encoding": "identity"}
    )
    try:
        api._raise_for_status(response)
    except BaseException:
        response.close()
        raise
    return _SdkBody(response)


class _SdkBody:
    """A response of the SDK read like :class:`Body`."""

    def __init__(self, response: Any) -> None:
        self._response = response
        # http.client's response under urllib3's: it undoes the chunked encoding into our buffer
        self._raw = getattr(response.raw, "_fp", None) or response.raw

    def readinto(self, buffer: Any) -> int:
        return int(self._raw.readinto(buffer))

    def close(self) -> None:
        self._response.close()
