"""One request never stalls the others: a real server process with tight load limits.

Webhook bodies are refused before they are read, flows are parsed in killable processes,
logs are streamed, half-sent connections are closed, event streams are capped and end, and a
namespace write costs what it changes. No timings are asserted: each test shows the order of
events (a cheap answer while the heavy request is still running), what the server answered,
or what it left on disk, through bounded waits that fail saying what they saw.
"""

from __future__ import annotations

import io
import json
import os
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from executor.host import Owner
from executor.model import Execution, Level, LogBatch, State, now
from executor.store.db import Store
from executor.store.records import execution_record
from tests.integration.helpers import until
from tests.integration.server_helpers import LiveServer, sse_events

pytestmark = pytest.mark.integration

LIMITS = {
    "EXECUTOR_SERVER_FLOW_PARSE_SECONDS": "3",
    "EXECUTOR_SERVER_MAX_FLOW_DOCUMENTS": "5",
    "EXECUTOR_SERVER_MAX_WEBHOOK_BODY_BYTES": str(1024 * 1024),
    "EXECUTOR_SERVER_HEADER_TIMEOUT_SECONDS": "2",
    "EXECUTOR_SERVER_MAX_CONNECTIONS": "60",
    "EXECUTOR_SERVER_MAX_FOLLOWS": "3",
    "EXECUTOR_SERVER_MAX_ZIP_MEMBERS": "500",
}
HOOKED = """
id: hooked
namespace: tests.load
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: right-key
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.body }}"
"""
YAML = {"Content-Type": "application/x-yaml"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module, with small limits so each can be reached quickly."""
    with LiveServer(tmp_path_factory.mktemp("load-home"), env=LIMITS) as live:
        live.push(HOOKED)
        yield live


def _answer(sock: socket.socket, timeout: float = 30) -> bytes:
    """Everything the server sends on ``sock`` until it closes it (or ``timeout`` passes)."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return received


def _server_lines(server: LiveServer) -> int:
    return len(server.output().splitlines())


# ----- webhooks: the key before the body, the body bounded


def test_webhook_with_a_wrong_key_is_404_before_its_body_is_read(server: LiveServer) -> None:
    """A 60 MB body announced with a wrong key: 404 with only the first 64 KiB ever sent."""
    declared = 60 * 1024 * 1024  # under the body limit (64 MiB): only the key stops it
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /api/v1/executions/webhook/tests.load/hooked/wrong-key HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {declared}\r\n\r\n".encode()
            + b'{"a": "'
            + b"x" * 65536
        )
        answer = _answer(sock)  # the server answers, and closes: the rest is never wanted
    assert answer.startswith(b"HTTP/1.1 404"), f"no 404 while the body was unsent: {answer!r}"
    assert b"Webhook not found" in answer


def test_webhook_deep_json_is_422_and_logs_one_line_at_most(server: LiveServer) -> None:
    """200,000 nested arrays with the right key: a 422 naming the nesting, no log flood; a body
    over the webhook limit is a 413; a plain JSON body still starts the flow."""
    before = _server_lines(server)
    with server.client() as client:
        url = "/api/v1/executions/webhook/tests.load/hooked/right-key"
        deep = client.post(url, content=b"[" * 200_000 + b"]" * 200_000)
        big = client.post(url, content=b'"' + b"x" * (1024 * 1024 + 10) + b'"')
        fine = client.post(url, json={"a": [1, {"b": 2}]})
    assert deep.status_code == 422, deep.text
    assert "nested more than 100 levels" in deep.json()["message"]
    assert big.status_code == 413, big.text
    assert fine.status_code == 200, fine.text
    assert fine.json()["trigger"]["variables"]["body"] == {"a": [1, {"b": 2}]}
    assert _server_lines(server) - before <= 1, server.output()[-3000:]


# ----- flows: parsed beside the loop, bounded


