"""``docker.Run``, ``fs.tcp.Send`` and ``fs.udp.Send`` as flows: what validates, what is refused
(the runs themselves: tests/integration/test_docker_run_sockets.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.engine.api import ImageCommand
from executor.errors import FlowValidationError
from executor.flow.loader import load_flow_text
from executor.flow.tasks_docker import DockerRunTask
from executor.flow.tasks_sockets import TcpSendTask, UdpSendTask
from executor.run.handlers.docker_run import container_argv


def _flow(task: str) -> str:
    return "id: f\nnamespace: n\ntasks:\n  - id: t\n" + task


def _problems(task: str) -> str:
    with pytest.raises(FlowValidationError) as caught:
        load_flow_text(_flow(task), Path("f.yaml"))
    return str(caught.value)


def test_docker_run_takes_kestras_properties() -> None:
    loaded = load_flow_text(
        _flow(
            "    type: io.kestra.plugin.docker.Run\n"
            "    containerImage: busybox\n"
            "    commands: [/bin/sh, -c, 'echo hi > out.txt']\n"
            "    entryPoint: []\n"
            "    env: {A: '1'}\n"
            "    pullPolicy: NEVER\n"
            "    user: '1000'\n"
            "    volumes: ['/srv:/srv']\n"
            "    cpu: {cpus: 0.5}\n"
            "    memory: {memory: 64MB}\n"
            "    shmSize: 32MB\n"
            "    inputFiles: {in.txt: hello}\n"
            "    outputFiles: [out.txt]\n"
            "    credentials: {registry: r.example, username: u, password: p}\n"
            "    wait: true\n"
            "    portBindings: []\n"
        ),
        Path("f.yaml"),
    )
    task = loaded.flow.tasks[0]
    assert isinstance(task, DockerRunTask)
    assert task.image == "busybox"
    options = task.docker_options
    assert (options.pullPolicy, options.user, options.shmSize) == ("NEVER", "1000", "32MB")
    assert options.credentials is not None and options.credentials.registry == "r.example"


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ("    wait: false\n", "wait: false leaves the container running after the task"),
        ("    portBindings: ['8080:80']\n", "portBindings: a task's container publishes no port"),
        ("    beforeCommands: [ls]\n", "beforeCommands: not a property of docker.Run"),
        ("    interpreter: [/bin/bash, -c]\n", "interpreter: not a property of docker.Run"),
        ("    comands: [ls]\n", "unknown property 'comands'"),
    ],
)
def test_docker_run_refuses_what_it_cannot_do_by_name(props: str, message: str) -> None:
    text = "    type: io.kestra.plugin.docker.Run\n    containerImage: busybox\n" + props
    assert message in _problems(text)


def test_docker_run_needs_an_image() -> None:
    assert "missing required property 'containerImage'" in _problems(
        "    type: io.kestra.plugin.docker.Run\n    commands: [ls]\n"
    )


def test_the_argv_follows_dockers_rules() -> None:
    """An entrypoint given replaces the image's and drops its CMD; commands replace the CMD."""
    image = ImageCommand(entrypoint=("/entry.sh",), cmd=("serve", "--port", "80"))
    assert container_argv([], [], image) == ["/entry.sh", "serve", "--port", "80"]
    assert container_argv([], ["migrate"], image) == ["/entry.sh", "migrate"]
    assert container_argv(["/bin/sh", "-c"], ["echo hi"], image) == ["/bin/sh", "-c", "echo hi"]
    assert container_argv(["/bin/true"], [], image) == ["/bin/true"]
    assert container_argv([], [], ImageCommand((), ("/bin/sh",))) == ["/bin/sh"]
    assert container_argv([], [], ImageCommand((), ())) == []


def test_socket_sends_validate_with_kestras_properties() -> None:
    loaded = load_flow_text(
        "id: f\nnamespace: n\ntasks:\n"
        "  - id: tcp\n    type: io.kestra.plugin.fs.tcp.Send\n"
        "    host: 127.0.0.1\n    port: '{{ inputs.port }}'\n    payload: aGk=\n"
        "    encoding: BASE64\n    timeout: PT2S\n"
        "  - id: udp\n    type: io.kestra.plugin.fs.udp.Send\n"
        "    host: localhost\n    port: 9999\n    payload: hi\n    encoding: ISO-8859-1\n",
        Path("f.yaml"),
    )
    tcp, udp = loaded.flow.tasks
    assert isinstance(tcp, TcpSendTask) and isinstance(udp, UdpSendTask)
    assert "missing required property 'payload'" in _problems(
        "    type: io.kestra.plugin.fs.udp.Send\n    host: h\n    port: 1\n"
    )
    assert "unknown property 'timeoutMs'" in _problems(
        "    type: io.kestra.plugin.fs.udp.Send\n    host: h\n    port: 1\n    payload: x\n"
        "    timeoutMs: 10\n"
    )
