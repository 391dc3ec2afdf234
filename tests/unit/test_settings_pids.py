"""The pids limit setting: a safe default, an override, a readable refusal."""

from __future__ import annotations

import pytest

from executor.errors import UsageError
from executor.settings import Settings


def test_every_container_gets_a_pids_limit_by_default() -> None:
    """Without EXECUTOR_PIDS_LIMIT a task container may hold 4096 processes."""
    assert Settings.from_env({"EXECUTOR_HOME": "/tmp/x"}).pids_limit == 4096


def test_the_pids_limit_comes_from_the_environment() -> None:
    """EXECUTOR_PIDS_LIMIT sets it; 0 leaves the engine's default."""
    assert (
        Settings.from_env({"EXECUTOR_HOME": "/tmp/x", "EXECUTOR_PIDS_LIMIT": "64"}).pids_limit == 64
    )
    assert (
        Settings.from_env({"EXECUTOR_HOME": "/tmp/x", "EXECUTOR_PIDS_LIMIT": "0"}).pids_limit == 0
    )


@pytest.mark.parametrize("text", ["x", "-3", "1.5"])
def test_a_bad_pids_limit_is_a_usage_error_naming_the_variable(text: str) -> None:
    """A value that is not a whole number >= 0 is refused, naming the variable and the value."""
    with pytest.raises(UsageError, match=f"EXECUTOR_PIDS_LIMIT={text!r}"):
        Settings.from_env({"EXECUTOR_HOME": "/tmp/x", "EXECUTOR_PIDS_LIMIT": text})
