"""DockerExec.kill: who runs the kill helper, and how its report becomes a KillResult."""

from __future__ import annotations

from typing import Any

from executor.engine.api import ExecRequest, KillResult
from executor.engine.docker.backend import DockerBackend
from executor.engine.docker.client import RetryPolicy


class KillAPI:
    """Answers kill helper execs with scripted (exit code, output) pairs, one per call."""

    def __init__(self, *answers: tuple[int, str]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[list[str], str]] = []
        self.codes: dict[str, int] = {}

    def exec_create(self, container: str, cmd: list[str], **kwargs: Any) -> dict[str, str]:
        if cmd[2] != "kill":
            return {"Id": "task"}
        self.calls.append((cmd, kwargs["user"]))
        return {"Id": f"helper{len(self.calls)}"}

    def exec_start(self, exec_id: str, **kwargs: Any) -> bytes:
        code, out = self.answers.pop(0)
        self.codes[exec_id] = code
        return out.encode()

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return {"Running": False, "ExitCode": self.codes[exec_id]}


class StubClient:
    def __init__(self, api: KillAPI) -> None:
        self.api = api


def kill(api: KillAPI, user: str | None, grace: float = 2.5) -> KillResult:
    engine = DockerBackend(StubClient(api), RetryPolicy(attempts=1, first_wait=0))
    return engine.exec("cid", ExecRequest(("true",), "tok", user=user)).kill(grace)


def test_a_clean_kill_runs_once_as_the_task_user() -> None:
    """The helper runs as the task's own user, with the grace rounded up to whole seconds."""
    api = KillAPI((0, ""))
    assert kill(api, "1000:1000") == KillResult()
    assert api.calls == [(["/bin/sh", "/.executor/wrapper.sh", "kill", "tok", "3"], "1000:1000")]


def test_the_container_default_user_is_the_task_user() -> None:
    """A task with no user set is killed as the container's default user, like it ran."""
    api = KillAPI((0, ""))
    assert kill(api, None).complete
    assert api.calls[0][1] == ""


def test_survivors_get_a_second_try_as_root_by_pid() -> None:
    """What the task's user could not kill is handed to root, which reports its own survivors."""
    api = KillAPI((1, "survivors: 12 40\n"), (1, "survivors: 40\n"))
    assert kill(api, "1000") == KillResult(survivors=(40,))
    assert [user for _, user in api.calls] == ["1000", "0"]
    assert api.calls[1][0][-3:] == ["0", "12", "40"]


def test_root_tasks_are_not_killed_twice() -> None:
    """A task already killed as root reports its survivors without a second helper."""
    api = KillAPI((1, "some noise\nsurvivors: 7\n"))
    assert kill(api, "0") == KillResult(survivors=(7,))
    assert len(api.calls) == 1


def test_a_failed_helper_is_an_error_not_success() -> None:
    """A helper that fails without a report (wrapper gone) cannot confirm the kill."""
    api = KillAPI((127, "/bin/sh: can't open '/.executor/wrapper.sh'\n"))
    result = kill(api, "0")
    assert not result.complete
    assert "exited 127" in (result.error or "") and "wrapper.sh" in (result.error or "")
