"""``fs.tcp.Send`` and ``fs.udp.Send`` on the host: encode, send, report what was sent.

Outputs are Kestra's: ``host``, ``port`` and ``sentBytes``. The TCP connection and write are
bounded by the socket timeout (the task's ``timeout``, else 10 seconds, or the first release's
``timeoutMs``); a refused or unreachable address fails the task with the reason the system gave.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import socket
from typing import Any

from executor.flow.tasks_sockets import SocketSend, TcpSendTask, UdpSendTask
from executor.model import Level, State
from executor.run.handlers.attempts import AttemptFn, AttemptResult, Handler, with_attempts
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt

DEFAULT_SOCKET_TIMEOUT = 10.0  # seconds, as Kestra's tcp.Send


def encode(payload: str, encoding: str, base64_allowed: bool) -> bytes:
    """The payload's bytes in ``encoding`` (a Java charset name; ``BASE64``: decoded bytes)."""
    if base64_allowed and encoding.upper() == "BASE64":
        try:
            return base64.b64decode(payload.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise TaskInputError("'payload' is not valid base64 (encoding: BASE64)") from None
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise TaskInputError(f"'encoding': unknown character set {encoding!r}") from None
    try:
        return payload.encode(encoding)
    except UnicodeEncodeError as exc:
        raise TaskInputError(f"'payload' cannot be written in {encoding}: {exc.reason}") from None


def _target(task: SocketSend, job: HostJob) -> tuple[str, int]:
    host = job.text(task.host).strip()
    if not host:
        raise TaskInputError("'host' is empty")
    port = job.integer(task.port, "port")
    if port is None or not 0 < port < 65536:
        raise TaskInputError(f"'port' must be between 1 and 65535, got {port}")
    return host, port


def _socket_timeout(task: TcpSendTask, job: HostJob) -> float:
    if task.timeoutMs is not None:
        chosen = task.timeoutMs / 1000
    else:
        deadline = job.deadline()
        chosen = DEFAULT_SOCKET_TIMEOUT if deadline is None else deadline - job.started
    return max(chosen, 0.001)


def _sent(host: str, port: int, count: int) -> AttemptResult:
    return AttemptResult(State.SUCCESS, outputs={"host": host, "port": port, "sentBytes": count})


def _tcp_send(task: TcpSendTask, job: HostJob) -> AttemptResult:
    host, port = _target(task, job)
    encoding = job.text(task.encoding).strip() or "UTF-8"
    data = encode(job.text(task.payload), encoding, base64_allowed=True)
    timeout = _socket_timeout(task, job)
    job.log(Level.INFO, f"connecting to {host}:{port} (encoding {encoding}, timeout {timeout:g}s)")
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(data)
    except OSError as exc:
        raise TaskInputError(f"cannot send to {host}:{port}: {_reason(exc)}") from None
    job.log(Level.INFO, f"sent {len(data)} bytes to {host}:{port}")
    return _sent(host, port, len(data))


def _udp_send(task: UdpSendTask, job: HostJob) -> AttemptResult:
    host, port = _target(task, job)
    encoding = job.text(task.encoding).strip() or "UTF-8"
    data = encode(job.text(task.payload), encoding, base64_allowed=False)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.sendto(data, address)
    except OSError as exc:
        raise TaskInputError(f"cannot send to {host}:{port}: {_reason(exc)}") from None
    job.log(Level.INFO, f"sent a UDP datagram of {len(data)} bytes to {host}:{port}")
    return _sent(host, port, len(data))


def _reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return exc.strerror or str(exc)


SOCKET_ATTEMPTS: dict[type[Any], AttemptFn[Any]] = {
    TcpSendTask: host_attempt(_tcp_send),
    UdpSendTask: host_attempt(_udp_send),
}


HANDLES: dict[type[Any], Handler[Any]] = {
    **{kind: with_attempts(attempt) for kind, attempt in SOCKET_ATTEMPTS.items()},
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
