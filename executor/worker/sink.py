"""Where a worker's ``Recorder`` writes: the server, over HTTP, in batches and in order.

The recorder's one writer thread sends each batch before it takes the next, so lines of a task
arrive in the order they were written. The execution's final snapshot is held back until the
worker has uploaded the output files (:meth:`RemoteSink.close`), and so is a subflow's: a client
that sees SUCCESS can fetch them at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

from executor.errors import ServerError, StoreError
from executor.model import Level, LogLine
from executor.store.api import RecordSink
from executor.store.records import ExecutionRecord, Write
from executor.store.wire import encode
from executor.worker.client import Refused, WorkerClient

BATCH = 2000


class RemoteSink(RecordSink):
    """Sends batches of one execution's records to the server.

    Args:
        client: the server.
        execution_id: the execution this worker claimed.
        worker: this worker's name.
        attempt: the attempt it runs.
        on_refused: called once when the server says this worker no longer runs it.
        before_end: called with an execution's final snapshot before it goes (the upload of
            that execution's output files: this one's, or a subflow's).
        max_bytes: the server's body limit: a batch of records larger than it is split.
    """

    def __init__(
        self,
        client: WorkerClient,
        execution_id: str,
        worker: str,
        attempt: int,
        on_refused: Callable[[str], None],
        before_end: Callable[[ExecutionRecord], None],
        max_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.max_bytes = max_bytes
        self.client = client
        self.execution_id = execution_id
        self.params = {"worker": worker, "attempt": attempt}
        self.on_refused = on_refused
        self.before_end = before_end
        self.held: ExecutionRecord | None = None
        self.refused = False

    def write(self, writes: Sequence[Write]) -> None:
        """Send ``writes``, but keep the execution's final snapshot for :meth:`close`; a
        subflow's final snapshot goes once its files are uploaded."""
        batch: list[Write] = []
        for item in writes:
            if not isinstance(item, ExecutionRecord) or item.end_date is None:
                batch.append(item)
            elif item.id == self.execution_id:
                self.held = item
            else:  # a subflow's execution ended: its files first, then its end
                self._send(batch)
                batch = [*self._upload(item), item]
        self._send(batch)

    def close(self) -> None:
        """Upload the files, then send the held final snapshot."""
        if self.held is None or self.refused:
            return
        final = [*self._upload(self.held), self.held]
        self.held = None
        self._send(final)

    def _upload(self, ended: ExecutionRecord) -> list[Write]:
        """Upload the files of an ended execution; a log line saying why when they cannot be."""
        if self.refused:
            return []
        try:
            self.before_end(ended)
        except Exception as exc:  # the run ended: say why its files are missing, keep its state
            return [
                LogLine(
                    datetime.now(UTC),
                    ended.id,
                    None,
                    None,
                    None,
                    "executor",
                    Level.ERROR,
                    f"the output files could not be uploaded to the server: {exc}",
                )
            ]
        return []

    def _send(self, writes: Sequence[Write]) -> None:
        if self.refused:
            return
        for body in self._bodies(writes):
            try:
                self.client.post_records(self.execution_id, body, **self.params)
            except Refused as exc:
                self.refused = True
                self.on_refused(exc.message)
                return
            except ServerError as exc:
                raise StoreError(exc.message) from None

    def _bodies(self, writes: Sequence[Write]) -> Iterator[bytes]:
        """JSON arrays of at most ``BATCH`` records, each under the server's body limit."""
        items: list[bytes] = []
        size = 2
        for item in encode(writes):
            encoded = json.dumps(item).encode()
            if items and (len(items) >= BATCH or size + len(encoded) + 1 > self.max_bytes):
                yield b"[" + b",".join(items) + b"]"
                items, size = [], 2
            items.append(encoded)
            size += len(encoded) + 1
        if items:
            yield b"[" + b",".join(items) + b"]"
