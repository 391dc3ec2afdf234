"""Per-task cost with a 1 GB workspace against an empty one, in one run.

Kestra's WorkingDirectory tars the workspace into and out of every child's container, so its
per-task cost grows with the workspace; ours must not. Two WorkingDirectories of N trivial
children (`true`) each: one whose first child writes a 1 GB file, one that stays empty.
Prints the per-task medians and their ratio (target: 1.0, within noise).
Usage: python bench/bench_workspace_size.py [N]   (default N=30)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from executor import app
from executor.model import State
from executor.settings import Settings

IMAGE = os.environ.get("BENCH_IMAGE", "executor/busybox:latest")
SH = "io.kestra.plugin.scripts.shell.Commands"


def per_task(home: Path, n: int, big: bool) -> list[float]:
    first = "dd if=/dev/zero of=big.bin bs=1M count=1024 2>/dev/null" if big else "true"
    children = f"      - {{id: fill, type: {SH}, containerImage: {IMAGE}, commands: ['{first}']}}\n"
    children += "".join(
        f"      - {{id: t{i}, type: {SH}, containerImage: {IMAGE}, commands: ['true']}}\n"
        for i in range(n)
    )
    flow = home / "bench.yaml"
    flow.write_text(
        "id: bench\nnamespace: bench\ntasks:\n  - id: wd\n"
        "    type: io.kestra.plugin.core.flow.WorkingDirectory\n    tasks:\n" + children
    )
    settings = Settings.from_env({**os.environ, "EXECUTOR_HOME": str(home)})
    execution = app.run_flow(settings, flow, {}, [])
    assert execution.state.current == State.SUCCESS, execution.state.current
    return [t.state.duration or 0.0 for t in execution.task_runs if t.task_id.startswith("t")]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        per_task(home, 3, False)  # warm-up
        empty = statistics.median(per_task(home, n, False)) * 1000
        full = statistics.median(per_task(home, n, True)) * 1000
    print(f"trivial task, N={n}, per-task medians: empty workspace {empty:.1f} ms,")
    print(f"  1 GB workspace {full:.1f} ms; ratio {full / empty:.2f} (target 1.0: nothing copied)")


if __name__ == "__main__":
    main()
