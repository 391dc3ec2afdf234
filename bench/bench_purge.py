"""A purge of old history while an execution keeps writing, on SQLite (or EXECUTOR_DATABASE_URL).

Grows a store to N ended executions (4 task runs and 20 log lines each, one stored file), then
purges a third of them (the oldest) in batches while a writer thread appends a log line every
5 ms to a running execution, as a live run does. Prints the purge's rate and the writer's
latencies during it: each batch is its own short transaction, so the writer never waits long.

Usage: python bench/bench_purge.py [N]   (default N=30000)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from executor.host import Owner
from executor.model import Execution, Level, LogLine, State, TaskRun
from executor.store.db import Store
from executor.store.files.artifacts import LocalArtifactStore
from executor.store.purge import ExecutionSelection, PurgeParts
from executor.store.records import Write, execution_record, task_run_record

NOW = datetime.now(UTC)


def ended(index: int, total: int) -> tuple[Execution, list[Write]]:
    """Execution ``index`` of ``total``: the first ended ``total`` hours ago, the last now."""
    start = NOW - timedelta(hours=total - index)
    e = Execution("bench.purge", f"flow{index % 50}")
    e.state.history = [(State.CREATED, start), (State.RUNNING, start)]
    for n in range(4):
        run = TaskRun(f"t{n}", "io.kestra.plugin.core.log.Log")
        run.state.history = [(State.CREATED, start), (State.SUCCESS, start)]
        run.state.current = State.SUCCESS
        e.task_runs.append(run)
    e.state.history.append((State.SUCCESS, start + timedelta(seconds=1)))
    e.state.current = State.SUCCESS
    writes: list[Write] = [execution_record(e, Owner(1, "0", "gone"))]
    writes += [task_run_record(e.id, n, run) for n, run in enumerate(e.task_runs)]
    writes += [
        LogLine(start, e.id, run.task_id, run.id, 1, "stdout", Level.INFO, f"line {k} of {n}")
        for n, run in enumerate(e.task_runs)
        for k in range(5)
    ]
    return e, writes


def main(total: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "executor.db"
        files = LocalArtifactStore(Path(tmp) / "artifacts")
        t0 = time.perf_counter()
        with Store(db) as store:
            batch: list[Write] = []
            for index in range(total):
                e, writes = ended(index, total)
                batch += writes
                prefix = files.prefix(e.namespace, e.flow_id, e.id, "t0", e.task_runs[0].id)
                files.write(prefix, "out.txt", [b"rows"])
                if len(batch) > 5000:
                    store.write(batch)
                    batch = []
            store.write(batch)
        print(f"grown to {total} executions in {time.perf_counter() - t0:.1f} s")

        live = Execution("bench.live", "writer")
        live.state.to(State.RUNNING)
        with Store(db) as store:
            store.write([execution_record(live, Owner.current())])
        latencies: list[float] = []
        stop = threading.Event()

        def writer() -> None:
            with Store(db) as store:
                while not stop.is_set():
                    line = LogLine(
                        datetime.now(UTC), live.id, None, None, None, "stdout", Level.INFO, "x"
                    )
                    began = time.perf_counter()
                    store.write([line])
                    latencies.append(time.perf_counter() - began)
                    time.sleep(0.005)

        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(0.5)
        before = len(latencies)
        cutoff = NOW - timedelta(hours=total * 2 // 3)
        t0 = time.perf_counter()
        with Store(db) as store:
            counts = store.purge_executions(ExecutionSelection(cutoff), PurgeParts(), files)
        took = time.perf_counter() - t0
        during = latencies[before:]
        stop.set()
        thread.join()
        print(
            f"purged {counts.executions} executions, {counts.logs} log lines, {counts.files}"
            f" files in {took:.1f} s ({counts.executions / took:.0f} executions/s)"
        )
        during.sort()
        print(
            f"writer during the purge: {len(during)} writes, median"
            f" {statistics.median(during) * 1000:.1f} ms, p99"
            f" {during[int(len(during) * 0.99)] * 1000:.1f} ms, max {during[-1] * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30_000)
