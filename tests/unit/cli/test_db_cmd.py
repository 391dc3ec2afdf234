"""`executor db current|upgrade` on SQLite and PostgreSQL, and a store that cannot be reached."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from executor.store.migrations import HEAD


def _cli(home: Path, *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EXECUTOR_HOME": str(home)}
    env.pop("EXECUTOR_DATABASE_URL", None)
    if url is not None:
        env["EXECUTOR_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "executor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_current_then_upgrade_then_current(tmp_path: Path, store_at: Path | str) -> None:
    """A new store shows no revision, `upgrade` migrates it once, then it is up to date."""
    url = store_at if isinstance(store_at, str) else None
    home = store_at.parent if isinstance(store_at, Path) else tmp_path
    before = _cli(home, "db", "current", url=url)
    assert before.returncode == 0, before.stderr
    assert "revision none" in before.stdout and "will be migrated" in before.stdout
    upgraded = _cli(home, "db", "upgrade", url=url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"migrated from revision none to {HEAD}" in upgraded.stdout
    again = _cli(home, "db", "upgrade", url=url)
    assert f"already at revision {HEAD}" in again.stdout
    after = _cli(home, "db", "current", url=url)
    assert f"revision {HEAD}" in after.stdout and "up to date" in after.stdout
    if url is not None:
        assert url.split("@")[0].split(":")[-1] not in before.stdout + after.stdout  # password


def test_an_unreachable_database_is_one_line_and_exit_4(tmp_path: Path) -> None:
    """Nothing listens at the URL: one line naming host:port, exit 4, no traceback, no password."""
    done = _cli(tmp_path, "executions", url="postgresql://u:hidden-pw@127.0.0.1:9/records")
    assert done.returncode == 4
    assert "cannot reach PostgreSQL at 127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr and "hidden-pw" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
