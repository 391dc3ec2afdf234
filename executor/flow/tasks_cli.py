"""CLI tasks: a tool's commands in its image (dbt, Terraform, Ansible, SQLMesh, AWS, Modal, Spark,
Trivy).

Each is Kestra's commands shape (``commands``, ``beforeCommands``, ``env``, ``containerImage``,
``inputFiles``, ``outputFiles``, ``namespaceFiles``...) with the tool's default image; the
commands run as written, as one exec in the WorkingDirectory's container for that image.
What a tool's task adds (dbt's profiles and run results, the AWS credentials as the variables
the CLI reads) is below; :mod:`executor.run.handlers.cli` acts on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import Field, model_validator

from executor.flow.base import Model
from executor.flow.tasks_exec import ExecScript, needs_one_body

TERRAFORM_TYPES = ("io.kestra.plugin.terraform.cli.TerraformCLI",)
ANSIBLE_TYPES = ("io.kestra.plugin.ansible.cli.AnsibleCLI",)
SQLMESH_TYPES = ("io.kestra.plugin.sqlmesh.cli.SQLMeshCLI",)
MODAL_TYPES = ("io.kestra.plugin.modal.cli.ModalCLI",)
SPARK_TYPES = ("io.kestra.plugin.spark.SparkCLI",)
AWS_CLI_TYPES = ("io.kestra.plugin.aws.cli.AwsCLI",)
TRIVY_TYPES = ("io.kestra.plugin.trivy.cli.TrivyCLI",)
DBT_CLI_TYPES = ("io.kestra.plugin.dbt.cli.DbtCLI",)

# The dbt subcommand each of the older dbt tasks runs (Kestra's AbstractDbt subclasses).
DBT_COMMANDS = {
    "Build": "build",
    "Run": "run",
    "Test": "test",
    "Seed": "seed",
    "Snapshot": "snapshot",
    "Compile": "compile",
    "List": "list",
    "Deps": "deps",
    "Freshness": "source freshness",
}
DBT_RUN_KINDS = ("Build", "Run", "Test", "Seed", "Snapshot", "Compile", "List")
DBT_TASK_TYPES = tuple(f"io.kestra.plugin.dbt.cli.{kind}" for kind in DBT_COMMANDS)

DEFAULT_IMAGES = {
    **dict.fromkeys(TERRAFORM_TYPES, "hashicorp/terraform"),
    **dict.fromkeys(ANSIBLE_TYPES, "cytopia/ansible:latest-tools"),
    **dict.fromkeys(SQLMESH_TYPES, "ghcr.io/kestra-io/sqlmesh"),
    **dict.fromkeys(MODAL_TYPES, "ghcr.io/kestra-io/modal"),
    **dict.fromkeys(SPARK_TYPES, "bitnami/spark"),
    **dict.fromkeys(AWS_CLI_TYPES, "amazon/aws-cli"),
    **dict.fromkeys(TRIVY_TYPES, "ghcr.io/aquasecurity/trivy"),
}
DBT_IMAGE = "ghcr.io/kestra-io/dbt"
DBT_FUSION_IMAGE = "ghcr.io/kestra-io/dbt-fusion"


class CliTask(ExecScript):
    """A tool's commands in its image: ``commands`` required, the tool's default image."""

    @model_validator(mode="after")
    def _body(self) -> CliTask:
        needs_one_body(self, is_script=False)
        return self

    @property
    def default_image(self) -> str | None:
        return DEFAULT_IMAGES.get(self.type)


class TerraformTask(CliTask):
    """``TerraformCLI``: terraform commands in ``hashicorp/terraform``."""

    type: Literal[TERRAFORM_TYPES]  # type: ignore[valid-type]


class SqlMeshTask(CliTask):
    """``SQLMeshCLI``: sqlmesh commands in Kestra's sqlmesh image."""

    type: Literal[SQLMESH_TYPES]  # type: ignore[valid-type]


class TrivyTask(CliTask):
    """``TrivyCLI``: trivy commands (``trivy image ...``, ``trivy config ...``) in Aqua's image."""

    type: Literal[TRIVY_TYPES]  # type: ignore[valid-type]


class SparkTask(CliTask):
    """``SparkCLI``: spark-submit and friends; Spark logs everything on stderr, read as INFO."""

    type: Literal[SPARK_TYPES]  # type: ignore[valid-type]


