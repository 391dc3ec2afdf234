"""``docker.Run`` on the real engine (the local busybox image, and one built in the flow with an
ENTRYPOINT and a CMD), and ``fs.tcp.Send`` / ``fs.udp.Send`` against sockets on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.helpers import until
from tests.integration.host_flows import logs, run_json, state_of, task_run
from tests.integration.server_helpers import free_port
from tests.integration.test_registry import _api, _remove_local

pytestmark = pytest.mark.integration

DOCKER_RUN_FLOW = """
id: docker_run
namespace: tests.docker_run
tasks:
  - id: image
    type: io.kestra.plugin.docker.Build
    pull: false
    dockerfile: |
      FROM executor/busybox:latest
      ENTRYPOINT ["/bin/echo", "entry"]
      CMD ["default-cmd"]
    tags: ["REF"]
  - id: defaults
    type: io.kestra.plugin.docker.Run
    containerImage: "{{ outputs.image.imageId }}"
    pullPolicy: NEVER
  - id: args
    type: io.kestra.plugin.docker.Run
    containerImage: "{{ outputs.image.imageId }}"
    pullPolicy: NEVER
    commands: ["given to {{ flow.id }}"]
  - id: own_entry
    type: io.kestra.plugin.docker.Run
    containerImage: "{{ outputs.image.imageId }}"
    pullPolicy: NEVER
    entryPoint: [/bin/sh, -c]
    commands:
      - 'echo "$GREETING from $(cat in.txt)" > out.txt; echo "::{\\"outputs\\":{\\"words\\":3}}::"'
    env: {GREETING: hello}
    inputFiles: {in.txt: the input file}
    outputFiles: [out.txt]
    volumes: ["/etc:/host-etc"]
  - id: read_out
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(outputs.own_entry.outputFiles['out.txt']) | trim }}"
  - id: shared
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: write
        type: io.kestra.plugin.scripts.shell.Commands
        commands: [echo from-shell > shared.txt]
      - id: read
        type: io.kestra.plugin.docker.Run
        containerImage: busybox
        commands: [cat, shared.txt]
  - id: fails
    type: io.kestra.plugin.docker.Run
    containerImage: busybox
    allowFailure: true
    commands: [/bin/sh, -c, "echo bad >&2; exit 3"]
  - id: slow
    type: io.kestra.plugin.docker.Run
    containerImage: busybox
    allowFailure: true
    timeout: PT1S
    commands: [sleep, "60"]
"""


def test_docker_run_runs_the_images_command_on_the_workspace(
    home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """The image's ENTRYPOINT and CMD by default; commands replace the CMD, an entryPoint both;
    env, inputFiles, outputFiles and output lines as in Kestra; inside a WorkingDirectory it
    sees the files of the tasks before it; an exit code fails it, a timeout kills it."""
    ref = f"executor-test/run-{uuid.uuid4().hex[:8]}:1"
    try:
        proc, execution = run_json(home, tmp_path, DOCKER_RUN_FLOW.replace("REF", ref))
        shown = logs(home, execution)
        assert execution["state"]["current"] == "WARNING", (proc.stderr, shown)
        assert "entry default-cmd" in shown
        assert "entry given to docker_run" in shown
        own = task_run(execution, "own_entry")
        assert own["state"]["current"] == "SUCCESS"
        assert own["outputs"]["vars"] == {"words": 3}
        assert task_run(execution, "read_out")["outputs"]["value"] == "hello from the input file"
        assert "'volumes' are not mounted" in shown
        assert state_of(execution, "read") == "SUCCESS" and "from-shell" in shown
        fails = task_run(execution, "fails")  # allowFailure: the failed task ends WARNING
        assert fails["state"]["current"] == "WARNING"
        assert fails["attempts"][-1]["state"]["current"] == "FAILED"
        assert fails["attempts"][-1]["exitCode"] == 3 and "bad" in shown
        slow = task_run(execution, "slow")
        assert slow["attempts"][-1]["state"]["current"] == "FAILED"
        assert "timed out after PT1S" in slow["reason"], slow
    finally:
        _remove_local(_api(), ref)


def test_docker_run_refusals_are_one_line_before_anything_runs(home: Path, tmp_path: Path) -> None:
    from tests.integration.helpers import cli, write_flow

    flow = write_flow(
        tmp_path,
        """
        id: service
        namespace: tests.docker_run
        tasks:
          - id: serve
            type: io.kestra.plugin.docker.Run
            containerImage: busybox
            wait: false
        """,
    )
    proc = cli(home, "run", str(flow))
    assert proc.returncode == 2, proc.stderr
    assert "task 'serve'): wait: false leaves the container running" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (home / "executor.db").exists()


@dataclass
class Received:
    """What the test's servers got: one bytes value per TCP connection, per UDP datagram."""

    tcp: list[bytes] = field(default_factory=list)
    udp: list[bytes] = field(default_factory=list)


