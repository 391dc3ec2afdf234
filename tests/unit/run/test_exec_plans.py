"""The command line each script language and CLI task runs, as Kestra's plugins build it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from executor.flow.model import AnyTask
from executor.flow.tasks_cli import AwsCliTask, DbtCliTask, DbtCommandTask, ModalTask
from executor.flow.tasks_exec import ExecScript
from executor.run.script import ScriptPlan, plan_script

TASK: TypeAdapter[Any] = TypeAdapter(AnyTask)
RECORD = "/.executor/runs/r-1"


def _task(kind: str, **props: Any) -> ExecScript:
    task = TASK.validate_python({"id": "t", "type": kind, **props})
    assert isinstance(task, ExecScript)
    return task


def _plan(task: ExecScript) -> ScriptPlan:
    return plan_script(
        task,
        commands=task.command_list,
        before=list(task.beforeCommands),
        script=task.script_text,
        env=dict(task.env),
        record_dir=RECORD,
    )


FILE = "/workspace/.executor-r-1"


@pytest.mark.parametrize(
    ("language", "image", "line"),
    [
        ("node", "node", f"node {FILE}.js"),
        ("r", "r-base", f"Rscript {FILE}.R"),
        ("julia", "julia", f"julia {FILE}.jl"),
        ("ruby", "ruby", f"ruby {FILE}.rb"),
        ("go", "golang", f"go run {FILE}.go"),
        ("perl", "perl", f"perl {FILE}.pl"),
        ("php", "php", f"php {FILE}.php"),
        ("lua", "nickblah/lua", f"lua {FILE}.lua"),
        ("deno", "denoland/deno", f"deno run {FILE}.ts"),
        ("bun", "oven/bun", f"bun run {FILE}.ts"),
    ],
)
def test_a_script_is_written_to_a_file_and_run(language: str, image: str, line: str) -> None:
    """A language's Script writes ``script`` into the workspace (as Kestra: node finds the
    workspace's node_modules, go its module) with its extension, runs it and removes it when
    the exec ends; its image is Kestra's default; beforeCommands run first, after ``set -e``."""
    task = _task(
        f"io.kestra.plugin.scripts.{language}.Script",
        script="say hello",
        beforeCommands=["prepare"],
    )
    plan = _plan(task)
    assert task.default_image == image
    (path,) = plan.files
    assert plan.argv == ("/bin/sh", "-c", f"set -e\nprepare\ntrap 'rm -f {path}' EXIT\n{line}")
    assert plan.files[path] == b"say hello" and line.endswith(path)


def test_powershell_runs_under_pwsh_and_stops_on_errors() -> None:
    """PowerShell: Kestra's pwsh interpreter, ``$ErrorActionPreference`` for failFast."""
    script = _plan(_task("io.kestra.plugin.scripts.powershell.Script", script="Write-Output 1"))
    assert script.argv == (
        "pwsh",
        "-NoProfile",
        "-NonInteractive",
        "-Command",
        f"$ErrorActionPreference = 'Stop'\n& {RECORD}/script.ps1",
    )
    commands = _plan(
        _task("io.kestra.plugin.scripts.powershell.Commands", commands=["./a.ps1"], failFast=False)
    )
    assert commands.argv[-1] == "./a.ps1"


def test_jbang_uses_its_extension_and_quiet() -> None:
    """JBang's Script: ``extension`` names the file, ``quiet`` (default) adds ``--quiet``."""
    kotlin = _plan(
        _task("io.kestra.plugin.scripts.jbang.Script", script="fun main(){}", extension=".kt")
    )
    assert kotlin.argv[2].endswith(f"jbang --quiet {FILE}.kt")
    loud = _plan(_task("io.kestra.plugin.scripts.jbang.Script", script="x", quiet=False))
    assert loud.argv[2].endswith(f"jbang {FILE}.java")


def test_commands_run_as_written_in_the_language_image() -> None:
    """A language's Commands runs its commands under /bin/sh in the language's image."""
    task = _task("io.kestra.plugin.scripts.node.Commands", commands=["node main.js"])
    assert _plan(task).argv == ("/bin/sh", "-c", "set -e\nnode main.js")
    assert task.default_image == "node"


def test_a_script_without_script_is_refused() -> None:
    """A Script needs ``script``; a Commands task has no such property."""
    with pytest.raises(ValueError, match="Script needs 'script'"):
        _task("io.kestra.plugin.scripts.r.Script", commands=["x"])
    with pytest.raises(ValueError, match="script\n  Extra inputs are not permitted"):
        _task("io.kestra.plugin.scripts.r.Commands", commands=["x"], script="y")


