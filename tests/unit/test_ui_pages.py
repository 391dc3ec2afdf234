"""The UI's pages through the app (no engine, queue not started): auth, escaping, assets, errors.

The real proof runs a browser against a real server (tests/integration/test_ui.py); these check
what the pages' HTML is, fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from executor.host import Owner
from executor.model import Execution, State, StateHistory, TaskRun
from executor.server import ui
from executor.server.app import create_app
from executor.server.config import ServerConfig
from executor.settings import Settings
from executor.store.db import Store
from executor.store.flows import save_flow
from executor.store.records import execution_record, task_run_record

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'
FLOW = """
id: shown
namespace: company.team
description: "<script>alert('d')</script>"
inputs:
  - id: who
    type: STRING
    defaults: "<b>bold</b>"
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "<script>alert('m')</script>"
"""


def _settings(home: Path) -> Settings:
    return Settings.from_env({"EXECUTOR_HOME": str(home)})


def _client(home: Path, config: ServerConfig | None = None) -> TestClient:
    # used without `with`: the lifespan (the queue and its slots) never starts
    app = create_app(_settings(home), config or ServerConfig(), extra_routers=[ui.router])
    return TestClient(app, base_url="http://127.0.0.1")  # a name the server serves


@pytest.fixture
def client(home: Path) -> Iterator[TestClient]:
    yield _client(home)


def _stored_execution(home: Path) -> Execution:
    run = TaskRun(
        task_id="say",
        task_type="io.kestra.plugin.core.log.Log",
        state=StateHistory(State.FAILED),
        outputs={"value": EVIL, "outputFiles": {EVIL: "kestra:///company/team/shown/x"}},
        reason=EVIL,
    )
    execution = Execution(
        namespace="company.team",
        flow_id="shown",
        inputs={"who": EVIL},
        state=StateHistory(State.FAILED),
        task_runs=[run],
        reason=EVIL,
        labels={"team": EVIL},
    )
    with Store(_settings(home).db_path) as store:
        store.write(
            [
                execution_record(execution, Owner.current()),
                task_run_record(execution.id, 0, run),
            ]
        )
    return execution


def test_root_and_ui_lead_to_the_executions(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=True)

    assert answer.status_code == 200
    assert answer.url.path == "/ui/executions"
    assert "No execution matches." in answer.text


def test_pages_forbid_inline_and_foreign_scripts(client: TestClient) -> None:
    answer = client.get("/ui/flows")

    policy = answer.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "default-src 'self'" in policy
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_user_values_are_text_on_every_page(client: TestClient, home: Path) -> None:
    with Store(_settings(home).db_path) as store:
        save_flow(store, "company.team", "shown", FLOW)
    execution = _stored_execution(home)
    pages = [
        "/ui/flows",
        "/ui/flows/company.team/shown",
        "/ui/executions",
        "/ui/executions?partial=true",
        f"/ui/executions/company.team/shown/{execution.id}",
        f"/ui/executions/company.team/shown/{execution.id}?partial=true",
    ]
    for path in pages:
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert "<script>alert" not in answer.text, path
        assert "<img src=x" not in answer.text, path
        assert "<b>bold" not in answer.text, path
    page = client.get(f"/ui/executions/company.team/shown/{execution.id}").text
    shown = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    assert shown in page
    flow_page = client.get("/ui/flows/company.team/shown").text
    assert 'value="&lt;b&gt;bold&lt;/b&gt;"' in flow_page


def test_a_missing_execution_or_flow_is_a_404_page(client: TestClient) -> None:
    for path in ("/ui/executions/nope", "/ui/executions/a/b/nope", "/ui/flows/a/b"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "not found" in answer.text


def test_only_the_packaged_assets_are_served(client: TestClient) -> None:
    assert client.get("/ui/static/ui.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/ui/static/ui.css").status_code == 200
    for path in ("/ui/static/routes.py", "/ui/static/..%2Froutes.py", "/ui/static/../routes.py"):
        assert client.get(path).status_code == 404, path


def test_namespace_paths_cannot_leave_the_namespace(client: TestClient, home: Path) -> None:
    (home / "namespaces").mkdir(exist_ok=True)
    answer = client.get("/ui/namespaces/company.team/files", params={"path": "/../../etc"})

    assert answer.status_code == 422
    assert "passwd" not in answer.text


def test_with_users_configured_the_ui_asks_the_browser_for_them(home: Path) -> None:
    config = ServerConfig(users={"alice": "s3cret"})
    client = _client(home, config)

    refused = client.get("/ui/executions")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Basic realm="executor"'
    assert client.get("/ui/static/ui.js").status_code == 401
    assert client.get("/ui/executions", auth=("alice", "s3cret")).status_code == 200
    assert client.get("/ui/executions", auth=("alice", "wrong")).status_code == 401


def test_importing_the_ui_builds_no_templates() -> None:
    """The Jinja environment and the asset list are built on first use, not at import."""
    import subprocess
    import sys

    probe = (
        "from executor.server.ui import routes; "
        "print(routes.templates.cache_info().currsize, routes.static_files.cache_info().currsize)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "0"]
    from executor.server.ui import routes

    assert routes.templates() is routes.templates()  # built once
    assert "ui.js" in routes.static_files()
