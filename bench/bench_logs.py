"""A very loud task: lines per second the executor records, against `docker exec … > file`.

One task prints N lines of about 100 bytes (default 1,000,000: about 100 MB).

(a) `docker exec CID sh -c CMD > file` in a long-lived container: the floor, nothing recorded
(b) `executor run --quiet`: every line parsed, masked and written to the SQLite store
(c) `executor run` with its plain console going to /dev/null (what a pipe or CI gets)
(d) `executor run` in a pseudo-terminal: the live view, its screen read and dropped

For (b), (c) and (d): lines per second over the task's own run time (RUNNING to its end, as
recorded), lines actually in the store (must be N), and the executor's peak RSS (its VmHWM;
must stay under 150 MB whatever N is). Prints the throughput ratios b/a, c/a and d/a.

Usage: python bench/bench_logs.py [N [ROUNDS]]   (image: executor/busybox:latest)
Each round measures the anchor (a) again; the ratios printed are the medians over the rounds.
BENCH_LOGS_ONLY=b runs only (a) and (b).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from executor.store.db import Store

IMAGE = os.environ.get("BENCH_IMAGE", "executor/busybox:latest")
LABEL = "io.executor.bench=true"
RSS_LIMIT_MB = 150.0


def command(n: int) -> str:
    """A shell command printing ``n`` numbered lines of 100 bytes each (newline included)."""
    filler = "x" * 91
    return f"awk 'BEGIN {{ for (i = 1; i <= {n}; i++) printf \"%07d {filler}\\n\", i }}'"


@dataclass
class Result:
    name: str
    lines: int
    seconds: float
    wall: float = 0.0
    rss_mb: float | None = None

    @property
    def rate(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0


def bench_docker_exec(n: int, out_dir: Path) -> Result:
    cid = subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--init",
            "--label",
            LABEL,
            IMAGE,
            "sh",
            "-c",
            "while :; do sleep 3600 & wait $!; done",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    try:
        target = out_dir / "exec.out"
        with target.open("wb") as fh:
            t0 = time.perf_counter()
            subprocess.run(["docker", "exec", cid, "sh", "-c", command(n)], stdout=fh, check=True)
            seconds = time.perf_counter() - t0
        with target.open("rb") as fh:
            lines = sum(1 for _ in fh)
        target.unlink()
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)
    return Result("a docker exec > file", lines, seconds, seconds)


def _loud_flow(n: int, home: Path) -> Path:
    flow = home.parent / f"loud-{home.name}.yaml"
    flow.write_text(
        "id: loud\nnamespace: bench\ntasks:\n  - id: shout\n"
        "    type: io.kestra.plugin.scripts.shell.Commands\n"
        f"    containerImage: {IMAGE}\n"
        "    commands:\n"
        f"      - {json.dumps(command(n))}\n"
    )
    return flow


def _recorded(home: Path, execution_id: str) -> tuple[int, float]:
    """Lines of the task in the store, and the task's recorded run time."""
    with Store(home / "executor.db") as store:
        lines = store._conn.execute(
            "SELECT coalesce(sum(lines), 0) FROM log_chunks WHERE execution_id = ?"
            " AND task_id = 'shout' AND stream = 'stdout'",
            (execution_id,),
        ).fetchone()[0]
        run = store.get_execution(execution_id).execution.task_runs[0]
    return int(lines), run.state.duration or 0.0


def bench_live(n: int, home: Path) -> Result:
    """(d) the live view: the run drawn in a pseudo-terminal whose output is read and dropped."""
    flow = _loud_flow(n, home)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "EXECUTOR_HOME": str(home), "TERM": "xterm-256color"}
    env.pop("CI", None)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "executor", "run", str(flow)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    peak = _PeakRss(proc.pid)
    peak.start()
    while True:
        try:
            if not os.read(master, 1 << 16):
                break
        except OSError:  # EIO once the child has closed the terminal
            break
    proc.wait()
    wall = time.perf_counter() - t0
    os.close(master)
    peak.join()
    with Store(home / "executor.db") as store:
        execution_id = store.list_executions(limit=1)[0].id
    lines, seconds = _recorded(home, execution_id)
    return Result("d executor, live view (pty)", lines, seconds, wall, peak.mb)


