"""The web UI as a new user meets it, in a real browser (Debian's chromium, Playwright) against
one real server process: any input name in the Execute form, the Resume form of a Pause, the
execution page as a debugging page, a phone's width, the dark scheme, the API docs offline."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from executor.engine import labels
from executor.store.db import Store
from tests.integration.browser import watched_page
from tests.integration.helpers import our_resources
from tests.integration.server_helpers import BUSYBOX, LiveServer, wait_state

pytestmark = pytest.mark.integration

# every name that is also a property or method of an HTML form
SHADOWING = ["dataset", "elements", "action", "method", "id", "name", "submit", "addEventListener"]

NAMES = "\n".join(f"  - {{id: {n}, type: STRING, defaults: d-{n}}}" for n in SHADOWING)
FORM_NAMES = f"""
id: form_names
namespace: tests.ui
inputs:
{NAMES}
tasks:
  - id: echo
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ inputs.dataset }}}} {{{{ inputs.elements }}}}"
"""

NEEDS_COUNT = """
id: needs_count
namespace: tests.ui
inputs:
  - {id: count, type: INT}
tasks:
  - id: echo
    type: io.kestra.plugin.core.log.Log
    message: "count={{ inputs.count }}"
"""

APPROVAL = """
id: approval
namespace: tests.ui
tasks:
  - id: build
    type: io.kestra.plugin.core.log.Log
    message: built
  - id: review
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - {id: approved, type: BOOLEAN, description: "Ship it?"}
      - {id: reason, type: STRING, defaults: looks good}
      - {id: reviewers, type: INT}
  - id: ship
    type: io.kestra.plugin.core.log.Log
    message: "approved={{ outputs.review.onResume.approved }}"
  - id: notify
    type: io.kestra.plugin.core.log.Log
    message: notified
"""

# shell lines, in YAML's folded form so their quotes and colons stay as written
REPORT = f"""
id: report
namespace: tests.ui
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    outputFiles: [report.csv, summary.json]
    tasks:
      - id: extract
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: {BUSYBOX}
        commands:
          - printf 'plain \\033[31mred\\033[0m \\033[1;32mbold green\\033[0m\\n'
          - >-
            printf 'id,name\\n1,"Smith, Ada"\\n2,Bob\\n' > report.csv
          - >-
            echo '{{"rows": 2, "ok": true}}' > summary.json
          - >-
            echo '::{{"metrics":[{{"name":"rows.read","type":"counter","value":2}}]}}::'
      - id: load
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: {BUSYBOX}
        commands:
          - echo loading rows
          - >-
            echo 'psql: connection refused on port 5432' >&2
          - exit 3
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: not reached
"""

SMALL = """
id: small
namespace: tests.ui
tasks:
  - id: hi
    type: io.kestra.plugin.core.log.Log
    message: "a line long enough to wrap on a phone screen, with an id: {{ execution.id }}"
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module's tests; afterwards no resource of its executions remains."""
    home = tmp_path_factory.mktemp("ui-day-two")
    with LiveServer(home) as server:
        for flow in (FORM_NAMES, NEEDS_COUNT, APPROVAL, REPORT, SMALL):
            server.push(flow)
        yield server
    with Store(home / "executor.db") as store:
        ids = [e.id for e in store.list_executions()]
    left = [r for eid in ids for r in our_resources(**{labels.EXECUTION: eid})]
    assert not left, f"resources left behind: {[(r.kind, r.name) for r in left]}"


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    with watched_page(browser, viewport={"width": 1400, "height": 1000}) as opened:
        yield opened


def _field(page: Any, name: str) -> Any:
    """The control of the input field labelled ``name`` (whatever the markup calls it)."""
    label = page.locator(".field-name", has_text=re.compile(rf"^\s*{re.escape(name)}\b"))
    return page.locator(".field", has=label).locator("input, select, textarea").first


def _execution_id(page: Any) -> str:
    match = re.search(r"/ui/executions/[^/]+/[^/]+/([0-9A-Za-z]+)$", page.url)
    assert match, page.url
    return match[1]


def test_inputs_named_like_form_properties_start_executions(live: LiveServer, page: Any) -> None:
    """Inputs called dataset, elements, action, method, id, name, submit, addEventListener:
    Execute starts an execution with the values typed in each."""
    page.goto(f"{live.url}/ui/flows/tests.ui/form_names")
    for name in SHADOWING:
        _field(page, name).fill(f"typed {name}")
    page.click("#execute-button")
    page.wait_for_url(re.compile(r"/ui/executions/tests\.ui/form_names/\w+$"))
    expect(page.locator("#execute-error")).to_have_count(0)
    execution = live.execution(_execution_id(page))
    assert execution["inputs"] == {name: f"typed {name}" for name in SHADOWING}
    expect(page.locator("#summary")).to_have_attribute("data-state", "SUCCESS")
    expect(page.locator("#logs .log", has_text="typed dataset typed elements")).to_be_visible()


