"""A flow that calls itself through a template: the chain stops at the depth limit, FAILED with a
reason, whether its Subflow waits or not, under ``executor run`` and in a server; nothing is left
RUNNING, and a child a Subflow waits for is stopped with it (or killed on its own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from executor.settings import DEFAULT_MAX_SUBFLOW_DEPTH
from tests.integration.helpers import cli, until, write_flow
from tests.integration.server_helpers import LiveServer, wait_state

UNFINISHED = {"CREATED", "QUEUED", "RUNNING", "PAUSED", "RETRYING"}
LIMIT_REASON = f"past the limit of {DEFAULT_MAX_SUBFLOW_DEPTH} (EXECUTOR_MAX_SUBFLOW_DEPTH)"


def recursive(flow_id: str, wait: bool) -> str:
    """A flow whose Subflow task starts the flow itself again, unseen by the check before a run."""
    return f"""
id: {flow_id}
namespace: tests.depth
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "one level down"
  - id: again
    type: io.kestra.plugin.core.flow.Subflow
    namespace: tests.depth
    flowId: "{{{{ flow.id }}}}"
    wait: {str(wait).lower()}
"""


SLEEPER = """
id: sleeper
namespace: tests.depth
tasks:
  - id: hold
    type: io.kestra.plugin.core.flow.Pause
"""

CALLER = """
id: caller
namespace: tests.depth
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: tests.depth
    flowId: sleeper
"""

BOTH_WAYS = """
id: both_ways
namespace: tests.depth
tasks:
  - id: fire
    type: io.kestra.plugin.core.flow.Subflow
    namespace: tests.depth
    flowId: sleeper
    wait: false
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: tests.depth
    flowId: sleeper
"""

FAILING_SIBLING = """
id: sibling
namespace: tests.depth
tasks:
  - id: both
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: call
        type: io.kestra.plugin.core.flow.Subflow
        namespace: tests.depth
        flowId: sleeper
      - id: late_failure
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: pause
            type: io.kestra.plugin.core.flow.Pause
            pauseDuration: PT1S
          - id: boom
            type: io.kestra.plugin.core.execution.Fail
            errorMessage: the sibling fails
"""


def _summary(execution: dict[str, Any]) -> dict[str, Any]:
    """What the tests look at, from Kestra's execution shape (the CLI's and the API's)."""
    return {
        "id": execution["id"],
        "flowId": execution["flowId"],
        "state": execution["state"]["current"],
        "reason": execution.get("reason"),
        "histories": [h["state"] for h in execution["state"]["histories"]],
        "parentId": execution.get("parentId"),
    }


def _limit_reasons(executions: list[dict[str, Any]]) -> list[str]:
    return [e["reason"] for e in executions if e["reason"] and LIMIT_REASON in e["reason"]]


# ----- executor run


def _local_executions(home: Path) -> list[dict[str, Any]]:
    listed = cli(home, "executions", "--json")
    assert listed.returncode == 0, listed.stderr
    return [_summary(e) for e in json.loads(listed.stdout)]


@pytest.mark.parametrize("wait", [True, False], ids=["wait", "no-wait"])
def test_a_flow_calling_itself_stops_at_the_depth_limit_locally(
    home: Path, tmp_path: Path, wait: bool
) -> None:
    """`executor run`: the flow and its subflows are DEFAULT_MAX_SUBFLOW_DEPTH + 1 executions,
    all ended; the one past the limit is FAILED with the reason, and (when waited for) so is
    every caller up to the flow run. No RecursionError, no traceback."""
    flow = write_flow(tmp_path, recursive("selfcall", wait), "selfcall.yaml")
    result = cli(home, "run", str(flow), "--json", "-q", timeout=240)
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert result.returncode == (1 if wait else 0), result.stderr
    top = json.loads(result.stdout)
    executions = _local_executions(home)
    assert len(executions) == DEFAULT_MAX_SUBFLOW_DEPTH + 1, executions
    assert not [e for e in executions if e["state"] in UNFINISHED], executions
    reasons = _limit_reasons(executions)
    assert reasons, executions
    assert all("subflow tests.depth.selfcall not started" in r for r in reasons), reasons
    if wait:
        assert top["state"]["current"] == "FAILED"
        assert LIMIT_REASON in top["reason"]
        assert {e["state"] for e in executions} == {"FAILED"}
    else:  # callers did not wait: each ended as Kestra ends them, the last one FAILED
        assert top["state"]["current"] == "SUCCESS"
        assert sorted(e["state"] for e in executions).count("FAILED") == 1


def test_a_waited_child_stops_with_its_failing_sibling(home: Path, tmp_path: Path) -> None:
    """A Parallel whose other branch fails stops the subflow it waits for: the child ends
    instead of pausing for ever, and the run exits."""
    write_flow(tmp_path, SLEEPER, "sleeper.yaml")
    flow = write_flow(tmp_path, FAILING_SIBLING, "sibling.yaml")
    result = cli(home, "run", str(flow), "--json", "-q", timeout=120)
    assert result.returncode == 1, result.stderr
    executions = _local_executions(home)
    assert not [e for e in executions if e["state"] in UNFINISHED], executions
    child = next(e for e in executions if e["flowId"] == "sleeper")
    assert child["state"] in {"KILLED", "FAILED"}, child


