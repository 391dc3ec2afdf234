"""Per-task cost of a trivial child (`true`), five ways, in one run.

(a) the executor: N children of one WorkingDirectory, each one exec in one container, each
    child timed from RUNNING to SUCCESS as the runner records it
(e) the executor as a user pays it: whole `executor run` processes,
    (T(run of N+1 children) - T(run of 1 child)) / N, so what the run does around each exec
    (records, the console, templates) counts too; REPEAT rounds, each with a raw API exec
    measured in the same moment; e/d from the medians of T(1), T(N+1) and the raw exec (each
    round's own e/d is shown too: under load one round's two runs differ by seconds)
(b) one `docker run --rm` per task on a shared volume (what a container-per-task executor does)
(c) `docker exec` CLI per task in one long-lived container
(d) raw exec create/start/inspect through the engine API (the floor for (a) and (e))

Prints per-task medians, the ratios, and the load average before and after (the machine may be
shared: figures taken under load are no quiet-machine figures). Targets: a/d <= 1.15,
e/d <= 1.15, b/a >= 4.
Usage: python bench/bench_exec.py [N] [REPEAT]   (default N=30, REPEAT=5;
image: executor/busybox:latest, or BENCH_IMAGE)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from executor import app
from executor.model import State
from executor.settings import Settings
from executor.store.recorder import Recorder

IMAGE = os.environ.get("BENCH_IMAGE", "executor/busybox:latest")
LABEL = {"io.executor.bench": "true"}


def _flow_file(home: Path, n: int) -> Path:
    children = "\n".join(
        f"      - id: t{i}\n        type: io.kestra.plugin.scripts.shell.Commands\n"
        f'        containerImage: {IMAGE}\n        failFast: false\n        commands: ["true"]'
        for i in range(n)
    )
    flow = home / f"bench{n}.yaml"
    flow.write_text(
        f"id: bench{n}\nnamespace: bench\ntasks:\n  - id: wd\n"
        "    type: io.kestra.plugin.core.flow.WorkingDirectory\n    tasks:\n" + children + "\n"
    )
    return flow


def bench_executor(n: int, home: Path) -> list[float]:
    flow = _flow_file(home, n)
    settings = Settings.from_env({**os.environ, "EXECUTOR_HOME": str(home)})
    # recorded as `executor run` records it: every state change and log line into SQLite
    stores = app.services(settings)
    recorder = Recorder(stores.records)
    recorder.start()
    try:
        execution = app.run_flow(settings, flow, {}, [recorder], stores=stores)
    finally:
        recorder.finish()
    assert execution.state.current == State.SUCCESS, execution.state.current
    # each child's wall time as the runner saw it: state RUNNING -> SUCCESS
    return [t.state.duration or 0.0 for t in execution.task_runs if t.task_id != "wd"]


def _timed_run(flow: Path, home: Path) -> float:
    """Wall time of one `executor run FLOW` process, start to exit (as a user waits for it)."""
    env = {**os.environ, "EXECUTOR_HOME": str(home)}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "executor", "run", "-q", str(flow)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"executor run {flow} exited {done.returncode}: {done.stderr[-2000:]!r}")
    return elapsed


def bench_process(n: int, repeat: int, home: Path, client: docker.DockerClient) -> list[Round]:
    """Per-child cost of whole `executor run` processes, (T(n+1) - T(1)) / n, each round beside
    the raw API exec measured in the same moment (the load of a shared machine changes)."""
    one, many = _flow_file(home, 1), _flow_file(home, n + 1)
    _timed_run(one, home)  # warm-up: image lookups, the store's schema, the page cache
    rounds = []
    for _ in range(repeat):
        t_one = _timed_run(one, home)
        t_many = _timed_run(many, home)
        raw = statistics.median(bench_exec_api(n, client))
        rounds.append(Round(t_one, t_many, (t_many - t_one) / n, raw, os.getloadavg()[0]))
    return rounds


@dataclass(frozen=True)
class Round:
    """One round of the whole-process measure: the two runs, the per-child cost, the raw
    exec's median in the same moment, and the 1-minute load average after it."""

    t_one: float
    t_many: float
    per_child: float
    raw: float
    load: float

    @property
    def ratio(self) -> float:
        return self.per_child / self.raw