def test_the_execute_form_says_what_is_wrong_next_to_the_field(live: LiveServer, page: Any) -> None:
    """A missing or badly typed input: the server's refusal is shown next to its field, and
    nothing starts until it is right."""
    page.goto(f"{live.url}/ui/flows/tests.ui/needs_count")
    page.click("#execute-button")
    error = page.locator("[data-error-for=count]")
    expect(error).to_have_text("required")
    _field(page, "count").fill("2.5")
    page.click("#execute-button")
    expect(error).to_have_text("not a valid INT: expected a whole number, got '2.5'")
    expect(page.locator("#execute-error")).to_have_text("")
    _field(page, "count").fill("3")
    page.click("#execute-button")
    page.wait_for_url(re.compile(r"/ui/executions/tests\.ui/needs_count/\w+$"))
    expect(page.locator("#logs .log", has_text="count=3")).to_be_visible()


def test_the_resume_form_checks_each_field_then_resumes(live: LiveServer, page: Any) -> None:
    """A Pause's onResume inputs become a form: a missing or badly typed value is said next to
    its field and nothing resumes; valid values resume it and reach the Pause's outputs."""
    with live.client() as api:
        execution_id = api.post("/api/v1/executions/tests.ui/approval").json()["id"]
        wait_state(api, execution_id, {"PAUSED"})
    page.goto(f"{live.url}/ui/executions/{execution_id}")
    form = page.locator("#resume-form")
    expect(form.locator(".field")).to_have_count(3)
    expect(_field(page, "reason")).to_have_value("looks good")
    expect(page.locator("#resume-panel")).to_contain_text("Ship it?")
    # the tasks still to come are in the tree, greyed
    expect(page.locator("#task-tree tr.pending")).to_have_count(2)
    assert page.locator("#task-tree tr.pending").nth(0).get_attribute("data-task-id") == "ship"

    page.click("#resume")
    approved_error = page.locator("[data-error-for=approved]")
    expect(approved_error).to_be_visible()
    expect(approved_error).to_have_text("required")
    expect(page.locator("[data-error-for=reviewers]")).to_have_text("required")
    expect(page.locator("[data-error-for=reason]")).to_be_hidden()

    _field(page, "approved").select_option("true")
    _field(page, "reviewers").fill("2.5")
    page.click("#resume")
    expect(page.locator("[data-error-for=reviewers]")).to_have_text(
        "not a valid INT: expected a whole number, got '2.5'"
    )
    expect(approved_error).to_be_hidden()
    assert live.execution(execution_id)["state"]["current"] == "PAUSED"

    _field(page, "reviewers").fill("2")
    page.click("#resume")
    expect(page.locator("#summary")).to_have_attribute("data-state", "SUCCESS")
    expect(page.locator("#resume-form")).to_have_count(0)
    done = live.execution(execution_id)
    review = next(r for r in done["taskRunList"] if r["taskId"] == "review")
    assert review["outputs"]["onResume"] == {
        "approved": True,
        "reason": "looks good",
        "reviewers": 2,
    }
    expect(page.locator("#logs .log", has_text="approved=true")).to_be_visible()


def test_a_failed_execution_reads_as_a_debugging_page(live: LiveServer, page: Any) -> None:
    """The failure first (task, reason, stderr), logs filtered by task and in colour, previews
    of the output files, the metrics recorded, a tree whose arrows fold."""
    with live.client() as api:
        execution_id = api.post("/api/v1/executions/tests.ui/report").json()["id"]
        wait_state(api, execution_id, {"FAILED", "SUCCESS"})
    page.goto(f"{live.url}/ui/executions/{execution_id}")

    failure = page.locator("#failure")
    expect(failure).to_contain_text("task 'load' failed")
    expect(failure.locator(".failed-run[data-task-id=load]")).to_contain_text("exit code 3")
    expect(failure.locator("pre.stderr")).to_contain_text("psql: connection refused on port 5432")
    box = failure.bounding_box()
    tasks = page.locator("#tasks-panel").bounding_box()
    assert box is not None and tasks is not None and box["y"] < tasks["y"]  # above the tree

    # ANSI colours are drawn, never printed as escape codes
    red = page.locator("#logs .log .ansi-31", has_text="red")
    expect(red).to_be_visible()
    expect(page.locator("#logs .log .ansi-32.ansi-bold", has_text="bold green")).to_be_visible()
    assert "[31m" not in page.locator("#logs").inner_text()

    # the log filtered by task, from the select or from a task's name
    page.select_option("#log-task", "load")
    expect(page.locator("#logs .log:visible")).not_to_have_count(0)
    for row in page.locator("#logs .log:visible").all():
        assert row.get_attribute("data-task") == "load"
    page.select_option("#log-task", "")
    page.locator("#task-tree button.task-link[data-task=extract]").click()
    expect(page.locator("#log-task")).to_have_value("extract")
    expect(page.locator("#logs .log:visible", has_text="loading rows")).to_have_count(0)

    # previews: a CSV as a table (a quoted comma stays in its cell), JSON indented
    csv_item = page.locator("#output-files li", has_text="report.csv")
    csv_item.locator(".preview-button").click()
    table = csv_item.locator(".preview table")
    expect(table.locator("th")).to_have_text(["id", "name"])
    expect(table.locator("tr").nth(1).locator("td")).to_have_text(["1", "Smith, Ada"])
    json_item = page.locator("#output-files li", has_text="summary.json")
    json_item.locator(".preview-button").click()
    expect(json_item.locator(".preview pre")).to_have_text('{\n  "rows": 2,\n  "ok": true\n}')

    # the metrics a task recorded
    expect(page.locator("#metrics tbody tr")).to_have_count(1)
    expect(page.locator("#metrics tbody tr")).to_contain_text("rows.read")

    # the WorkingDirectory's arrow folds its children away and back
    children = page.locator("#task-tree tr[data-task-id=extract], #task-tree tr[data-task-id=load]")
    expect(children).to_have_count(2)
    twisty = page.locator("#task-tree tr[data-task-id=wd] .twisty")
    twisty.click()
    expect(children.first).to_be_hidden()
    expect(children.last).to_be_hidden()
    expect(twisty).to_have_attribute("aria-expanded", "false")
    twisty.click()
    expect(children.first).to_be_visible()