class AnsibleTask(CliTask):
    """``AnsibleCLI``: ansible commands under bash; ``ansibleConfig`` becomes ``ansible.cfg``."""

    type: Literal[ANSIBLE_TYPES]  # type: ignore[valid-type]
    ansibleConfig: str | None = None
    outputLogFile: bool = False

    @property
    def command_line(self) -> list[str]:
        if "interpreter" in self.model_fields_set:
            return super().command_line
        return ["/bin/bash", "-c"]

    def extra_env(self, workspace: str) -> dict[str, str]:
        return {"ANSIBLE_LOG_PATH": f"{workspace}/log"} if self.outputLogFile else {}


class ModalTask(CliTask):
    """``ModalCLI``: modal commands; the token as ``MODAL_TOKEN_ID``/``MODAL_TOKEN_SECRET``."""

    type: Literal[MODAL_TYPES]  # type: ignore[valid-type]
    modalTokenId: str | None = None
    modalTokenSecret: str | None = None

    @property
    def credential_env(self) -> dict[str, str]:
        """Variables the CLI reads, from the task's properties (rendered when it runs)."""
        return _present(MODAL_TOKEN_ID=self.modalTokenId, MODAL_TOKEN_SECRET=self.modalTokenSecret)


class AwsCliTask(CliTask):
    """``AwsCLI``: aws commands; the connection properties as the variables the CLI reads."""

    type: Literal[AWS_CLI_TYPES]  # type: ignore[valid-type]
    accessKeyId: str | None = None
    secretKeyId: str | None = None
    sessionToken: str | None = None
    region: str | None = None
    endpointOverride: str | None = None
    outputFormat: Literal["JSON", "TEXT", "TABLE", "YAML"] = "JSON"
    # STS role assumption needs an AWS call before the CLI starts: accepted, see the README
    stsRoleArn: str | None = None
    stsRoleSessionName: str | None = None
    stsRoleExternalId: str | None = None
    stsRoleSessionDuration: str | None = None
    stsEndpointOverride: str | None = None
    compatibilityMode: bool | None = None
    forcePathStyle: bool | None = None

    @property
    def credential_env(self) -> dict[str, str]:
        return {
            **_present(
                AWS_ACCESS_KEY_ID=self.accessKeyId,
                AWS_SECRET_ACCESS_KEY=self.secretKeyId,
                AWS_DEFAULT_REGION=self.region,
                AWS_SESSION_TOKEN=self.sessionToken,
                AWS_ENDPOINT_URL=self.endpointOverride,
            ),
            "AWS_DEFAULT_OUTPUT": self.outputFormat.lower(),
        }


class KvManifest(Model):
    """dbt's ``storeManifest``/``loadManifest``: a KV key of a namespace."""

    key: str
    namespace: str


class AlertWebhook(Model):
    """dbt's ``alertWebhook``: accepted, not sent (see the README)."""

    url: str
    level: Literal["WARN", "ERROR"] = "WARN"


class DbtTask(ExecScript):
    """What ``DbtCLI`` and the older ``dbt.cli.Build``/``Run``/``Test``/... share."""

    profiles: str | None = None
    projectDir: str | None = None
    parseRunResults: bool = True

    @property
    def default_image(self) -> str | None:
        return DBT_IMAGE

    def extra_env(self, workspace: str) -> dict[str, str]:
        return {"PYTHONUNBUFFERED": "true", "PIP_ROOT_USER_ACTION": "ignore"}

    @property
    def profiles_path(self) -> str:
        """Where ``profiles`` is written, relative to the workspace."""
        return "profiles.yml"

    @property
    def json_logs(self) -> bool:
        """Whether dbt writes JSON log lines (read for their level and stats)."""
        return True


class DbtCliTask(DbtTask):
    """``DbtCLI``: dbt commands; ``--project-dir``, ``--log-format`` and ``--log-path`` added
    to each ``dbt`` line as Kestra does; ``target/run_results.json`` read afterwards."""

    type: Literal[DBT_CLI_TYPES]  # type: ignore[valid-type]
    logFormat: Literal["JSON", "TEXT", "DEBUG", "NONE"] = "JSON"
    engine: Literal["CORE", "FUSION"] = "CORE"
    storeManifest: KvManifest | None = None
    loadManifest: KvManifest | None = None
    alertWebhook: AlertWebhook | None = None

    @model_validator(mode="after")
    def _body(self) -> DbtCliTask:
        needs_one_body(self, is_script=False)
        return self

    @property
    def default_image(self) -> str | None:
        return DBT_FUSION_IMAGE if self.engine == "FUSION" else DBT_IMAGE

    @property
    def json_logs(self) -> bool:
        return self.logFormat == "JSON"

    def dbt_commands(self, commands: list[str], project_dir: str | None) -> list[str]:
        """The commands as Kestra runs them: each ``dbt ...`` line gets ``--project-dir``
        (with ``projectDir``), ``--log-format`` (unless ``NONE``) and ``--log-path logs``."""
        found = []
        for command in commands:
            if command.startswith("dbt"):
                if project_dir is not None and "--project-dir" not in command:
                    command += f" --project-dir {project_dir}"
                if self.logFormat != "NONE" and "--log-format" not in command:
                    command += f" --log-format {self.logFormat.lower()}"
                if "--log-path" not in command:
                    command += " --log-path logs"
            found.append(command)
        return found


