"""History that stays fast: every list and search the UI and API serve, on a large history.

1. Grows a record store to ``--size`` executions (kept between runs: a bigger size adds to it),
   each as the recorder writes it: an execution row, 4 task runs with one attempt each, 20 log
   lines (one chunk of 5 per task run); 200 flows in 20 namespaces (10 with a child namespace),
   one execution every 30 s back in time, 90 % SUCCESS, 6 % FAILED, 3 % WARNING, 1 % KILLED.
   Rows go in by bulk inserts through the store's own connection (executemany in transactions
   of 10 000 executions; COPY on PostgreSQL).
2. Starts a real ``executor server`` on it and measures each request ``--repeat`` times after
   one warm-up: the Flows page, the Executions page, the executions search with each filter
   (namespace, state, flowId, namespace + flowId, q as text and as an id start, startDate,
   timeRange, filters that match nothing, a deep page), one execution, its logs; ``resolve_id``
   (what ``executor logs/show/kill/resume ID`` call) on the store; the server's RSS.
3. Prints p50 and p95 of each, and p95 against the 100 ms target.

Usage:
  python bench/bench_history.py [--size 20000] [--data DIR] [--database postgresql://...]
                                [--repeat 20]

``--data`` keeps the generated home (default: a temporary one, removed at the end); with
``--database`` the records go to that PostgreSQL database (``scripts/ensure-postgres.sh start``
gives one) and the home keeps the rest.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from executor.model.records import BASE62
from executor.store.db import Store
from executor.store.flows import list_flows, save_flow
from executor.store.records import dumps

TARGET_MS = 100.0
BATCH = 10_000
FLOWS = 200
TASKS = ("extract", "transform", "load", "notify")
LINES_PER_TASK = 5
STEP = timedelta(seconds=30)
STATES = ["SUCCESS"] * 90 + ["FAILED"] * 6 + ["WARNING"] * 3 + ["KILLED"]
FLOW_SOURCE = """\
id: {flow}
namespace: {namespace}
description: a flow of the history benchmark
tasks:
{tasks}
"""
TASK_SOURCE = """\
  - id: {task}
    type: io.kestra.plugin.core.log.Log
    message: "{task} of {{{{ flow.id }}}}"
"""


def flow_names() -> list[tuple[str, str]]:
    """200 flows: bench.team00..09 each with 10, and bench.team00.etl..09.etl each with 10."""
    names = []
    for number in range(FLOWS):
        team = f"bench.team{number % 10:02d}"
        names.append((team + (".etl" if number % 20 >= 10 else ""), f"flow{number:03d}"))
    return names


# ----- growing the store


def _stamp(when: datetime) -> str:
    """``records.ts`` for a time already in UTC (the same text, without the conversion)."""
    return when.isoformat(timespec="microseconds")


def _history(start: str, state: str, end: str) -> str:
    return f'[["CREATED","{start}"],["RUNNING","{start}"],["{state}","{end}"]]'


def _rows(
    number: int, newest: datetime, flows: list[tuple[str, str]], rng: random.Random
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rows of execution ``number`` (0 is the newest), in the shapes the recorder writes
    (``records.execution_record`` and ``task_run_record``, ``log_chunks.INSERT_CHUNK``); the
    JSON is written as ``records.dumps`` writes it, by hand for speed."""
    namespace, flow = flows[number % len(flows)]
    execution_id = "".join(rng.choices(BASE62, k=22))
    state = rng.choice(STATES)
    start = newest - number * STEP
    start_text, end_text = _stamp(start), _stamp(start + timedelta(seconds=4 + number % 7))
    execution = (
        execution_id,
        namespace,
        flow,
        state,
        start_text,
        end_text,
        dumps({"day": start_text[:10]}),
        _history(start_text, state, end_text),
        "{}",
        dumps({"team": namespace.split(".")[1]}),
        "task load failed" if state == "FAILED" else None,
        4242,
        "1",
        "bench-host",
        '{"flowRevision":1}',
    )
    runs, attempts, chunks = [], [], []
    micros = int(start.timestamp() * 1_000_000)
    for position, task in enumerate(TASKS):
        run_id = "".join(rng.choices(BASE62, k=22))
        run_start = _stamp(start + timedelta(seconds=position))
        run_end = _stamp(start + timedelta(seconds=position + 1))
        run_state = state if position == len(TASKS) - 1 else "SUCCESS"
        run_history = _history(run_start, run_state, run_end)
        runs.append(
            (
                run_id,
                execution_id,
                position,
                task,
                "io.kestra.plugin.core.log.Log",
                None,
                run_state,
                run_start,
                run_end,
                1.0,
                run_history,
                f'{{"rows":{position * 10}}}',
                "[]",
                "{}",
                None,
                None,
                "[]",
                "{}",
            )
        )
        attempts.append((run_id, 1, run_state, run_start, run_end, 1.0, 0, 0, None, run_history))
        first = micros + position * 1_000_000
        stamps = [first + line * 1000 for line in range(LINES_PER_TASK)]
        messages = [f"{task} line {line} of {execution_id}" for line in range(LINES_PER_TASK)]
        chunks.append(
            (
                execution_id,
                task,
                run_id,
                1,
                "stdout",
                "INFO",
                LINES_PER_TASK,
                first,
                dumps(stamps),
                dumps(messages),
            )
        )
    return execution, runs, attempts, chunks


