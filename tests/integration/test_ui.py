"""The web UI in a real browser (Debian's chromium driven by Playwright) against a real server
process running real flows on the real engine."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.integration.browser import WAIT_MS, watched_page
from tests.integration.server_helpers import BUSYBOX, LiveServer, shell_flow

pytestmark = pytest.mark.integration

STEPS = f"""
id: steps
namespace: company.team
inputs:
  - id: count
    type: INT
    defaults: 2
  - id: who
    type: STRING
    defaults: world
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "hello {{{{ inputs.who }}}}"
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: count
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: {BUSYBOX}
        commands:
          - for i in $(seq 1 {{{{ inputs.count }}}}); do echo "tick $i"; sleep 1; done
      - id: keep
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: {BUSYBOX}
        commands:
          - echo "kept by {{{{ inputs.who }}}}" > out.txt
        outputFiles: [out.txt]
"""

SLEEPER = shell_flow("sleeper", "company.team", "nap", ["echo napping", "sleep 300"])

XSS = """
id: xss
namespace: company.team
inputs:
  - id: note
    type: STRING
    defaults: "<img src=x onerror=\\"window.pwned='input'\\">"
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "<script>window.pwned='log'</script><img src=x onerror=\\"window.pwned='img'\\">"
"""


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    with watched_page(browser, viewport={"width": 1400, "height": 1000}) as opened:
        yield opened


def _execution_id(page: Any) -> str:
    match = re.search(r"/ui/executions/[^/]+/[^/]+/([0-9A-Za-z]+)$", page.url)
    assert match, page.url
    return match[1]


# ----- tests


def test_execute_from_the_flow_page_and_watch_it_run(server: LiveServer, page: Any) -> None:
    server.push(STEPS)
    page.goto(f"{server.url}/ui/flows/company.team/steps")
    page.fill("#execute-form [data-input=count]", "3")
    page.fill("#execute-form [data-input=who]", "ada")
    page.click("#execute-button")

    page.wait_for_url(re.compile(r"/ui/executions/company\.team/steps/\w+$"))
    execution_id = _execution_id(page)
    summary = page.locator("#summary")
    # a log line arrives while the execution still runs: the page follows the live stream
    expect(page.locator("#logs .log", has_text="tick 1")).to_be_visible()
    expect(summary).to_have_attribute("data-state", "RUNNING")
    expect(page.locator("#task-tree tr[data-task-id=count]")).to_be_visible()

    expect(summary).to_have_attribute("data-state", "SUCCESS")
    expect(page.locator("#execution-state")).to_have_text("SUCCESS")
    assert server.execution(execution_id)["state"]["current"] == "SUCCESS"
    assert page.locator("#kill").count() == 0
    expect(page.locator("#logs .log", has_text="tick 3")).to_be_visible()
    expect(page.locator("#logs .log", has_text="hello ada")).to_be_visible()

    # the task tree: the WorkingDirectory's children under it, every run in SUCCESS
    rows = page.locator("#task-tree tr.task")
    expect(rows).to_have_count(4)
    tree = [
        (row.get_attribute("data-task-id"), row.get_attribute("data-depth")) for row in rows.all()
    ]
    assert tree == [("hello", "0"), ("wd", "0"), ("count", "1"), ("keep", "1")]
    wd_run = rows.nth(1).get_attribute("data-task-run-id")
    assert rows.nth(2).get_attribute("data-parent") == wd_run
    assert {row.get_attribute("data-state") for row in rows.all()} == {"SUCCESS"}

    # the Gantt bars: one per run, in order on the timeline, the 3 s task the longest child
    bars = page.locator("#task-tree rect.gantt-bar")
    expect(bars).to_have_count(4)
    spans = [
        (float(b.get_attribute("data-offset")), float(b.get_attribute("data-width")))
        for b in bars.all()
    ]
    hello, wd, count, keep = spans
    assert hello[0] <= wd[0] <= count[0] < keep[0]
    assert count[0] + count[1] <= keep[0] + 0.01
    assert count[1] > keep[1]
    assert wd[0] + wd[1] >= keep[0] + keep[1] - 0.01
    drawn = bars.nth(2).bounding_box()
    assert drawn is not None and drawn["width"] > 10

    # the output file, downloaded from its link
    link = page.locator("#output-files li", has_text="out.txt").locator("a.download")
    with page.expect_download() as download:
        link.click()
    assert Path(download.value.path()).read_text() == "kept by ada\n"

    # level filter and search act on the lines shown
    page.select_option("#log-level", "INFO")
    expect(page.locator("#logs .log[data-level=DEBUG]:visible")).to_have_count(0)
    page.fill("#log-search", "tick 2")
    expect(page.locator("#logs .log:visible")).to_have_count(1)
    expect(page.locator("#logs .log:visible mark")).to_have_text("tick 2")


def test_the_kill_button_kills_a_running_execution(server: LiveServer, page: Any) -> None:
    server.push(SLEEPER)
    with server.client() as api:
        execution_id = api.post("/api/v1/executions/company.team/sleeper").json()["id"]
    page.goto(f"{server.url}/ui/executions/{execution_id}")
    expect(page.locator("#logs .log", has_text="napping")).to_be_visible()
    expect(page.locator("#summary")).to_have_attribute("data-state", "RUNNING")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#kill")

    expect(page.locator("#summary")).to_have_attribute("data-state", "KILLED")
    expect(page.locator("#kill")).to_have_count(0)
    # the page stops following: the log says it is complete, and keeps its lines
    expect(page.locator("#log-status")).to_have_text("complete")
    expect(page.locator("#logs .log", has_text="napping")).to_be_visible()
    assert server.execution(execution_id)["state"]["current"] == "KILLED"
    expect(page.locator("#task-tree tr[data-task-id=nap]")).to_have_attribute(
        "data-state", "KILLED"
    )


def test_validation_errors_are_marked_on_their_lines_while_typing(
    server: LiveServer, page: Any
) -> None:
    server.push(SLEEPER)
    page.goto(f"{server.url}/ui/flows/company.team/sleeper")
    page.click("#edit")
    expect(page.locator("#validation")).to_have_text("Valid")
    expect(page.locator("#gutter .bad")).to_have_count(0)

    editor = page.locator("#editor")
    source = editor.input_value()
    # a typo on the line after "containerImage" (line 9): typed key by key, as a user would
    lines = source.split("\n")
    image_line = next(i for i, line in enumerate(lines) if "containerImage" in line)
    editor.focus()
    editor.evaluate(
        "(el, at) => { el.selectionStart = el.selectionEnd = at; }",
        len("\n".join(lines[: image_line + 1])),
    )
    page.keyboard.type("\n        comands: [ls]")

    typo_line = image_line + 2
    expect(page.locator("#validation")).to_have_attribute("data-state", "bad")
    expect(page.locator("#gutter .bad")).to_have_text(str(typo_line))
    expect(page.locator(f"#problems li[data-line='{typo_line}']")).to_contain_text(
        "unknown property 'comands'"
    )

    # fixed by hand: the mark goes, and the flow saves as a new revision
    for _ in range(len("comands: [ls]")):
        page.keyboard.press("Backspace")
    page.keyboard.type("description: fixed")
    expect(page.locator("#validation")).to_have_text("Valid")
    expect(page.locator("#gutter .bad")).to_have_count(0)
    page.click("#save")
    expect(page.locator(".chip", has_text="revision 2")).to_be_visible()
    expect(page.locator("#source")).to_contain_text("description: fixed")


def test_markup_in_logs_inputs_and_flows_stays_text(server: LiveServer, page: Any) -> None:
    server.push(XSS)
    with server.client() as api:
        execution_id = api.post("/api/v1/executions/company.team/xss").json()["id"]
    page.goto(f"{server.url}/ui/executions/{execution_id}")
    expect(page.locator("#summary")).to_have_attribute("data-state", "SUCCESS")
    line = page.locator("#logs .log", has_text="window.pwned='log'")
    expect(line).to_be_visible()
    assert "<script>window.pwned='log'</script>" in line.inner_text()
    expect(page.locator("#inputs-panel")).to_contain_text("<img src=x onerror=")

    for path in ("/ui/flows", "/ui/flows/company.team/xss", "/ui/executions"):
        page.goto(server.url + path)
        expect(page.locator("main")).to_be_visible()
    page.goto(f"{server.url}/ui/executions/{execution_id}")
    expect(page.locator("#logs .log", has_text="window.pwned='img'")).to_be_visible()
    # nothing of it ran, nor became an element
    assert page.evaluate("window.pwned") is None
    assert page.locator("main img, main script").count() == 0


def test_namespace_files_upload_view_download_delete(
    server: LiveServer, page: Any, tmp_path: Path
) -> None:
    files_api = "/api/v1/namespaces/company.team/files"
    local = tmp_path / "data.csv"
    local.write_text("id,name\n1,<b>ada</b>\n")
    page.goto(f"{server.url}/ui/namespaces/company.team/files")
    expect(page.locator("#file-list")).to_contain_text("Empty.")

    page.fill("#mkdir-name", "inbox")
    page.click("#mkdir-form button[type=submit]")
    page.wait_for_url(re.compile(r"path=%2Finbox"))
    page.set_input_files("#upload-file", str(local))
    page.click("#upload-button")
    entry = page.locator("#file-list a.entry", has_text="data.csv")
    expect(entry).to_be_visible()

    with server.client() as api:
        stored = api.get(files_api, params={"path": "/inbox/data.csv"})
    assert stored.content == local.read_bytes()

    entry.click()
    expect(page.locator("#file-text")).to_contain_text("1,<b>ada</b>")
    with page.expect_download() as download:
        page.click("a.download")
    assert Path(download.value.path()).read_bytes() == local.read_bytes()

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button.delete")
    page.wait_for_url(re.compile(r"path=%2Finbox$"))
    expect(page.locator("#file-list")).to_contain_text("Empty.")
    with server.client() as api:
        gone = api.get(files_api, params={"path": "/inbox/data.csv"})
    assert gone.status_code == 404


def test_the_executions_list_filters_and_refreshes_itself(server: LiveServer, page: Any) -> None:
    server.push(STEPS)
    server.push(XSS)
    with server.client() as api:
        first = api.post("/api/v1/executions/company.team/xss").json()["id"]
    page.goto(f"{server.url}/ui/executions?flowId=steps")
    expect(page.locator("#execution-rows")).to_contain_text("No execution matches.")

    with server.client() as api:
        answer = api.post("/api/v1/executions/company.team/steps", data={"count": "1"})
    started = answer.json()["id"]
    # no reload: the rows refresh themselves, and keep the filter
    row = page.locator(f"#execution-rows tr[data-id='{started}']")
    expect(row).to_be_visible()
    expect(row).to_contain_text("SUCCESS")
    expect(page.locator(f"#execution-rows tr[data-id='{first}']")).to_have_count(0)

    page.select_option("#filters select[name=state]", "FAILED")
    page.click("#filters button[type=submit]")
    expect(page.locator("#execution-rows")).to_contain_text("No execution matches.")


def test_with_a_user_configured_the_browser_signs_in_and_pages_stay_live(
    home: Path, executions_leave_nothing: None, browser: Any
) -> None:
    users = {"EXECUTOR_SERVER_USERS": "alice:s3cret"}
    with LiveServer(home, env=users, auth=("alice", "s3cret")) as live:
        live.push(XSS)
        refused = httpx.get(f"{live.url}/ui/executions")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Basic")

        context = browser.new_context(http_credentials={"username": "alice", "password": "s3cret"})
        context.set_default_timeout(WAIT_MS)
        try:
            page = context.new_page()
            page.goto(f"{live.url}/ui/flows/company.team/xss")
            page.click("#execute-button")
            page.wait_for_url(re.compile(r"/ui/executions/company\.team/xss/\w+$"))
            # the event streams and the re-rendered parts carry the same credentials
            expect(page.locator("#summary")).to_have_attribute("data-state", "SUCCESS")
            expect(page.locator("#logs .log", has_text="window.pwned='log'")).to_be_visible()
        finally:
            context.close()


PAUSED = """
id: approval
namespace: company.team
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: resumed and done
"""


def test_a_paused_execution_resumes_from_its_button(server: LiveServer, page: Any) -> None:
    server.push(PAUSED)
    with server.client() as api:
        execution_id = api.post("/api/v1/executions/company.team/approval").json()["id"]
    page.goto(f"{server.url}/ui/executions/{execution_id}")
    expect(page.locator("#summary")).to_have_attribute("data-state", "PAUSED")

    page.click("#resume")

    expect(page.locator("#summary")).to_have_attribute("data-state", "SUCCESS")
    expect(page.locator("#logs .log", has_text="resumed and done")).to_be_visible()
    expect(page.locator("#resume")).to_have_count(0)
