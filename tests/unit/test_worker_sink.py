"""The worker's ``RemoteSink``, against a recording stand-in for the server (the real server and
worker are in tests/integration/test_worker_files.py): batches under the body limit, in order,
and each ended execution's files uploaded before its end is reported."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

from executor.host import Owner
from executor.model import Level, LogLine
from executor.store.records import ExecutionRecord, Write
from executor.worker.client import WorkerClient
from executor.worker.protocol import RecordsAnswer
from executor.worker.sink import RemoteSink


class Server:
    """What the sink sent, in order: record batches and uploads."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def post_records(self, execution_id: str, body: bytes, **params: Any) -> RecordsAnswer:
        self.events.append(("records", (len(body), json.loads(body))))
        return RecordsAnswer(written=0)


def line(execution_id: str, text: str) -> LogLine:
    when = datetime.now(UTC)
    return LogLine(when, execution_id, None, None, None, "stdout", Level.INFO, text)


def ended(execution_id: str) -> ExecutionRecord:
    return ExecutionRecord(
        execution_id, "ns", "flow", "SUCCESS", "t0", "t1", "{}", "[]", "[]", "{}", None,
        Owner(1, "", "h"),
    )  # fmt: skip


def sink_for(server: Server, max_bytes: int = 8 * 1024 * 1024) -> RemoteSink:
    def upload(record: ExecutionRecord) -> None:
        server.events.append(("upload", record.id))

    client = cast(WorkerClient, server)
    return RemoteSink(client, "parent", "w", 1, lambda _: None, upload, max_bytes=max_bytes)


def test_batches_stay_under_the_body_limit_and_keep_their_order() -> None:
    server = Server()
    sink = sink_for(server, max_bytes=4096)
    writes: list[Write] = [line("parent", f"{n:04d} " + "x" * 300) for n in range(60)]
    sink.write(writes)
    sizes = [size for kind, (size, _) in server.events if kind == "records"]
    assert len(sizes) > 1 and max(sizes) <= 4096
    sent = [item["message"][:4] for _, (_, batch) in server.events for item in batch]
    assert sent == [f"{n:04d}" for n in range(60)]


def test_a_subflows_end_goes_after_its_files_and_the_parents_end_waits_for_close() -> None:
    server = Server()
    sink = sink_for(server)
    sink.write([line("child", "a"), ended("child"), line("parent", "b"), ended("parent")])
    kinds = [(kind, detail if kind == "upload" else [i["id" if "id" in i else "message"]
             for i in detail[1]]) for kind, detail in server.events]  # fmt: skip
    assert kinds == [("records", ["a"]), ("upload", "child"), ("records", ["child", "b"])]
    sink.close()
    assert server.events[-2] == ("upload", "parent")
    assert [i["id"] for i in server.events[-1][1][1]] == ["parent"]