INSERTS = {
    "executions": (
        "id, namespace, flow_id, state, start_date, end_date, inputs, histories, images, labels,"
        " reason, pid, pid_start, host, extra"
    ),
    "task_runs": (
        "id, execution_id, position, task_id, task_type, parent_id, state, start_date, end_date,"
        " duration, histories, outputs, metrics, output_files, image_id, reason, stderr_tail,"
        " extra"
    ),
    "attempts": (
        "task_run_id, number, state, start_date, end_date, duration, exit_code, oom_killed,"
        " reason, histories"
    ),
    "log_chunks": (
        "execution_id, task_id, task_run_id, attempt, stream, level, lines, first_ts_us, ts_us,"
        " messages"
    ),
}


def _write(store: Store, tables: dict[str, list[tuple[Any, ...]]]) -> None:
    with store.transaction() as conn:
        if conn.sqlite:
            for table, columns in INSERTS.items():
                marks = ", ".join("?" * len(columns.split(",")))
                conn.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tables[table])
            return
        raw = conn.sa.connection.driver_connection  # type: ignore[attr-defined]
        with raw.cursor() as cursor:
            for table, columns in INSERTS.items():
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in tables[table]:
                        copy.write_row(row)


def grow(store: Store, size: int) -> float:
    """Add executions until the store holds ``size``; the seconds it took."""
    flows = flow_names()
    for namespace, flow in flows:
        if not any(f.id == flow for f in list_flows(store, namespace)):
            tasks = "".join(TASK_SOURCE.format(task=t) for t in TASKS)
            save_flow(
                store,
                namespace,
                flow,
                FLOW_SOURCE.format(flow=flow, namespace=namespace, tasks=tasks),
            )
    have = int(store.read("SELECT count(*) FROM executions")[0][0])
    if have >= size:
        return 0.0
    oldest = store.read("SELECT min(start_date) FROM executions")[0][0]
    newest = (
        datetime.fromisoformat(oldest) + (have - 1) * STEP
        if oldest
        else datetime.now(UTC).replace(microsecond=0)
    )
    rng = random.Random(have)
    t0 = time.perf_counter()
    for first in range(have, size, BATCH):
        tables: dict[str, list[tuple[Any, ...]]] = {table: [] for table in INSERTS}
        for number in range(first, min(first + BATCH, size)):
            execution, runs, attempts, chunks = _rows(number, newest, flows, rng)
            tables["executions"].append(execution)
            tables["task_runs"] += runs
            tables["attempts"] += attempts
            tables["log_chunks"] += chunks
        _write(store, tables)
        done = min(first + BATCH, size)
        if done % (BATCH * 10) == 0 or done == size:
            rate = (done - have) / (time.perf_counter() - t0)
            print(f"  {done:>9,} executions ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    if store.dialect.sqlite:
        store.read("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.perf_counter() - t0


def settle(store: Store) -> None:
    """What a store that has lived a while has: on PostgreSQL, what autovacuum does after a
    bulk load (the visibility map that index-only scans rely on, and statistics); SQLite's
    statistics are the server's job (it analyzes as it starts)."""
    if not store.dialect.sqlite:
        store.dialect.execute("VACUUM ANALYZE")


# ----- measuring


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(home: Path, database: str | None) -> Iterator[tuple[str, int, float]]:
    """A real ``executor server`` on the grown store: its URL, pid and start-up seconds."""
    port = free_port()
    env = {**os.environ, "EXECUTOR_HOME": str(home)}
    if database:
        env["EXECUTOR_DATABASE_URL"] = database
    log = (home / "server.log").open("ab")
    t0 = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "executor", "server", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=5) as client:
            for _ in range(1200):
                if process.poll() is not None:
                    raise SystemExit(f"the server ended (see {home / 'server.log'})")
                try:
                    if client.get("/api/v1/configs").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                raise SystemExit("the server did not answer within 120 s")
        yield url, process.pid, time.perf_counter() - t0
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(call: Callable[[], object], repeat: int) -> list[float]:
    call()  # warm
    found = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        found.append((time.perf_counter() - t0) * 1000)
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(url: str, store: Store, repeat: int) -> list[tuple[str, list[float], str]]:
    """(what, milliseconds of each request, what it answered)."""
    newest = store.read("SELECT id, start_date FROM executions ORDER BY start_date DESC LIMIT 1")
    one_id, newest_start = str(newest[0][0]), datetime.fromisoformat(newest[0][1])
    day_before = (newest_start - timedelta(days=1)).isoformat()
    results: list[tuple[str, list[float], str]] = []
    with httpx.Client(base_url=url, timeout=120) as client:

        def get(path: str, **params: Any) -> Callable[[], object]:
            def call() -> object:
                answer = client.get(path, params=params)
                answer.raise_for_status()
                return answer

            return call

        def described(path: str, params: dict[str, Any]) -> str:
            answer = client.get(path, params=params)
            answer.raise_for_status()
            if answer.headers.get("content-type", "").startswith("application/json"):
                body = answer.json()
                if isinstance(body, dict) and "total" in body:
                    return f"{len(body['results'])} of {body['total']}"
                if isinstance(body, list):
                    return f"{len(body)} items"
            return f"{len(answer.content) // 1024} KiB"

        search = "/api/v1/executions/search"
        cases: list[tuple[str, str, dict[str, Any]]] = [
            ("UI flows page (200 flows)", "/ui/flows", {}),
            ("UI executions page", "/ui/executions", {}),
            ("UI executions, namespace", "/ui/executions", {"namespace": "bench.team03"}),
            ("UI executions, state FAILED", "/ui/executions", {"state": "FAILED"}),
            ("API flows of a namespace", "/api/v1/flows/bench.team03", {}),
            ("search, no filter", search, {}),
            ("search, namespace (+children)", search, {"namespace": "bench.team03"}),
            ("search, namespace leaf", search, {"namespace": "bench.team03.etl"}),
            ("search, state FAILED", search, {"state": "FAILED"}),
            ("search, state KILLED", search, {"state": "KILLED"}),
            ("search, flowId", search, {"flowId": "flow007"}),
            (
                "search, namespace + flowId",
                search,
                {"namespace": "bench.team07", "flowId": "flow007"},
            ),
            ("search, namespace + state", search, {"namespace": "bench.team03", "state": "FAILED"}),
            ("search, q text (flow id part)", search, {"q": "flow01"}),
            ("search, q id start", search, {"q": one_id[:6]}),
            ("search, startDate (last day)", search, {"startDate": day_before}),
            ("search, timeRange PT1H", search, {"timeRange": "PT1H"}),
            ("search, page 40", search, {"page": 40, "size": 25}),
            ("search, no match: namespace", search, {"namespace": "nobody.here"}),
            ("search, no match: flowId", search, {"flowId": "no-such-flow"}),
            ("search, no match: q", search, {"q": "no-such-text"}),
            ("GET one execution", f"/api/v1/executions/{one_id}", {}),
            ("GET its logs", f"/api/v1/logs/{one_id}", {}),
        ]
        for name, path, params in cases:
            results.append((name, timed(get(path, **params), repeat), described(path, params)))
    prefixes = [one_id, one_id[:8]]

    def resolve() -> object:
        return store.resolve_id(prefixes[0])

    results.append(("resolve_id (CLI), full id", timed(resolve, repeat), "1"))
    prefixes.reverse()
    results.append(("resolve_id (CLI), 8 chars", timed(resolve, repeat), "1"))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=20_000, help="executions (default 20000)")
    parser.add_argument("--data", type=Path, help="keep the home here (and reuse it)")
    parser.add_argument("--database", help="postgresql://... (default: SQLite in the home)")
    parser.add_argument("--repeat", type=int, default=20, help="requests per measure")
    options = parser.parse_args()
    temporary = options.data is None
    home = Path(tempfile.mkdtemp(prefix="bench-history-")) if temporary else options.data
    home.mkdir(parents=True, exist_ok=True)
    where: Path | str = options.database or home / "executor.db"
    try:
        with Store(where) as store:
            print(f"growing {store.where} to {options.size:,} executions", file=sys.stderr)
            seconds = grow(store, options.size)
            settle(store)
        if seconds:
            print(f"grown in {seconds:.0f} s", file=sys.stderr)
        with server(home, options.database) as (url, pid, started), Store(where) as store:
            results = measure(url, store, options.repeat)
            rss = rss_mib(pid)
        kind = "PostgreSQL" if options.database else "SQLite"
        if not options.database:
            size_gib = sum(p.stat().st_size for p in home.glob("executor.db*")) / 2**30
            kind += f", {size_gib:.1f} GiB"
        print(f"\nhistory of {options.size:,} executions ({kind}); {options.repeat} requests each")
        print(f"server start-up {started:.1f} s, RSS {rss:.0f} MiB")
        print(f"{'request':<34} {'answer':>14} {'p50 ms':>8} {'p95 ms':>8} {'p95/100ms':>10}")
        worst = 0.0
        for name, times, answer in results:
            p95 = percentile(times, 0.95)
            worst = max(worst, p95)
            print(
                f"{name:<34} {answer:>14} {statistics.median(times):8.1f} {p95:8.1f}"
                f" {p95 / TARGET_MS:10.2f}"
            )
        print(f"worst p95 {worst:.1f} ms: {'within' if worst < TARGET_MS else 'OVER'} the target")
    finally:
        if temporary:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
