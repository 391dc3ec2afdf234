"""``io.kestra.plugin.fs.tcp.Send`` and ``fs.udp.Send``: a payload to a socket, from the host.

Like the HTTP tasks they run in the executor's own process (no container), so they reach what
the host reaches. Properties are Kestra's plugin-fs ones; ``timeout`` is both the task's and
the socket's (Kestra's ``Send`` redeclares it), 10 seconds for the socket when not given.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from executor.flow.base import TaskBase

TCP_SEND_TYPES = ("io.kestra.plugin.fs.tcp.Send",)
UDP_SEND_TYPES = ("io.kestra.plugin.fs.udp.Send",)
SOCKET_TYPES = TCP_SEND_TYPES + UDP_SEND_TYPES


class SocketSend(TaskBase):
    """What both Send tasks take: where to, what, in which character set."""

    host: str
    port: int | str  # a number, or a template rendered to one
    payload: str
    encoding: str = "UTF-8"


class TcpSendTask(SocketSend):
    """``fs.tcp.Send``: connect, write the payload's bytes, close; ``BASE64`` sends raw bytes."""

    type: Literal[TCP_SEND_TYPES]  # type: ignore[valid-type]
    timeoutMs: int | None = Field(default=None, ge=1)  # the plugin's first releases


class UdpSendTask(SocketSend):
    """``fs.udp.Send``: one datagram of the payload's bytes."""

    type: Literal[UDP_SEND_TYPES]  # type: ignore[valid-type]