@pytest.fixture
def listeners() -> Iterator[tuple[int, int, Received]]:
    """A TCP and a UDP socket on 127.0.0.1 that record what they receive; closed after."""
    received = Received()
    tcp = socket.create_server(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    tcp.settimeout(0.5)
    udp.settimeout(0.5)
    stop = threading.Event()

    def serve_tcp() -> None:
        while not stop.is_set():
            try:
                conn, _ = tcp.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
                received.tcp.append(b"".join(chunks))

    def serve_udp() -> None:
        while not stop.is_set():
            try:
                data, _ = udp.recvfrom(65536)
            except TimeoutError:
                continue
            received.udp.append(data)

    threads = [threading.Thread(target=f, daemon=True) for f in (serve_tcp, serve_udp)]
    for thread in threads:
        thread.start()
    try:
        yield tcp.getsockname()[1], udp.getsockname()[1], received
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        tcp.close()
        udp.close()


def test_tcp_and_udp_send_deliver_the_payload(
    home: Path, tmp_path: Path, listeners: tuple[int, int, Received]
) -> None:
    """UTF-8 text (templated), BASE64 bytes over TCP, a UDP datagram in Latin-1; a closed port
    fails the task with the system's reason."""
    tcp_port, udp_port, received = listeners
    closed = free_port()
    flow = f"""
id: sockets
namespace: tests.sockets
inputs:
  - {{id: port, type: INT, defaults: {tcp_port}}}
tasks:
  - id: text
    type: io.kestra.plugin.fs.tcp.Send
    host: 127.0.0.1
    port: "{{{{ inputs.port }}}}"
    payload: "héllo from {{{{ flow.id }}}}"
  - id: binary
    type: io.kestra.plugin.fs.tcp.Send
    host: localhost
    port: {tcp_port}
    payload: AAEC/w==
    encoding: BASE64
  - id: datagram
    type: io.kestra.plugin.fs.udp.Send
    host: 127.0.0.1
    port: {udp_port}
    payload: "café"
    encoding: ISO-8859-1
  - id: nobody
    type: io.kestra.plugin.fs.tcp.Send
    host: 127.0.0.1
    port: {closed}
    payload: lost
    allowFailure: true
"""
    proc, execution = run_json(home, tmp_path, flow)
    assert execution["state"]["current"] == "WARNING", proc.stderr
    sent = "héllo from sockets".encode()
    assert task_run(execution, "text")["outputs"] == {
        "host": "127.0.0.1",
        "port": tcp_port,
        "sentBytes": len(sent),
    }
    assert task_run(execution, "binary")["outputs"]["sentBytes"] == 4
    assert task_run(execution, "datagram")["outputs"]["sentBytes"] == 4
    until(lambda: len(received.tcp) == 2 and received.udp, 10, lambda: received)
    assert sorted(received.tcp) == sorted([sent, b"\x00\x01\x02\xff"])
    assert received.udp == ["café".encode("latin-1")]
    nobody = task_run(execution, "nobody")
    assert nobody["attempts"][-1]["state"]["current"] == "FAILED"
    assert f"cannot send to 127.0.0.1:{closed}: Connection refused" in nobody["reason"]