PHONE_WIDTH = 390
MAIN_PAGES = [
    "/ui/flows",
    "/ui/flows/tests.ui/approval",
    "/ui/executions",
    "/ui/namespaces",
    "/ui/namespaces/tests.ui/files",
    "/ui/workers",
    "/api/docs",
]


def test_a_phone_screen_never_scrolls_sideways(
    live: LiveServer, browser: Any, tmp_path: Path
) -> None:
    """At 390 px every main page, and an execution's, is no wider than the screen; wide
    tables scroll inside their own box."""
    with live.client() as api:
        done = api.post("/api/v1/executions/tests.ui/small", params={"wait": "true"}).json()
    pages = [*MAIN_PAGES, f"/ui/executions/{done['id']}"]
    phone_screen = {"width": PHONE_WIDTH, "height": 844}
    with watched_page(browser, viewport=phone_screen, is_mobile=True) as phone:
        for path in pages:
            phone.goto(live.url + path)
            expect(phone.locator("main")).to_be_visible()
            if path.startswith("/ui/executions/"):
                expect(phone.locator("#log-status")).to_have_text("complete")
            widths = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            shot = tmp_path / (path.strip("/").replace("/", "_") + ".png")
            phone.screenshot(path=str(shot), full_page=True)
            # a phone widens its layout viewport to fit a page that is too wide: both count
            assert widths == [PHONE_WIDTH, PHONE_WIDTH] or widths[0] < widths[1] == PHONE_WIDTH, (
                f"{path} is {widths[0]} px wide on a {PHONE_WIDTH} px screen (viewport {widths[1]})"
            )


def _luminance(css_colour: str) -> float:
    red, green, blue = (int(x) for x in re.findall(r"\d+", css_colour)[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


def test_the_dark_scheme_follows_the_system(live: LiveServer, browser: Any) -> None:
    """Under prefers-color-scheme: dark the pages are dark with light text; light otherwise."""
    looks = {}
    for scheme in ("light", "dark"):
        with watched_page(browser, color_scheme=scheme) as themed:
            themed.goto(f"{live.url}/ui/flows/tests.ui/approval")
            expect(themed.locator("#execute")).to_be_visible()
            looks[scheme] = themed.evaluate(
                """() => [getComputedStyle(document.body).backgroundColor,
                          getComputedStyle(document.body).color,
                          getComputedStyle(document.querySelector('.panel')).backgroundColor,
                          getComputedStyle(document.querySelector('textarea')).backgroundColor]"""
            )
    light, dark = looks["light"], looks["dark"]
    assert _luminance(light[0]) > 0.8 and _luminance(light[1]) < 0.3, light
    assert _luminance(dark[0]) < 0.15 and _luminance(dark[1]) > 0.8, dark
    assert _luminance(dark[2]) < 0.2 and _luminance(dark[3]) < 0.2, dark  # panels, fields too


def test_the_api_docs_render_with_only_the_server_reachable(live: LiveServer, page: Any) -> None:
    """/api/docs draws Swagger UI from the server's own files: with every other address
    refused, the operations still appear."""
    refused: list[str] = []

    def only_the_server(route: Any) -> None:
        if route.request.url.startswith(live.url):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    page.goto(f"{live.url}/api/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("executor")
    operation = page.locator(".opblock-summary-path", has_text="/api/v1/executions/{execution_id}")
    expect(operation.first).to_be_visible()
    assert refused == [], refused
