"""Benchmark: seeding and harvesting a workspace as tar streams, against `docker cp`.

1. Seeding: a namespace of N files (default 20,000 files, 200 MB) streamed into a workspace as
   one archive (what `namespaceFiles` does) vs `docker cp DIR container:/workspace/...`.
2. Harvesting: one big output file (default 1 GB) streamed into the artifact store (listing,
   host-side glob, one archive of the match) vs `docker cp container:FILE DEST`; the harvest runs
   in a subprocess that reports its peak RSS (VmHWM), which must stay under 150 MB.
3. Selective harvest: one small file out of the seeded workspace, vs streaming the whole
   workspace and filtering (the old way): the cost must follow what matches.

Sizes: --files, --seed-mb, --harvest-mb (or BENCH_FILES, BENCH_SEED_MB, BENCH_HARVEST_MB).
The harvest child reads the engine's archive stream (as with a remote engine) when BENCH_VOLUME
is empty, the volume's host directory when it names the volume; each round runs both.
Quick run: python bench/bench_workspace.py --files 500 --seed-mb 5 --harvest-mb 50
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from executor.engine import labels
from executor.engine.api import ContainerOptions, ContainerSpec, WorkdirSpec
from executor.engine.containers import ContainerWorkdir
from executor.engine.docker.backend import DockerBackend
from executor.settings import Settings
from executor.store.files.namespaces import LocalNamespaceStore
from executor.tar_writer import Entry, tar_stream
from executor.workspace.container import WorkspaceReader, cover
from executor.workspace.globs import GlobSet, glob_regex
from executor.workspace.tarstream import (
    ChunkReader,
    tar_members,
    write_members,
)

IMAGE = "executor/busybox:latest"
WS = "/workspace"
RSS_LIMIT_MB = 150


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_tree(root: Path, files: int, total_mb: float) -> None:
    """``files`` files of equal size adding up to ``total_mb``, 100 per directory."""
    size = max(1, int(total_mb * 1024 * 1024 / files))
    block = os.urandom(size)
    for i in range(files):
        d = root / f"d{i // 100:04d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:06d}.dat").write_bytes(block)


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def docker_cp(*args: str) -> None:
    subprocess.run(["docker", "cp", "-q", *args], check=True, capture_output=True)


def harvest_child(container: str, pattern: str, dest: str) -> None:
    """The executor's harvest of ``pattern``, as a separate process; prints JSON with its RSS."""
    engine = DockerBackend.from_settings(Settings.from_env())
    start = time.perf_counter()
    workdir = ContainerWorkdir(engine, WorkdirSpec({}, WS, lambda: ContainerOptions(IMAGE)))
    workdir.volume = os.environ.get("BENCH_VOLUME") or None  # None: the engine's archive stream
    reader = WorkspaceReader(workdir, container)
    listing = reader.listing()
    regex = glob_regex(pattern)
    matched = sorted(p for p in listing.files if regex.match(p))
    roots = cover(matched, listing.paths)
    done = write_members(reader.stream(roots), Path(dest), set(matched).__contains__)
    elapsed = time.perf_counter() - start
    size = sum(p.stat().st_size for p in done.written.values())
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "files": len(done.written),
                "bytes": size,
                "streams": len(roots),
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def full_stream_child(container: str, pattern: str, dest: str) -> None:
    """The old harvest: the whole workspace streamed out, filtered on the host."""
    engine = DockerBackend.from_settings(Settings.from_env())
    regex = glob_regex(pattern)
    start = time.perf_counter()
    stream = io.BufferedReader(ChunkReader(engine.get_archive(container, f"{WS}/.")))
    members = tar_members(stream, require_end=True)
    done = write_members(members, Path(dest), lambda p: bool(regex.match(p)))
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - start,
                "files": len(done.written),
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def overlay_seed(
    engine: DockerBackend, settings: Settings, store: LocalNamespaceStore, cp_seed: float
) -> None:
    """Seeding as an overlay's lower layer (engine on this host): what it adds to a start.

    A workspace's first container starts either way; the seed's cost is the overlay start
    minus the start of an empty workspace, each the median of a few alternated runs.
    """
    if not engine.capabilities.host_directory:
        print("  overlay seed: the engine is not on this host (or not root); skipped")
        return
    image = engine.image_id(IMAGE)
    assert image is not None
    options = ContainerOptions(image)
    owned = {"io.executor.bench": "true", labels.OWNER_PID: str(os.getpid())}
    lower = [store.version("bench.ns")]
    plain_runs: list[float] = []
    layered_runs: list[float] = []
    for _ in range(5):
        for runs, layered in ((plain_runs, False), (layered_runs, True)):
            workdir = ContainerWorkdir(engine, WorkdirSpec(owned, WS, lambda: options))
            start = time.perf_counter()
            try:
                workdir.open()
                if layered:
                    why = workdir.layer_over(lower, settings.overlays_dir)
                    assert why is None, why
                else:
                    workdir.container(options)
                runs.append(time.perf_counter() - start)
                if layered:
                    _, out = engine.run_root(
                        workdir.containers[0], ["sh", "-c", f"find {WS} -type f | wc -l"]
                    )
                    assert out.split() == [str(len(list(store.files("bench.ns"))))], out
            finally:
                workdir.close()
    plain, layered_s = statistics.median(plain_runs), statistics.median(layered_runs)
    extra = max(0.0, layered_s - plain)
    print(f"  empty workspace ready (volume + container start), median: {plain:.2f}s")
    print(f"  overlay workspace ready (same, namespace as lower layer), median: {layered_s:.2f}s")
    print(
        f"  overlay seed cost (difference): {extra:.3f}s (target < 0.1s); "
        f"ratio to docker cp {extra / cp_seed:.3f}",
        flush=True,
    )