def _cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and every process under it (the parse processes, with their ended
    children's), from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        times[int(entry.name)] = ticks / os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        total += times.get(current, 0.0)
        pending += [child for child, parent in parents.items() if parent == current]
    return total


def _many_values(flow_id: str, count: int) -> str:
    values = ",".join(["1"] * count)
    return (
        f"id: {flow_id}\nnamespace: tests.load\ntasks:\n  - id: a\n"
        f"    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
        f"variables:\n  many: [{values}]\n"
    )


def test_a_big_validate_does_not_stall_a_concurrent_get(server: LiveServer) -> None:
    """While the server burns CPU parsing three flows of 100,000 values each, a GET is
    answered; the parse is stopped at flowParseSeconds (422), and parsing works after it."""
    body = "\n---\n".join(_many_values(f"big{i}", 100_000) for i in range(3))
    events: list[str] = []
    heavy: dict[str, Any] = {}

    def validate() -> None:
        with server.client() as client:
            heavy["answer"] = client.post("/api/v1/flows/validate", content=body, headers=YAML)
        events.append("heavy answered")

    started = _cpu_seconds(server.proc.pid)
    worker = threading.Thread(target=validate)
    worker.start()
    try:
        until(  # the heavy body has arrived: something of the server is parsing it
            lambda: _cpu_seconds(server.proc.pid) - started > 0.3 or not worker.is_alive(),
            60,
            "the server to start parsing",
        )
        with server.client() as client:
            assert client.get("/api/v1/configs").status_code == 200
        events.append("get answered")
    finally:
        worker.join(120)
    assert events == ["get answered", "heavy answered"], events
    answer = heavy["answer"]
    assert answer.status_code == 422, answer.text[:300]
    assert "flowParseSeconds" in answer.json()["message"]
    with server.client() as client:
        small = client.post("/api/v1/flows/validate", content=_many_values("ok", 3), headers=YAML)
    assert small.status_code == 200 and small.json()[0]["constraints"] is None, small.text


def test_oversize_deep_and_too_many_flows_are_refused(server: LiveServer) -> None:
    """Six flows in one body (five allowed) and a flow over 1 MiB: 413; 150 levels: 422."""
    with server.client() as client:
        six = "\n---\n".join(_many_values(f"f{i}", 2) for i in range(6))
        too_many = client.post("/api/v1/flows/validate", content=six, headers=YAML)
        huge = client.post("/api/v1/flows", content="id: x\n# " + "y" * (1 << 20), headers=YAML)
        deep = "id: d\nnamespace: tests.load\nvariables:\n  v: " + "[" * 150 + "]" * 150 + "\n"
        too_deep = client.post("/api/v1/flows", content=deep, headers=YAML)
    assert too_many.status_code == 413, too_many.text
    assert "at most 5 (maxFlowDocuments)" in too_many.json()["message"]
    assert huge.status_code == 413, huge.text
    assert too_deep.status_code == 422, too_deep.text
    assert "nested more than 100 levels deep" in too_deep.json()["message"]


# ----- logs: streamed in bounded memory


def _recorded(server: LiveServer, state: State, lines: int) -> str:
    """An execution written straight into the server's store, with ``lines`` log lines."""
    execution = Execution("tests.load", "noisy")
    execution.state.to(State.RUNNING)
    if state.terminal:
        execution.state.to(state)
    with Store(server.home / "executor.db") as store:
        store.write([execution_record(execution, Owner.current())])
        for start in range(0, lines, 10_000):
            messages = [f"line {i} " + "x" * 60 for i in range(start, min(lines, start + 10_000))]
            batch = LogBatch(now(), execution.id, "t", "run", 1, "stdout", Level.INFO, messages)
            store.write([batch])
    return execution.id


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def test_logs_of_200k_lines_are_served_in_bounded_memory(server: LiveServer) -> None:
    """Kestra's JSON array of 200,000 lines; the server's peak RSS grows by far less than the
    whole list took before it was streamed (over 300 MiB for these lines)."""
    execution_id = _recorded(server, State.SUCCESS, 200_000)
    pid = server.proc.pid
    with server.client() as client:
        client.get(f"/api/v1/logs/{execution_id}?taskId=none")  # every code path warm
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak starts from here
        before = _peak_rss_mib(pid)
        with client.stream("GET", f"/api/v1/logs/{execution_id}") as answer:
            assert answer.status_code == 200
            body = b"".join(answer.iter_bytes())
    grown = _peak_rss_mib(pid) - before
    entries = json.loads(body)
    assert len(entries) == 200_000
    assert entries[0]["message"].startswith("line 0 ") and entries[0]["executionId"] == execution_id
    assert entries[-1]["message"].startswith("line 199999 ")
    assert grown < 60, f"the server's peak RSS grew by {grown:.0f} MiB serving the logs"


# ----- connections and event streams


def _half_sent(server: LiveServer, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(b"GET /api/v1/configs HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line
        sockets.append(sock)
    return sockets


def _closed_answers(sockets: list[socket.socket]) -> list[bytes]:
    """What each connection got before the server closed it (waits for each, bounded)."""
    answers = []
    for sock in sockets:
        answers.append(_answer(sock, timeout=30))
        sock.close()
    return answers


def test_half_sent_requests_are_closed_and_do_not_block_others(server: LiveServer) -> None:
    """40 connections that never finish their headers: a normal request is answered meanwhile,
    and each of them gets a 408 and is closed (headerTimeoutSeconds)."""
    stalled = _half_sent(server, 40)
    with server.client() as client:
        assert client.get("/api/v1/configs").status_code == 200
    answers = _closed_answers(stalled)
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), {a[:40] for a in answers}


def test_connections_past_the_cap_are_refused_at_once(server: LiveServer) -> None:
    """100 half-sent connections against a cap of 60: the ones past it get a 503 at once, the
    others a 408 when their time is up; then the server answers as usual."""
    answers = _closed_answers(_half_sent(server, 100))
    refused = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
    timed_out = [a for a in answers if a.startswith(b"HTTP/1.1 408")]
    assert len(refused) >= 40 and len(refused) + len(timed_out) == 100, {a[:40] for a in answers}
    with server.client() as client:
        assert client.get("/api/v1/configs").status_code == 200


def test_log_follow_of_an_ended_execution_ends(server: LiveServer) -> None:
    """The stored lines, then ``end``, then the stream closes by itself."""
    execution_id = _recorded(server, State.FAILED, 3)
    url = f"/api/v1/logs/{execution_id}/follow"
    with server.client() as client, client.stream("GET", url, timeout=20) as answer:
        lines = list(answer.iter_lines())
    events = sse_events(lines)
    assert [ident for ident, _ in events] == ["start", "progress", "progress", "progress", "end"]


def test_open_event_streams_are_capped(server: LiveServer) -> None:
    """Three follows of a running execution stay open; a fourth is a 503; once one closes, a
    new one is accepted."""
    execution_id = _recorded(server, State.RUNNING, 1)
    url = f"/api/v1/logs/{execution_id}/follow"
    with httpx.Client(base_url=server.url, timeout=20) as client:
        streams = [client.stream("GET", url) for _ in range(3)]
        opened = [stream.__enter__() for stream in streams]
        try:
            readers = [answer.iter_lines() for answer in opened]  # kept: dropped, it closes
            for answer, reader in zip(opened, readers, strict=True):
                assert answer.status_code == 200
                assert next(reader) == "id: start"  # the stream is open: its first event came
            refused = client.get(url)
            assert refused.status_code == 503, refused.text
            assert "maxFollows" in refused.json()["message"]
            streams.pop().__exit__(None, None, None)

            def another() -> bool:
                with client.stream("GET", url) as answer:
                    return answer.status_code == 200

            until(another, 30, "a follow accepted once one closed")
        finally:
            for stream in streams:
                stream.__exit__(None, None, None)


# ----- namespace files: zips bounded, writes cost what they change


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _upload(client: httpx.Client, namespace: str, path: str, name: str, data: bytes) -> Any:
    return client.post(
        f"/api/v1/namespaces/{namespace}/files",
        params={"path": path},
        files={"fileContent": (name, data)},
    )


def test_zip_entries_are_capped(server: LiveServer) -> None:
    """501 entries against a cap of 500: 422, nothing written."""
    with server.client() as client:
        many = _zip({f"f{i}.txt": b"." for i in range(501)})
        too_many = _upload(client, "tests.zips", "/many.zip", "many.zip", many)
        listed = client.get("/api/v1/namespaces/tests.zips/files/directory")
    assert too_many.status_code == 422, too_many.text
    assert "more than 500 entries" in too_many.json()["message"]
    assert listed.json() == []


def test_a_zip_with_x_and_x_slash_y_is_422(server: LiveServer) -> None:
    """``x`` and ``x/y`` in one zip: 422 naming both, nothing written, no traceback logged."""
    with server.client() as client:
        both = _zip({"x": b"1", "x/y": b"2"})
        clash = _upload(client, "tests.clash", "/clash.zip", "clash.zip", both)
        listed = client.get("/api/v1/namespaces/tests.clash/files/directory")
    assert clash.status_code == 422, clash.text
    assert "'x' and 'x/y'" in clash.json()["message"]
    assert listed.json() == []
    assert "Traceback" not in server.output()


def test_a_write_after_a_big_upload_links_only_what_it_changes(server: LiveServer) -> None:
    """After a 400-file zip, replacing one file leaves every other file's inode and link count
    as they were (the whole tree is not linked again), and the namespace reads right."""
    files = {f"dir{i % 10}/f{i}.txt": f"file {i}".encode() for i in range(400)}
    current = server.home / "namespaces" / "tests.big"
    with server.client() as client:
        assert _upload(client, "tests.big", "/all.zip", "all.zip", _zip(files)).status_code == 200
        before = {p: (p.stat().st_ino, p.stat().st_nlink) for p in current.rglob("*.txt")}
        changed = _upload(client, "tests.big", "/dir3/f3.txt", "f3.txt", b"new")
        assert changed.status_code == 200, changed.text
        added = _upload(client, "tests.big", "/extra.txt", "extra.txt", b"extra")
        assert added.status_code == 200, added.text
        read = client.get("/api/v1/namespaces/tests.big/files", params={"path": "/dir3/f3.txt"})
        kept = client.get("/api/v1/namespaces/tests.big/files", params={"path": "/dir4/f4.txt"})
    after = {p: (p.stat().st_ino, p.stat().st_nlink) for p in current.rglob("*.txt")}
    assert len(before) == 400 and len(after) == 401
    relinked = [str(p) for p, seen in before.items() if p.name != "f3.txt" and after.get(p) != seen]
    assert not relinked, f"{len(relinked)} unchanged files were linked again: {relinked[:3]}"
    assert read.content == b"new" and kept.content == b"file 4"