def test_dbt_cli_adds_project_dir_log_format_and_log_path_to_dbt_lines() -> None:
    """DbtCLI adds Kestra's flags to each ``dbt`` line, never twice, and not to other lines."""
    task = _task("io.kestra.plugin.dbt.cli.DbtCLI", commands=["dbt build"], projectDir="dbt")
    assert isinstance(task, DbtCliTask)
    lines = ["dbt deps", "dbt build --log-format text", "echo done"]
    assert task.dbt_commands(lines, "dbt") == [
        "dbt deps --project-dir dbt --log-format json --log-path logs",
        "dbt build --log-format text --project-dir dbt --log-path logs",
        "echo done",
    ]
    assert task.default_image == "ghcr.io/kestra-io/dbt"
    fusion = _task("io.kestra.plugin.dbt.cli.DbtCLI", commands=["dbt build"], engine="FUSION")
    assert fusion.default_image == "ghcr.io/kestra-io/dbt-fusion"
    quiet = _task("io.kestra.plugin.dbt.cli.DbtCLI", commands=["dbt run"], logFormat="NONE")
    assert isinstance(quiet, DbtCliTask)
    assert quiet.dbt_commands(["dbt run"], None) == ["dbt run --log-path logs"]


def test_the_older_dbt_tasks_build_their_command() -> None:
    """dbt.cli.Build & co. build one dbt command from their properties, as AbstractDbt does."""
    task = _task(
        "io.kestra.plugin.dbt.cli.Build",
        dbtPath="/usr/local/bin/dbt",
        failFast=True,
        thread=4,
        fullRefresh=True,
        target="prod",
        select=["a", "b"],
        exclude=["c"],
        projectDir="proj",
    )
    assert isinstance(task, DbtCommandTask)
    assert task.dbt_command("/workspace", str) == (
        "/usr/local/bin/dbt --log-format json --fail-fast build --profiles-dir "
        "/workspace/.profile --threads 4 --full-refresh --target prod --select a b "
        "--exclude c --project-dir /workspace/proj"
    )
    deps = _task("io.kestra.plugin.dbt.cli.Deps")
    assert isinstance(deps, DbtCommandTask)
    assert deps.dbt_command("/workspace", str) == (
        '"$_dbt" --log-format json deps --profiles-dir /workspace/.profile --project-dir /workspace'
    )
    assert deps.command_list == ['_dbt=./bin/dbt; [ -x "$_dbt" ] || _dbt=dbt']
    with pytest.raises(ValueError, match="Deps takes no target"):
        _task("io.kestra.plugin.dbt.cli.Deps", target="x")


def test_cli_credentials_become_the_variables_the_tools_read() -> None:
    """AwsCLI's keys and region, and ModalCLI's token, are the CLIs' own variables."""
    aws = _task(
        "io.kestra.plugin.aws.cli.AwsCLI",
        commands=["aws s3 ls"],
        accessKeyId="AK",
        secretKeyId="SK",
        region="eu-west-1",
    )
    assert isinstance(aws, AwsCliTask)
    assert aws.credential_env == {
        "AWS_ACCESS_KEY_ID": "AK",
        "AWS_SECRET_ACCESS_KEY": "SK",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_DEFAULT_OUTPUT": "json",
    }
    assert aws.default_image == "amazon/aws-cli"
    modal = _task(
        "io.kestra.plugin.modal.cli.ModalCLI", commands=["modal run x.py"], modalTokenId="i"
    )
    assert isinstance(modal, ModalTask)
    assert modal.credential_env == {"MODAL_TOKEN_ID": "i"}


@pytest.mark.parametrize(
    ("kind", "image", "shell"),
    [
        ("io.kestra.plugin.terraform.cli.TerraformCLI", "hashicorp/terraform", "/bin/sh"),
        ("io.kestra.plugin.ansible.cli.AnsibleCLI", "cytopia/ansible:latest-tools", "/bin/bash"),
        ("io.kestra.plugin.sqlmesh.cli.SQLMeshCLI", "ghcr.io/kestra-io/sqlmesh", "/bin/sh"),
        ("io.kestra.plugin.spark.SparkCLI", "bitnami/spark", "/bin/sh"),
        ("io.kestra.plugin.trivy.cli.TrivyCLI", "ghcr.io/aquasecurity/trivy", "/bin/sh"),
    ],
)
def test_cli_tasks_run_their_commands_in_the_tool_image(kind: str, image: str, shell: str) -> None:
    """A CLI task runs beforeCommands then commands, as written, in the tool's image."""
    task = _task(kind, beforeCommands=["init"], commands=["run one", "run two"])
    assert task.default_image == image
    assert _plan(task).argv == (shell, "-c", "set -e\ninit\nrun one\nrun two")