def bench_docker_run(n: int, client: docker.DockerClient) -> list[float]:
    vol = client.volumes.create(labels=LABEL)
    times = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            subprocess.run(
                [
                    "docker",
                    "run",
                    "--rm",
                    "-v",
                    f"{vol.name}:/workspace",
                    "-w",
                    "/workspace",
                    IMAGE,
                    "true",
                ],
                check=True,
            )
            times.append(time.perf_counter() - t0)
    finally:
        vol.remove(force=True)
    return times


def _keepalive(client: docker.DockerClient) -> docker.models.containers.Container:
    return client.containers.run(
        IMAGE,
        ["sh", "-c", "while :; do sleep 3600 & wait $!; done"],
        detach=True,
        init=True,
        labels=LABEL,
    )


def bench_exec_cli(n: int, client: docker.DockerClient) -> list[float]:
    c = _keepalive(client)
    times = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            subprocess.run(["docker", "exec", c.id, "true"], check=True)
            times.append(time.perf_counter() - t0)
    finally:
        c.remove(force=True)
    return times


def bench_exec_api(n: int, client: docker.DockerClient) -> list[float]:
    c = _keepalive(client)
    api = client.api
    times = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            ex = api.exec_create(c.id, ["true"], stdout=True, stderr=True)
            for _chunk in api.exec_start(ex["Id"], stream=True, demux=True):
                pass
            code = api.exec_inspect(ex["Id"])["ExitCode"]
            assert code == 0
            times.append(time.perf_counter() - t0)
    finally:
        c.remove(force=True)
    return times


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    client = docker.from_env()
    load_before = _load()
    with tempfile.TemporaryDirectory() as tmp:
        bench_executor(3, Path(tmp))  # warm-up: image lookups, imports
        results = {
            "a executor (exec per task)": bench_executor(n, Path(tmp)),
            "b docker run per task": bench_docker_run(n, client),
            "c docker exec CLI": bench_exec_cli(n, client),
            "d raw API exec": bench_exec_api(n, client),
        }
        rounds = bench_process(n, repeat, Path(tmp), client)
    med = {k: statistics.median(v) * 1000 for k, v in results.items()}
    print(f"trivial task (`true`), N={n}, image {IMAGE}; per-task medians:")
    for name, ms in med.items():
        print(f"  {name:<28} {ms:8.1f} ms")
    a, b, c, d = med.values()
    print(f"ratios: a/b = {a / b:.3f}   a/c = {a / c:.3f}   a/d = {a / d:.3f}   b/a = {b / a:.2f}")
    print(f"e `executor run` per child, (T({n + 1} children) - T(1)) / {n}, {repeat} rounds:")
    for r in rounds:
        print(
            f"  T(1) {r.t_one:5.2f} s  T({n + 1}) {r.t_many:5.2f} s  per child"
            f" {r.per_child * 1000:6.1f} ms  raw exec {r.raw * 1000:6.1f} ms  e/d {r.ratio:.3f}"
            f"  load {r.load:.2f}"
        )
    t_one = statistics.median(r.t_one for r in rounds)
    t_many = statistics.median(r.t_many for r in rounds)
    e = (t_many - t_one) / n
    raw = statistics.median(r.raw for r in rounds)
    e_d = e / raw
    print(
        f"  medians: T(1) {t_one:.2f} s, T({n + 1}) {t_many:.2f} s -> per child {e * 1000:.1f} ms;"
        f" raw exec {raw * 1000:.1f} ms; e/d {e_d:.3f}"
        f" (median of the rounds' own e/d: {statistics.median(r.ratio for r in rounds):.3f})"
    )
    print(
        f"targets: a/d <= 1.15 -> {'met' if a / d <= 1.15 else 'NOT met'};"
        f" e/d <= 1.15 -> {'met' if e_d <= 1.15 else 'NOT met'};"
        f" b/a >= 4 -> {'met' if b / a >= 4 else 'NOT met'}"
    )
    print(f"load average (1, 5, 15 min): before {load_before}, after {_load()}")


if __name__ == "__main__":
    main()
