"""Restart and replay against one real server process on the real engine: a run that failed on a
missing KV key is restarted once the key is set (the tasks that succeeded do not run again; the
WorkingDirectory that held the failure runs again whole), replayed from a middle task as a new
execution linked to the original, and the CLI restarts a local run the same way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from executor.engine import labels
from executor.store.db import Store
from tests.integration.browser import watched_page
from tests.integration.helpers import cli, our_resources, write_flow
from tests.integration.server_helpers import BUSYBOX, LiveServer, logs_of, wait_state
from tests.integration.workers_helpers import Cluster, start_redis

pytestmark = pytest.mark.integration

NEEDS_KEY = f"""
id: needs_key
namespace: tests.restart
tasks:
  - id: first
    type: io.kestra.plugin.scripts.shell.Commands
    containerImage: {BUSYBOX}
    commands:
      - echo "first ran"
      - echo '::{{"outputs":{{"n":41}}}}::'
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: prepare
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: {BUSYBOX}
        commands:
          - echo "prepare ran" && echo ready > ready.txt
      - id: use_key
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: {BUSYBOX}
        commands:
          - cat ready.txt && echo "key is {{{{ kv('needed') }}}}"
  - id: last
    type: io.kestra.plugin.core.log.Log
    message: "last saw n={{{{ outputs.first.vars.n }}}}"
