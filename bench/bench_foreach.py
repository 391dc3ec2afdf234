"""ForEachItem end to end: N rows in batches of B, one child execution (a container) per batch.

Runs ``executor run parent.yaml --flows DIR --json`` as its own process, as a user would: the
parent writes N rows in a container, its ForEachItem starts N/B children, each counts its rows
in a container of its own and returns the count, and the merged outputs are checked. Prints the
wall time, the time per child and the peak RSS of the ``executor run`` process.

Usage: python bench/bench_foreach.py [ROWS] [BATCH]   (default 10000 rows, batches of 100;
image: executor/debian:bookworm, or $BENCH_IMAGE; children at once: the executor's default, or
$EXECUTOR_FOREACH_ITEM_CONCURRENCY)
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE = os.environ.get("BENCH_IMAGE", "executor/debian:bookworm")

CHILD = f"""
id: count_rows
namespace: bench.foreach
inputs:
  - id: batch
    type: FILE
tasks:
  - id: count
    type: io.kestra.plugin.scripts.shell.Commands
    containerImage: {IMAGE}
    inputFiles:
      batch.txt: "{{{{ inputs.batch }}}}"
    commands:
      - echo "::{{\\"outputs\\":{{\\"lines\\":$(wc -l < batch.txt)}}}}::"
outputs:
  - id: lines
    type: STRING
    value: "{{{{ outputs.count.vars.lines }}}}"
"""


def parent(rows: int, batch: int) -> str:
    return f"""
id: fan_out
namespace: bench.foreach
tasks:
  - id: make
    type: io.kestra.plugin.scripts.shell.Commands
    containerImage: {IMAGE}
    outputFiles: [rows.txt]
    commands:
      - seq 1 {rows} > rows.txt
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{{{ outputs.make.outputFiles['rows.txt'] }}}}"
    batch:
      rows: {batch}
    namespace: bench.foreach
    flowId: count_rows
    inputs:
      batch: "{{{{ taskrun.items }}}}"
"""


def _date(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def main() -> int:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    expected = -(-rows // batch)
    with tempfile.TemporaryDirectory(prefix="bench-foreach-") as tmp:
        flows, home = Path(tmp) / "flows", Path(tmp) / "home"
        flows.mkdir()
        home.mkdir()
        (flows / "count_rows.yaml").write_text(CHILD)
        (flows / "fan_out.yaml").write_text(parent(rows, batch))
        env = {**os.environ, "EXECUTOR_HOME": str(home), "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "executor", "run", str(flows / "fan_out.yaml")]
        t0 = time.perf_counter()
        done = subprocess.run(
            [*command, "--flows", str(flows), "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        wall = time.perf_counter() - t0
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            return 1
        execution = json.loads(done.stdout)
        runs = {r["taskId"]: r for r in execution["taskRunList"]}
        iterations = runs["each_items"]["outputs"]["iterations"]
        assert iterations.get("SUCCESS") == expected, iterations
        merged = runs["each_merge"]["outputs"]["subflowOutputs"]
        got = subprocess.run(
            [sys.executable, "-m", "executor", "storage", "get", merged],
            capture_output=True,
            env=env,
            check=True,
        )
        assert len(got.stdout.splitlines()) == expected
        each = runs["each"]["state"]["histories"]
        task_seconds = (_date(each[-1]["date"]) - _date(each[0]["date"])).total_seconds()
    print(f"ForEachItem: {rows} rows in batches of {batch} -> {expected} child executions")
    print(f"  end to end (executor run, process start to exit): {wall:.1f} s")
    print(f"  the ForEachItem task run (split, children, merge): {task_seconds:.1f} s")
    print(f"  per child: {wall / expected * 1000:.0f} ms (whole run / children)")
    print(f"  peak RSS of the executor run process: {peak_kib / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