class DbtCommandTask(DbtTask):
    """The older ``dbt.cli.Build``, ``Run``, ``Test``, ``Seed``, ``Snapshot``, ``Compile``,
    ``List``, ``Deps`` and ``Freshness``: one dbt command built from properties."""

    type: Literal[DBT_TASK_TYPES]  # type: ignore[valid-type]
    failFast: bool = False  # Kestra's default here: dbt's own --fail-fast
    warnError: bool = False
    debug: bool = False
    dbtPath: str | None = None
    thread: int | None = Field(default=None, ge=1)
    fullRefresh: bool = False
    target: str | None = None
    selector: str | None = None
    select: list[str] | None = None
    exclude: list[str] | None = None

    @model_validator(mode="after")
    def _run_options(self) -> DbtCommandTask:
        if self.commands is not None:
            raise ValueError(f"{self.kind} builds its dbt command itself: it takes no 'commands'")
        run_only = ("thread", "fullRefresh", "target", "selector", "select", "exclude")
        given = [name for name in run_only if name in self.model_fields_set]
        if given and self.kind not in DBT_RUN_KINDS:
            raise ValueError(f"{self.kind} takes no {', '.join(given)}")
        return self

    @property
    def kind(self) -> str:
        return str(self.type).rsplit(".", 1)[1]

    @property
    def profiles_path(self) -> str:
        return ".profile/profiles.yml"

    @property
    def fail_fast_lines(self) -> list[str]:
        return ["set -e"]  # failFast is dbt's --fail-fast here

    def dbt_command(self, workspace: str, render: Callable[[str], str]) -> str:
        """The one command line, as Kestra's AbstractDbt builds it (values rendered)."""
        dbt = render(self.dbtPath) if self.dbtPath else '"$_dbt"'
        parts = [dbt, "--log-format json"]
        parts += ["--debug"] if self.debug else []
        parts += ["--fail-fast"] if self.failFast else []
        parts += ["--warn-error"] if self.warnError else []
        parts += [DBT_COMMANDS[self.kind], f"--profiles-dir {workspace}/.profile"]
        if self.kind in DBT_RUN_KINDS:
            parts += [f"--threads {self.thread}"] if self.thread else []
            parts += ["--full-refresh"] if self.fullRefresh else []
            parts += [f"--target {render(self.target)}"] if self.target else []
            parts += [f"--selector {render(self.selector)}"] if self.selector else []
            if self.select:
                parts.append("--select " + " ".join(render(s) for s in self.select))
            if self.exclude:
                parts.append("--exclude " + " ".join(render(s) for s in self.exclude))
        project = f"{workspace}/{render(self.projectDir)}" if self.projectDir else workspace
        parts.append(f"--project-dir {project}")
        return " ".join(parts)

    @property
    def command_list(self) -> list[str]:
        # Kestra's default dbtPath is ./bin/dbt (a venv made by the old dbt.cli.Setup); an
        # image's own dbt is used when there is none.
        if self.dbtPath:
            return []
        return ['_dbt=./bin/dbt; [ -x "$_dbt" ] || _dbt=dbt']


def _present(**values: str | None) -> dict[str, str]:
    return {name: value for name, value in values.items() if value is not None}


AnyCliTask = (
    TerraformTask | AnsibleTask | SqlMeshTask | ModalTask | SparkTask | AwsCliTask | TrivyTask
)
AnyDbtTask = DbtCliTask | DbtCommandTask

CLI_TYPES = (
    TERRAFORM_TYPES
    + ANSIBLE_TYPES
    + SQLMESH_TYPES
    + MODAL_TYPES
    + SPARK_TYPES
    + AWS_CLI_TYPES
    + TRIVY_TYPES
    + DBT_CLI_TYPES
    + DBT_TASK_TYPES
)