"""

SUCCEEDS = """
id: succeeds
namespace: tests.restart
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hello
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module; afterwards no container or volume of its runs remains."""
    home = tmp_path_factory.mktemp("restart-server")
    with LiveServer(home) as live:
        for source in (NEEDS_KEY, SUCCEEDS):
            live.push(source)
        yield live
    with Store(home / "executor.db") as store:
        ids = [e.id for e in store.list_executions()]
    left = [r for eid in ids for r in our_resources(**{labels.EXECUTION: eid})]
    assert not left, f"resources left behind: {[(r.kind, r.name) for r in left]}"


def _run(client: httpx.Client, flow_id: str, wanted: set[str]) -> dict[str, Any]:
    created = client.post(f"/api/v1/executions/tests.restart/{flow_id}")
    assert created.status_code == 200, created.text
    return wait_state(client, created.json()["id"], wanted)


def _runs(execution: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for run in execution["taskRunList"] or []:
        found.setdefault(run["taskId"], []).append(run)
    return found


def _set_key(home: Path, value: str | None) -> None:
    """Set the key the flow needs (``None``: remove it, so that the flow fails)."""
    if value is None:
        done = cli(home, "kv", "rm", "tests.restart", "needed")
    else:
        done = cli(home, "kv", "set", "tests.restart", "needed", value)
    assert done.returncode == 0, done.stderr


def _states(execution: dict[str, Any]) -> list[str]:
    return [h["state"] for h in execution["state"]["histories"]]


def test_restart_after_fixing_the_cause_runs_only_what_failed(server: LiveServer) -> None:
    with server.client() as client:
        failed = _run(client, "needs_key", {"FAILED"})
        before = _runs(failed)
        assert before["use_key"][0]["state"]["current"] == "FAILED"
        assert "last" not in before

        _set_key(server.home, "open-sesame")
        answer = client.post(f"/api/v1/executions/{failed['id']}/restart")
        assert answer.status_code == 200, answer.text
        assert answer.json()["id"] == failed["id"]
        assert "RESTARTED" in _states(answer.json())

        done = wait_state(client, failed["id"], {"SUCCESS", "FAILED", "KILLED"})
        assert done["state"]["current"] == "SUCCESS", done
        after = _runs(done)
        # the task that succeeded is kept as it was: same task run, one attempt, not run again
        assert after["first"][0]["id"] == before["first"][0]["id"]
        assert len(after["first"][0]["attempts"]) == 1
        assert after["first"][0]["state"]["current"] == "SUCCESS"
        # the WorkingDirectory is the unit: it ran again (new attempt of its task run), and its
        # children as new task runs, the one that had succeeded too (its container was gone)
        assert after["wd"][0]["id"] == before["wd"][0]["id"]
        assert "RESTARTED" in [h["state"] for h in after["wd"][0]["state"]["histories"]]
        assert len(after["use_key"]) == 1 and after["use_key"][0]["state"]["current"] == "SUCCESS"
        assert after["use_key"][0]["id"] != before["use_key"][0]["id"]
        assert len(after["prepare"]) == 1
        assert _states(done)[-5:-1] == ["RESTARTED", "QUEUED", "CREATED", "RUNNING"]
        logs = logs_of(client, failed["id"])
        assert logs.count("first ran") == 1, logs  # the side effect happened once
        assert logs.count("prepare ran") == 2, logs
        assert "key is open-sesame" in logs
        assert "last saw n=41" in logs  # the kept task's outputs reach the tasks after it
        assert {"key": "system.restarted", "value": "true"} in done["labels"]

        # ended well: nothing to restart
        again = client.post(f"/api/v1/executions/{failed['id']}/restart")
        assert again.status_code == 409, again.text
        assert "SUCCESS" in again.text
        unknown = client.post("/api/v1/executions/nosuchexecution0000000/restart")
        assert unknown.status_code == 404, unknown.text
        _set_key(server.home, None)


def test_replay_from_a_middle_task_is_a_new_linked_execution(server: LiveServer) -> None:
    with server.client() as client:
        _set_key(server.home, "first-key")
        original = _run(client, "needs_key", {"SUCCESS", "FAILED"})
        assert original["state"]["current"] == "SUCCESS", original
        runs = _runs(original)
        _set_key(server.home, "second-key")
        answer = client.post(
            f"/api/v1/executions/{original['id']}/replay",
            params={"taskRunId": runs["wd"][0]["id"]},
        )
        assert answer.status_code == 200, answer.text
        replay = answer.json()
        assert replay["id"] != original["id"]
        assert replay["originalId"] == original["id"]
        assert {"key": "system.replay", "value": "true"} in replay["labels"]
        assert replay["flowRevision"] == original["flowRevision"]

        done = wait_state(client, replay["id"], {"SUCCESS", "FAILED", "KILLED"})
        assert done["state"]["current"] == "SUCCESS", done
        copied = _runs(done)
        # the task before the start is copied (new id, state and outputs as they were)
        assert copied["first"][0]["id"] != runs["first"][0]["id"]
        assert copied["first"][0]["state"]["current"] == "SUCCESS"
        assert copied["first"][0]["outputs"] == runs["first"][0]["outputs"]
        logs = logs_of(client, replay["id"])
        assert "first ran" not in logs, logs
        assert "key is second-key" in logs
        assert "last saw n=41" in logs
        # the original is untouched
        still = client.get(f"/api/v1/executions/{original['id']}").json()
        assert "key is first-key" in logs_of(client, original["id"])
        assert still["state"]["current"] == "SUCCESS"

        missing = client.post(
            f"/api/v1/executions/{original['id']}/replay", params={"taskRunId": "nope"}
        )
        assert missing.status_code == 404, missing.text
        _set_key(server.home, None)


def test_cli_restart_of_a_local_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    flow = write_flow(tmp_path, NEEDS_KEY)
    first = cli(home, "run", str(flow), "--json")
    assert first.returncode != 0, first.stdout
    listed = cli(home, "executions", "--json")
    assert listed.returncode == 0, listed.stderr
    execution_id = json.loads(listed.stdout)[0]["id"]
    refused = cli(home, "restart", execution_id[:8] + "x")
    assert refused.returncode != 0
    done = cli(home, "kv", "set", "tests.restart", "needed", "local")
    assert done.returncode == 0, done.stderr
    restarted = cli(home, "restart", execution_id, "--json")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    execution = json.loads(restarted.stdout)
    assert execution["id"] == execution_id
    runs = _runs(execution)
    assert len(runs["first"][0]["attempts"]) == 1
    logs = cli(home, "logs", execution_id)
    assert logs.stdout.count("first ran") == 1, logs.stdout
    assert "key is local" in logs.stdout
    again = cli(home, "restart", execution_id)
    assert again.returncode == 2, again.stderr
    assert "SUCCESS" in again.stderr
    replayed = cli(home, "replay", execution_id, "--from", "last", "--json")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    replay = json.loads(replayed.stdout)
    assert replay["id"] != execution_id and replay["originalId"] == execution_id
    assert [r["taskId"] for r in replay["taskRunList"]].count("first") == 1


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    with watched_page(browser, viewport={"width": 1400, "height": 1000}) as opened:
        yield opened


def test_restart_buttons_in_the_browser(server: LiveServer, page: Any) -> None:
    """Restart on the execution page; Restart selected on the list for several at once."""
    with server.client() as client:
        ids = [_run(client, "needs_key", {"FAILED"})["id"] for _ in range(3)]
        ok = _run(client, "succeeds", {"SUCCESS"})["id"]
        _set_key(server.home, "from-the-browser")

        page.goto(f"{server.url}/ui/executions/{ok}")
        expect(page.locator("#execution-state")).to_have_text("SUCCESS")
        expect(page.locator("#replay")).to_be_visible()
        expect(page.locator("#restart")).to_have_count(0)  # nothing failed: no Restart

        page.goto(f"{server.url}/ui/executions/{ids[0]}")
        expect(page.locator("#execution-state")).to_have_text("FAILED")
        page.locator("#restart").click()
        expect(page.locator("#execution-state")).to_have_text("SUCCESS")
        expect(page.locator("#restart")).to_have_count(0)
        assert "key is from-the-browser" in logs_of(client, ids[0])

        page.goto(f"{server.url}/ui/executions?flowId=needs_key")
        for execution_id in ids[1:]:
            page.locator(f".pick-restart[value='{execution_id}']").check()
        expect(page.locator("#restart-selected")).to_have_text("Restart selected (2)")
        page.locator("#restart-selected").click()
        expect(page.locator("#bulk-status")).to_contain_text("2 restarted")
        for execution_id in ids[1:]:
            done = wait_state(client, execution_id, {"SUCCESS", "FAILED", "KILLED"})
            assert done["state"]["current"] == "SUCCESS", done
            assert logs_of(client, execution_id).count("first ran") == 1

        page.goto(f"{server.url}/ui/executions/{ids[0]}")
        last = _runs(client.get(f"/api/v1/executions/{ids[0]}").json())["last"][0]["id"]
        page.locator(f".replay-from[data-task-run-id='{last}']").click()
        page.wait_for_url(lambda url: ids[0] not in url)
        expect(page.locator("#execution-state")).to_have_text("SUCCESS")
        assert "system.replay:true" in page.locator("#summary").inner_text()
        _set_key(server.home, None)


def test_restart_and_replay_run_on_a_worker(tmp_path: Path) -> None:
    """With --broker, a restart waits in the queue and a worker runs it: the task runs that
    ended well come with the claim and are not run again; so do a replay's copies."""
    redis, port = start_redis(tmp_path, ["127.0.0.1"])
    cluster = Cluster(tmp_path, "127.0.0.1", f"redis://127.0.0.1:{port}/0")
    try:
        server = cluster.start_server()
        server.push(NEEDS_KEY)
        cluster.start_worker("w1")
        with cluster.client() as client:
            failed = _run(client, "needs_key", {"FAILED"})
            _set_key(server.home, "on-a-worker")
            answer = client.post(f"/api/v1/executions/{failed['id']}/restart")
            assert answer.status_code == 200, answer.text
            done = wait_state(client, failed["id"], {"SUCCESS", "FAILED", "KILLED"})
            logs = logs_of(client, failed["id"])
            assert done["state"]["current"] == "SUCCESS", logs
            assert len(_runs(done)["first"][0]["attempts"]) == 1
            assert logs.count("first ran") == 1, logs
            assert "key is on-a-worker" in logs and "last saw n=41" in logs
            assert "attempt 2 on worker w1" in "\n".join(logs)

            last = _runs(done)["last"][0]["id"]
            replay = client.post(
                f"/api/v1/executions/{failed['id']}/replay", params={"taskRunId": last}
            )
            assert replay.status_code == 200, replay.text
            replayed = wait_state(client, replay.json()["id"], {"SUCCESS", "FAILED", "KILLED"})
            logs = logs_of(client, replayed["id"])
            assert replayed["state"]["current"] == "SUCCESS", logs
            assert "first ran" not in logs and "last saw n=41" in logs
    finally:
        cluster.stop()
        redis.stop()