def run_child(
    kind: str, container: str, pattern: str, dest: Path, volume: str = ""
) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, f"--{kind}", container, pattern, str(dest)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "BENCH_VOLUME": volume},
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=int(os.environ.get("BENCH_FILES", 20000)))
    parser.add_argument(
        "--seed-mb", type=float, default=float(os.environ.get("BENCH_SEED_MB", 200))
    )
    parser.add_argument(
        "--harvest-mb", type=int, default=int(os.environ.get("BENCH_HARVEST_MB", 1024))
    )
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 3)))
    parser.add_argument("--harvest-child", nargs=3, metavar=("CONTAINER", "GLOB", "DEST"))
    parser.add_argument("--full-stream-child", nargs=3, metavar=("CONTAINER", "GLOB", "DEST"))
    args = parser.parse_args()
    if args.harvest_child:
        harvest_child(*args.harvest_child)
        return 0
    if args.full_stream_child:
        full_stream_child(*args.full_stream_child)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="bench-ws-"))
    settings = Settings.from_env({**os.environ, "EXECUTOR_HOME": str(tmp / "home")})
    engine = DockerBackend.from_settings(settings)
    # Not labelled io.executor.managed: test sessions sweeping every managed resource of the
    # shared engine must not remove the bench's container mid-run; `finally` removes it.
    owned = {"io.executor.bench": "true", labels.OWNER_PID: str(os.getpid())}
    volume = engine.create_volume(owned)
    container = ""
    try:
        container = engine.start_container(ContainerSpec(IMAGE, volume, WS, owned))
        print(
            f"seeding: {args.files} files, {args.seed_mb:.0f} MB (making the tree...)", flush=True
        )
        tree = tmp / "tree"
        make_tree(tree, args.files, args.seed_mb)
        store = LocalNamespaceStore(settings.namespaces_dir)
        push_s = timed(lambda: store.push("bench.ns", tree))

        def seed() -> None:
            entries = [
                Entry.host_file(f"ours/{f.path}", f.host)
                for f in store.select("bench.ns", GlobSet.of([]))
            ]
            with io.BufferedReader(ChunkReader(tar_stream(entries)), 1024 * 1024) as body:
                engine.put_archive(container, WS, body)

        ours_seed = timed(seed)
        cp_seed = timed(lambda: docker_cp(str(tree), f"{container}:{WS}/cp"))
        _, out = engine.run_root(
            container, ["sh", "-c", f"find {WS}/ours -type f | wc -l; find {WS}/cp -type f | wc -l"]
        )
        assert out.split() == [str(args.files)] * 2, out
        print(f"  namespace push (host copy, not timed against docker): {push_s:.2f}s")
        print(f"  executor seed (one tar stream): {ours_seed:.2f}s")
        print(f"  docker cp DIR container:       {cp_seed:.2f}s")
        print(f"  seeding ratio executor/docker cp: {ours_seed / cp_seed:.2f}", flush=True)
        overlay_seed(engine, settings, store, cp_seed)

        print(f"harvest: one {args.harvest_mb} MB output file", flush=True)
        engine.run_root(
            container,
            ["dd", "if=/dev/urandom", f"of={WS}/big.bin", "bs=1048576", f"count={args.harvest_mb}"],
        )
        (tmp / "cp-out").mkdir()
        ratios: dict[str, list[float]] = {"host": [], "stream": []}
        peaks: dict[str, float] = {}
        # Rounds, each timing docker cp and both ways of ours back to back: the machine is
        # shared, so each ratio is taken within its round and the median is reported.
        # "host": the volume's directory read on this host (a local engine, the default there);
        # "stream": the engine's archive (a remote engine).
        for _ in range(args.rounds):
            cp_out = timed(lambda: docker_cp(f"{container}:{WS}/big.bin", str(tmp / "cp-out")))
            (tmp / "cp-out" / "big.bin").unlink()
            for via, vol in (("host", volume), ("stream", "")):
                dest = tmp / "artifacts"
                result = run_child("harvest-child", container, "big.bin", dest, vol)
                assert result["files"] == 1, result
                assert result["bytes"] == args.harvest_mb * 1024 * 1024, result
                shutil.rmtree(dest)
                ratios[via].append(result["seconds"] / cp_out)
                peaks[via] = max(peaks.get(via, 0.0), result["peak_rss_mb"])
                print(
                    f"  docker cp {cp_out:.2f}s, executor via {via:<6} {result['seconds']:.2f}s",
                    flush=True,
                )
        for via, values in ratios.items():
            print(
                f"  harvest via {via:<6} (list + glob) / docker cp: median "
                f"{statistics.median(values):.2f} of {', '.join(f'{r:.2f}' for r in values)}; "
                f"peak RSS {peaks[via]:.1f} MB (limit {RSS_LIMIT_MB} MB)",
                flush=True,
            )
        rss_ok = all(peak < RSS_LIMIT_MB for peak in peaks.values())
        engine.run_root(container, ["rm", "-f", f"{WS}/big.bin"])

        print("selective harvest: one small file out of the seeded workspace", flush=True)
        one = "ours/d0000/f000000.dat"
        selective = run_child("harvest-child", container, one, tmp / "sel")
        whole = run_child("full-stream-child", container, one, tmp / "whole")
        print(
            f"  executor (list + one file): {selective['seconds']:.2f}s; whole-workspace "
            f"stream + filter: {whole['seconds']:.2f}s; ratio "
            f"{selective['seconds'] / whole['seconds']:.3f}"
        )
        return 0 if rss_ok else 1
    finally:
        if container:
            engine.remove_container(container)
        engine.remove_volume(volume)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
