"""dbt runs a tiny project for real in the local dbt image: on DuckDB and on a throwaway
PostgreSQL, with ``parseRunResults`` outputs, one task run per model and their metrics."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from executor.model import Execution, State, TaskRun
from tests.integration.helpers import run_flow, write_flow
from tests.integration.test_script_languages import build_image

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dbt_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    build_image(tmp_path_factory, "dbt")
    yield


# dbt's own Jinja goes through Kestra's templates first: `{% raw %}` keeps it for dbt.
PROJECT = """
dbt_project.yml: |
  name: tiny
  version: "1.0"
  config-version: 2
  profile: tiny
  models:
    tiny:
      +materialized: table
models/raw_orders.sql: |
  select 1 as id, 10 as amount union all select 2, 20 union all select 3, 30
models/big_orders.sql: |
  select * from {% raw %}{{ ref('raw_orders') }}{% endraw %} where amount > {{ inputs.floor }}
models/schema.yml: |
  version: 2
  models:
    - name: big_orders
      columns:
        - name: id
          tests: [not_null]
"""


def _flow(profile: str, extra: str = "") -> str:
    files = textwrap.indent(PROJECT.strip(), " " * 6)
    return f"""
id: dbt
namespace: tests.dbt
inputs:
  - id: floor
    type: INT
    defaults: 15
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    inputFiles:
{files}
    tasks:
      - id: build
        type: io.kestra.plugin.dbt.cli.DbtCLI
        containerImage: ghcr.io/kestra-io/dbt-duckdb:latest
        {extra}
        commands:
          - dbt deps
          - dbt build
        profiles: |
{textwrap.indent(textwrap.dedent(profile).strip(), " " * 10)}
"""


def _runs(execution: Execution, parent: TaskRun) -> dict[str, TaskRun]:
    return {t.task_id: t for t in execution.task_runs if t.parent_task_run_id == parent.id}


def _task(execution: Execution, task_id: str) -> TaskRun:
    return next(t for t in execution.task_runs if t.task_id == task_id)


DUCKDB = """
tiny:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: tiny.duckdb
      threads: 1
"""


def test_dbt_cli_builds_a_project_on_duckdb(
    dbt_image: None, home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """``dbt build`` runs both models and the test; run_results.json and manifest.json are
    outputFiles; each model and test is a task run under the dbt task, with its metrics;
    dbt's JSON log lines are logged as messages, its stats as counters."""
    execution, recorder = run_flow(home, write_flow(tmp_path, _flow(DUCKDB)))
    messages = recorder.messages()
    assert execution.state.current == State.SUCCESS, messages
    build = _task(execution, "build")
    assert sorted(build.outputs["outputFiles"]) == ["manifest.json", "run_results.json"]
    results = (
        home
        / "artifacts"
        / build.outputs["outputFiles"]["run_results.json"].removeprefix("kestra:///")
    )
    assert '"unique_id": "model.tiny.big_orders"' in results.read_text()
    models = _runs(execution, build)
    assert {"model.tiny.raw_orders", "model.tiny.big_orders"} <= set(models)
    tests = [name for name in models if name.startswith("test.tiny.not_null_big_orders_id")]
    assert len(tests) == 1, sorted(models)
    assert all(run.state.current == State.SUCCESS for run in models.values())
    raw = models["model.tiny.raw_orders"]
    assert raw.state.duration is not None and raw.state.duration >= 0
    assert any("model.tiny.big_orders => success" in m for m in recorder.messages())
    assert any("Completed successfully" in line for line in messages), messages
    counters = {m["name"]: m["value"] for m in build.metrics}
    assert counters.get("pass") == 3 and counters.get("error") == 0, counters


def test_a_failing_model_fails_the_task_and_its_model_run(
    dbt_image: None, home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """A model whose SQL fails: the dbt task is FAILED, the model's own run FAILED with dbt's
    message, its downstream test skipped; run_results.json is still an output."""
    flow = _flow(DUCKDB).replace("where amount > {{ inputs.floor }}", "where amount > nope")
    execution, recorder = run_flow(home, write_flow(tmp_path, flow))
    assert execution.state.current == State.FAILED, recorder.messages()
    build = _task(execution, "build")
    assert build.state.current == State.FAILED
    assert "run_results.json" in build.outputs["outputFiles"]
    models = _runs(execution, build)
    failed = models["model.tiny.big_orders"]
    assert failed.state.current == State.FAILED
    assert failed.reason and "nope" in failed.reason
    assert models["model.tiny.raw_orders"].state.current == State.SUCCESS


def test_the_older_dbt_build_task_and_postgres(
    dbt_image: None,
    home: Path,
    tmp_path: Path,
    postgres_url: str,
    executions_leave_nothing: None,
) -> None:
    """``dbt.cli.Build`` (its command built from properties, profiles under ``.profile``)
    builds the project on a real PostgreSQL reached from the container (host network)."""
    url = urlsplit(postgres_url)
    profile = f"""
    tiny:
      target: pg
      outputs:
        pg:
          type: postgres
          host: {url.hostname}
          port: {url.port}
          user: {url.username}
          password: "{url.password}"
          dbname: {url.path.lstrip("/")}
          schema: public
          threads: 1
    """
    flow = _flow(profile).replace(
        """        type: io.kestra.plugin.dbt.cli.DbtCLI
        containerImage: ghcr.io/kestra-io/dbt-duckdb:latest
        """,
        """        type: io.kestra.plugin.dbt.cli.Build
        taskRunner:
          type: io.kestra.plugin.scripts.runner.docker.Docker
          networkMode: host
        containerImage: ghcr.io/kestra-io/dbt-postgres:latest
        select: ["+big_orders"]
        """,
    )
    flow = flow.replace("        commands:\n          - dbt deps\n          - dbt build\n", "")
    execution, recorder = run_flow(home, write_flow(tmp_path, flow))
    assert execution.state.current == State.SUCCESS, recorder.messages()
    build = _task(execution, "build")
    models = _runs(execution, build)
    assert models["model.tiny.big_orders"].state.current == State.SUCCESS
    rows = {m["name"]: m["value"] for m in models["model.tiny.big_orders"].metrics}
    assert rows == {"rows.affected": 2}  # PostgreSQL reports the rows a table got
