"""The CLI against one real server, as a new user met it: `resume` says what is missing before
it waits, `run --server` prints what happened in the order it happened, `flows push` stores
each flow exactly as written."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor.store.db import Store
from tests.integration.helpers import cli
from tests.integration.server_helpers import LiveServer, wait_state

pytestmark = pytest.mark.integration

APPROVAL = """\
id: approval
namespace: tests.cli
tasks:
  - id: review
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - {id: approved, type: BOOLEAN}
      - {id: reviewers, type: INT, defaults: 1}
  - id: ship
    type: io.kestra.plugin.core.log.Log
    message: "approved={{ outputs.review.onResume.approved }}"
"""

STEPS = """\
id: steps
namespace: tests.cli
tasks:
  - id: first
    type: io.kestra.plugin.core.log.Log
    message: line of first
  - id: second
    type: io.kestra.plugin.core.log.Log
    message: [second one, second two]
  - id: third
    type: io.kestra.plugin.core.log.Log
    message: line of third
"""

OTHER = """\
# a comment on the first line stays the first line
id: other
namespace: tests.cli
tasks:
  - id: only
    type: io.kestra.plugin.core.log.Log
    message: hi
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("cli-day-two")
    with LiveServer(home) as server:
        server.push(APPROVAL)
        yield server


def _resume_requests(home: Path) -> int:
    with Store(home / "executor.db") as store:
        return len(store.read("SELECT execution_id FROM resumes"))


def test_resume_refuses_missing_inputs_before_waiting(live: LiveServer) -> None:
    """`executor resume ID` without a required onResume input: exit 2 at once, naming the
    input and how to pass it; nothing is asked of the paused run, which stays PAUSED. With it,
    the execution goes on."""
    with live.client() as api:
        execution_id = api.post("/api/v1/executions/tests.cli/approval").json()["id"]
        wait_state(api, execution_id, {"PAUSED"})

    missing = cli(live.home, "resume", execution_id, "-i", "reviewers=2")
    assert missing.returncode == 2, missing.stderr
    assert missing.stderr.strip() == (
        f"executor: execution {execution_id} cannot resume (task 'review'): input 'approved' "
        "(BOOLEAN) is required: pass -i approved=VALUE"
    )
    assert "still PAUSED" not in missing.stderr
    bad = cli(live.home, "resume", execution_id, "-i", "approved=maybe", "-i", "who=me")
    assert bad.returncode == 2
    assert "input 'approved' is not a valid BOOLEAN: expected true or false" in bad.stderr
    assert "unknown input(s) who; the Pause's onResume declares: approved, reviewers" in (
        bad.stderr
    )
    assert _resume_requests(live.home) == 0
    assert live.execution(execution_id)["state"]["current"] == "PAUSED"

    ok = cli(live.home, "resume", execution_id, "-i", "approved=true")
    assert ok.returncode == 0, ok.stderr
    with live.client() as api:
        done = wait_state(api, execution_id, {"SUCCESS", "FAILED"})
    review = next(r for r in done["taskRunList"] if r["taskId"] == "review")
    assert review["outputs"]["onResume"] == {"approved": True, "reviewers": 1}


def test_the_resume_endpoint_checks_before_it_asks(live: LiveServer) -> None:
    """POST /resume with a missing input is 422 naming it (nothing asked); /resume/validate
    answers Kestra's shape, each input with its value and errors."""
    with live.client() as api:
        execution_id = api.post("/api/v1/executions/tests.cli/approval").json()["id"]
        wait_state(api, execution_id, {"PAUSED"})
        refused = api.post(
            f"/api/v1/main/executions/{execution_id}/resume", files={"reviewers": (None, "x")}
        )
        assert refused.status_code == 422
        assert refused.json()["message"] == (
            f"execution {execution_id} cannot resume (task 'review'): input 'approved' "
            "(BOOLEAN) is required; input 'reviewers' is not a valid INT: expected a whole "
            "number, got 'x'"
        )
        assert _resume_requests(live.home) == 0
        checked = api.post(
            f"/api/v1/executions/{execution_id}/resume/validate",
            files={"approved": (None, "true")},
        ).json()
        assert checked["id"] == "approval" and checked["namespace"] == "tests.cli"
        by_id = {i["input"]["id"]: i for i in checked["inputs"]}
        assert by_id["approved"]["value"] is True and by_id["approved"]["errors"] == []
        assert by_id["reviewers"]["isDefault"] is True and by_id["reviewers"]["value"] == 1
        resumed = api.post(
            f"/api/v1/executions/{execution_id}/resume", files={"approved": (None, "false")}
        )
        assert resumed.status_code == 204
        wait_state(api, execution_id, {"SUCCESS"})
        again = api.post(f"/api/v1/executions/{execution_id}/resume/validate")
        assert again.status_code == 409


def _lines(stderr: str) -> list[str]:
    """The view's lines without their timestamps."""
    return [re.sub(r"^\d\d:\d\d:\d\d\.\d{3} ", "", line) for line in stderr.splitlines()]


def test_run_on_a_server_prints_what_happened_in_order(live: LiveServer, tmp_path: Path) -> None:
    """`run --server` shows each task's RUNNING, its lines, its SUCCESS, task after task, and
    the execution's end last: what a local run of the same flow shows."""
    flow = tmp_path / "steps.yaml"
    flow.write_text(STEPS)
    remote = cli(live.home, "run", str(flow), "--server", live.url)
    assert remote.returncode == 0, remote.stderr
    local = cli(tmp_path / "local-home", "run", str(flow))
    assert local.returncode == 0, local.stderr

    def shape(stderr: str) -> list[str]:
        return [
            re.sub(r"\s+", " ", line).strip()
            for line in _lines(stderr)
            if "──" in line or "INFO" in line
        ]

    expected = [
        "first ── RUNNING",
        "first INFO line of first",
        "first ── SUCCESS",
        "second ── RUNNING",
        "second INFO second one",
        "second INFO second two",
        "second ── SUCCESS",
        "third ── RUNNING",
        "third INFO line of third",
        "third ── SUCCESS",
    ]

    for stderr in (remote.stderr, local.stderr):
        seen = [re.sub(r" in \d+\.\d\ds$", "", line) for line in shape(stderr)]
        steps = [line for line in seen if not line.startswith("- INFO")]
        assert steps == expected, stderr
        assert seen[-1].startswith("- INFO execution ended SUCCESS"), stderr


def test_flows_push_stores_each_flow_as_written(live: LiveServer, tmp_path: Path) -> None:
    """Flows pushed together keep their exact text: no blank line before the second one, none
    added after the first."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "a_steps.yaml").write_text(STEPS)
    (flows / "b_other.yaml").write_text(OTHER)
    (flows / "c_no_newline.yaml").write_text(
        textwrap.dedent(OTHER).replace("id: other", "id: bare").rstrip("\n")
    )
    pushed = cli(live.home, "flows", "push", str(flows), "--server", live.url, "--no-delete")
    assert pushed.returncode == 0, pushed.stderr
    with live.client() as api:
        for name, written in (("steps", STEPS), ("other", OTHER)):
            stored = api.get(f"/api/v1/flows/tests.cli/{name}", params={"source": "true"})
            assert stored.json()["source"] == written
        bare = api.get("/api/v1/flows/tests.cli/bare", params={"source": "true"}).json()
        assert bare["source"].startswith("# a comment") and bare["source"].endswith("hi\n")
