"""``.part`` files of dead writers are swept; a live writer's never is."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from executor.host import Owner, process_status
from executor.store.files.artifacts import sweep_partial_files, write_file


def _name_of(pid: int, start: str) -> str:
    return f".report.csv.{pid}-{start}.part"


def test_dead_writers_part_is_removed_live_ones_kept(tmp_path: Path) -> None:
    """A .part whose pid+start is gone goes; ours and a running child's stay; others untouched."""
    root = tmp_path / "artifacts"
    deep = root / "ns" / "flow" / "executions" / "e1"
    deep.mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child_status = process_status(child.pid)
    assert child_status is not None
    child.wait()
    dead = deep / _name_of(child.pid, child_status[1])
    dead.write_bytes(b"x" * 1000)
    reused = deep / _name_of(Owner.current().pid, "1")  # our pid, another start: a reused pid
    reused.write_bytes(b"x")
    me = Owner.current()
    mine = deep / _name_of(me.pid, me.start)
    mine.write_bytes(b"x")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        sleeper_status = process_status(sleeper.pid)
        assert sleeper_status is not None
        live = deep / _name_of(sleeper.pid, sleeper_status[1])
        live.write_bytes(b"x")
        plain = deep / "report.part"  # a user's file that only looks similar
        plain.write_bytes(b"x")
        assert sorted(sweep_partial_files(root, dry_run=True)) == sorted([dead, reused])
        assert dead.exists()
        assert sorted(sweep_partial_files(root)) == sorted([dead, reused])
        assert not dead.exists() and not reused.exists()
        assert mine.exists() and live.exists() and plain.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_write_file_names_its_part_with_pid_and_start(tmp_path: Path) -> None:
    """While a file is written its temporary name carries this process's pid and start time."""
    seen: list[str] = []
    me = Owner.current()

    def chunks() -> Iterator[bytes]:
        seen.extend(p.name for p in tmp_path.iterdir())
        yield b"data"

    write_file(tmp_path, PurePosixPath("out.txt"), chunks())
    assert seen == [f".out.txt.{me.pid}-{me.start}.part"]
    assert (tmp_path / "out.txt").read_bytes() == b"data"
