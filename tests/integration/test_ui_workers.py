"""The workers page (``/ui/workers``) in a real browser: a server with ``--broker`` (real Redis),
real ``executor worker`` processes that registered through their heartbeats, one of them killed
and shown lost, the other running an execution that the page links to."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from executor.engine.docker.backend import DockerBackend
from executor.engine.docker.client import connect
from tests.integration.browser import watched_page
from tests.integration.server_helpers import (
    LiveServer,
    push_flow,
    shell_flow,
    wait_log,
    wait_state,
)
from tests.integration.workers_helpers import AUTH, TOKEN, Cluster, start_redis

pytestmark = pytest.mark.integration

SLOW = shell_flow("slow", "ui.workers", "wait", ["echo started", "sleep 6", "echo done"])


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    redis, port = start_redis(tmp_path, ["127.0.0.1"])
    cluster = Cluster(
        tmp_path, "127.0.0.1", f"redis://127.0.0.1:{port}/0", env={"EXECUTOR_WORKER_LAPSE": "3"}
    )
    try:
        yield cluster
    finally:
        cluster.stop()
        redis.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    options = {"viewport": {"width": 1400, "height": 700}, "extra_http_headers": AUTH}
    with watched_page(browser, **options) as opened:
        yield opened


def test_the_workers_page_shows_live_and_lost_workers_and_what_they_run(
    cluster: Cluster, page: Any
) -> None:
    cluster.start_server()
    with cluster.client() as client:
        push_flow(client, SLOW)
        gone = cluster.start_worker("w-gone")
        gone.proc.kill()  # SIGKILL: its heartbeats stop, the server declares it lost
        gone.proc.wait()
        cluster.start_worker("w-live", slots=2)
        execution_id = client.post("/api/v1/executions/ui.workers/slow").json()["id"]
        wait_log(client, execution_id, "started")

        page.goto(f"{cluster.url}/ui/workers")
        expect(page.locator("nav a.active")).to_have_text("Workers")
        live = page.locator("tr.worker[data-name=w-live]")
        lost = page.locator("tr.worker[data-name=w-gone]")
        expect(live).to_have_attribute("data-alive", "true")
        # the page refreshes itself: the killed worker turns LOST without a reload
        expect(lost).to_have_attribute("data-alive", "false")
        expect(lost.locator(".state")).to_have_text("LOST")
        expect(live.locator(".running a")).to_have_text(execution_id)
        expect(live.locator("td.slots")).to_have_attribute("data-busy", "1")
        expect(live.locator("td.slots")).to_have_attribute("data-free", "1")
        expect(live.locator(".slot.busy")).to_have_count(1)
        engine_id = DockerBackend(connect(None)).engine_id()
        expect(live.locator("td.mono").first).to_have_attribute("title", engine_id)
        expect(live.locator(".chip")).to_have_text(["default"])
        expect(live).to_contain_text(os.uname().nodename)
        assert re.fullmatch(r"[0-9.]+s ago", live.locator("td.mono").nth(1).inner_text())
        # the alive worker first, the lost one after it
        names = [r.get_attribute("data-name") for r in page.locator("tr.worker").all()]
        assert names == ["w-live", "w-gone"]
        if os.environ.get("EXECUTOR_UI_SCREENSHOTS"):  # how docs/ui-workers.png is made
            page.set_viewport_size({"width": 1400, "height": 260})
            page.screenshot(
                path=str(Path(os.environ["EXECUTOR_UI_SCREENSHOTS"]) / "ui-workers.png")
            )

        live.locator(".running a").click()
        page.wait_for_url(re.compile(rf"/ui/executions/ui\.workers/slow/{execution_id}$"))
        done = wait_state(client, execution_id, {"SUCCESS", "FAILED", "KILLED"}, 120)
        assert done["state"]["current"] == "SUCCESS"

        # once it ended, the worker is idle again
        page.goto(f"{cluster.url}/ui/workers")
        expect(live.locator(".running")).to_have_text("idle")
        expect(live.locator("td.slots")).to_have_attribute("data-busy", "0")


def test_a_server_without_broker_says_how_workers_join(tmp_path: Path, page: Any) -> None:
    with LiveServer(tmp_path, env={"EXECUTOR_SERVER_TOKENS": TOKEN}) as server:
        page.goto(f"{server.url}/ui/workers")
        expect(page.locator("#no-broker")).to_contain_text("--broker")
        expect(page.locator("#worker-rows .empty-row")).to_have_text(
            "No worker has reported to this server."
        )