def bench_executor(n: int, home: Path, name: str, quiet: bool) -> Result:
    flow = _loud_flow(n, home)
    env = {**os.environ, "EXECUTOR_HOME": str(home)}
    env.pop("CI", None)
    argv = [sys.executable, "-m", "executor", "run", "--json", str(flow)]
    if quiet:
        argv.insert(4, "--quiet")
    with Path(os.devnull).open("w") as devnull:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=devnull, env=env)
        peak = _PeakRss(proc.pid)
        peak.start()
        out, _ = proc.communicate()
        wall = time.perf_counter() - t0
        peak.join()
    if proc.returncode != 0:
        raise SystemExit(f"{name}: executor exited {proc.returncode}")
    lines, seconds = _recorded(home, json.loads(out)["id"])
    return Result(name, lines, seconds, wall, peak.mb)


class _PeakRss(threading.Thread):
    """Polls the kernel's high-water mark of a process's resident memory (VmHWM) until it exits.

    Not wait4's ru_maxrss: that also counts the parent's memory the child had before exec.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.path = Path(f"/proc/{pid}/status")
        self.mb = 0.0

    def run(self) -> None:
        while True:
            try:
                status = self.path.read_text()
            except OSError:
                return
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self.mb = max(self.mb, int(line.split()[1]) / 1024)
            if "State:\tZ" in status:
                return
            time.sleep(0.05)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else int(os.environ.get("BENCH_REPEAT", 3))
    only = os.environ.get("BENCH_LOGS_ONLY", "bcd")  # which of b, c, d to run
    rounds: list[list[Result]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench_executor(1000, root / "warm", "warm-up", True)  # images, imports, store
        for i in range(repeat):  # the anchor measured again in each round: the machine is shared
            results = [bench_docker_exec(n, root)]
            if "b" in only:
                results.append(bench_executor(n, root / f"quiet{i}", "b executor --quiet", True))
            if "c" in only:
                results.append(bench_executor(n, root / f"plain{i}", "c executor, plain", False))
            if "d" in only:
                results.append(bench_live(n, root / f"live{i}"))
            rounds.append(results)
    print(f"one task printing {n:,} lines of 100 bytes ({n * 100 / 1e6:.0f} MB), image {IMAGE}")
    print(f"  {'':<30} {'lines':>10} {'task s':>8} {'wall s':>8} {'lines/s':>10} {'peak RSS':>9}")
    for i, results in enumerate(rounds):
        print(f" round {i + 1}")
        for r in results:
            rss = f"{r.rss_mb:.0f} MB" if r.rss_mb is not None else "-"
            print(
                f"  {r.name:<30} {r.lines:>10,} {r.seconds:>8.2f} {r.wall:>8.2f} "
                f"{r.rate:>10,.0f} {rss:>9}"
            )
    for k in range(1, len(rounds[0])):
        ratios = sorted(results[k].rate / results[0].rate for results in rounds)
        name = rounds[0][k].name
        print(
            f"ratio {name[:1]}/a (throughput, {name[2:]}): median {statistics.median(ratios):.3f}"
            f" of {', '.join(f'{r:.3f}' for r in ratios)}"
        )
    everything = [r for results in rounds for r in results]
    complete = all(r.lines == n for r in everything)
    ours = [r for r in everything if r.name[0] != "a"]
    flat = all(r.rss_mb is not None and r.rss_mb < RSS_LIMIT_MB for r in ours)
    print(
        f"every line recorded: {'yes' if complete else 'NO'};"
        f" peak RSS under {RSS_LIMIT_MB:.0f} MB: {'yes' if flat else 'NO'}"
    )
    if not (complete and flat):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