def test_executor_kill_stops_every_child_waited_for_or_not(
    home: Path, tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """`executor kill` of a run whose two children pause (one waited for, one not): the run
    exits 130 at once, and the three executions end KILLED, none left PAUSED or RUNNING."""
    write_flow(tmp_path, SLEEPER, "sleeper.yaml")
    flow = write_flow(tmp_path, BOTH_WAYS, "both_ways.yaml")
    run = subprocess.Popen(
        [sys.executable, "-m", "executor", "run", str(flow), "-q"],
        env={**os.environ, "EXECUTOR_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started.append(run)
    found: list[dict[str, Any]] = []

    def children_paused() -> bool:
        nonlocal found
        found = _local_executions(home)
        return [e["state"] for e in found if e["flowId"] == "sleeper"] == ["PAUSED"] * 2

    until(children_paused, 90, lambda: f"both children PAUSED: {found}")
    top = next(e for e in found if e["flowId"] == "both_ways")
    killed = cli(home, "kill", top["id"], timeout=120)
    assert killed.returncode == 0, killed.stderr
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    executions = _local_executions(home)
    assert [e["state"] for e in executions] == ["KILLED"] * 3, executions


# ----- in a server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server (2 slots) for the module's tests, with their flows."""
    with LiveServer(tmp_path_factory.mktemp("depth") / "home") as live:
        for text in (recursive("waits", True), recursive("fires", False), SLEEPER, CALLER):
            live.push(text)
        yield live


def _server_executions(client: httpx.Client, flow_id: str) -> list[dict[str, Any]]:
    answer = client.get(
        "/api/v1/executions/search",
        params={"namespace": "tests.depth", "flowId": flow_id, "size": 500},
    )
    assert answer.status_code == 200, answer.text
    return [_summary(e) for e in answer.json()["results"]]


def _all_ended(client: httpx.Client, flow_id: str, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def ended() -> bool:
        nonlocal found
        found = _server_executions(client, flow_id)
        return len(found) >= count and not [e for e in found if e["state"] in UNFINISHED]

    until(ended, 120, lambda: f"{count} ended executions of {flow_id}: {found}")
    return found


def test_a_waiting_chain_ends_failed_at_the_depth_limit_in_a_server(server: LiveServer) -> None:
    """`wait: true` in a server: the chain runs in its first execution's slot and ends FAILED
    at the limit, every execution of it with the reason; no more executions, none unfinished."""
    with server.client() as client:
        eid = client.post("/api/v1/executions/tests.depth/waits").json()["id"]
        top = wait_state(client, eid, {"SUCCESS", "FAILED", "KILLED", "WARNING"})
        assert top["state"]["current"] == "FAILED", top
        assert LIMIT_REASON in top["reason"]
        chain = _all_ended(client, "waits", DEFAULT_MAX_SUBFLOW_DEPTH + 1)
        assert len(chain) == DEFAULT_MAX_SUBFLOW_DEPTH + 1, chain
        assert {e["state"] for e in chain} == {"FAILED"}
        assert all(LIMIT_REASON in (e["reason"] or "") for e in chain), chain
    assert "RecursionError" not in server.output()


def test_a_chain_not_waited_for_goes_through_the_queue_and_stops(server: LiveServer) -> None:
    """`wait: false` in a server: each child is queued (QUEUED first, like any submitted
    execution: it takes a slot), the chain stops at the limit with the reason, and nothing
    more is started afterwards."""
    with server.client() as client:
        eid = client.post("/api/v1/executions/tests.depth/fires").json()["id"]
        chain = _all_ended(client, "fires", DEFAULT_MAX_SUBFLOW_DEPTH + 1)
        assert len(chain) == DEFAULT_MAX_SUBFLOW_DEPTH + 1, chain
        children = [e for e in chain if e["id"] != eid]
        assert all(e["histories"][0] == "QUEUED" for e in children), children
        assert all(e["parentId"] for e in children), children
        assert [e["state"] for e in chain].count("FAILED") == 1, chain
        assert len(_limit_reasons(chain)) == 1, chain
        assert len(_server_executions(client, "fires")) == DEFAULT_MAX_SUBFLOW_DEPTH + 1


def test_kill_reaches_a_child_run_inside_its_parents_slot(server: LiveServer) -> None:
    """The child of a waiting Subflow runs in its parent's slot; the API kills it (202), and
    its parent, which passes failures on, ends KILLED too."""
    with server.client() as client:
        parent = client.post("/api/v1/executions/tests.depth/caller").json()["id"]
        found: list[dict[str, Any]] = []

        def child_paused() -> dict[str, Any] | None:
            nonlocal found
            found = [e for e in _server_executions(client, "sleeper") if e["parentId"] == parent]
            return found[0] if found and found[0]["state"] == "PAUSED" else None

        child = until(child_paused, 60, lambda: f"the child of {parent} PAUSED: {found}")
        killed = client.delete(f"/api/v1/executions/{child['id']}/kill")
        assert killed.status_code == 202, killed.text
        assert (
            wait_state(client, child["id"], {"KILLED", "FAILED", "SUCCESS"})["state"]["current"]
            == "KILLED"
        )
        assert (
            wait_state(client, parent, {"KILLED", "FAILED", "SUCCESS"})["state"]["current"]
            == "KILLED"
        )
