"""GitOps: ``git.Push``, ``PushFlows``, ``PushNamespaceFiles``, ``PushExecutionFiles``,
``SyncFlows``, ``SyncNamespaceFiles`` (Kestra's plugin-git names and defaults).

Every property that Kestra renders may be a template; booleans may be ``"{{ ... }}"`` too.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from executor.flow.base import Model, TaskBase

PUSH_TYPES = ("io.kestra.plugin.git.Push",)
PUSH_FLOWS_TYPES = ("io.kestra.plugin.git.PushFlows",)
PUSH_NAMESPACE_FILES_TYPES = ("io.kestra.plugin.git.PushNamespaceFiles",)
PUSH_EXECUTION_FILES_TYPES = ("io.kestra.plugin.git.PushExecutionFiles",)
SYNC_FLOWS_TYPES = ("io.kestra.plugin.git.SyncFlows",)
SYNC_NAMESPACE_FILES_TYPES = ("io.kestra.plugin.git.SyncNamespaceFiles",)
GIT_OPS_TYPES = (
    PUSH_TYPES
    + PUSH_FLOWS_TYPES
    + PUSH_NAMESPACE_FILES_TYPES
    + PUSH_EXECUTION_FILES_TYPES
    + SYNC_FLOWS_TYPES
    + SYNC_NAMESPACE_FILES_TYPES
)

Flag = bool | str
Globs = str | list[str]


class GitConnection(TaskBase):
    """Where the repository is and how to authenticate (Kestra's ``AbstractGitTask``)."""

    url: str | None = None
    username: str | None = None
    password: str | None = None
    privateKey: str | None = None
    passphrase: str | None = None
    cloneSubmodules: Flag = False
    # Accepted: git's own timeouts, proxy and CA settings apply here (the task's `timeout`
    # bounds every git call); a JGit configuration has no meaning for git's CLI.
    connectTimeout: int | str | None = None
    readTimeout: int | str | None = None
    trustedCaPemPath: str | None = None
    noProxy: Flag | None = None
    gitConfig: dict[str, Any] | None = None
    # Kestra's SDK connection to its own API: the flows here are read without one.
    kestraUrl: str | None = None
    auth: dict[str, Any] | None = None
    tenantId: str | None = None


class PushBase(GitConnection):
    """What the push tasks share (Kestra's ``AbstractPushTask``)."""

    url: str
    branch: str = "main"
    commitMessage: str | None = None
    dryRun: Flag = False
    authorEmail: str | None = None
    authorName: str | None = None
    delete: Flag = True


class PushFlowsTask(PushBase):
    type: Literal[PUSH_FLOWS_TYPES]  # type: ignore[valid-type]
    gitDirectory: str = "_flows"
    sourceNamespace: str | None = None  # default: the flow's namespace
    targetNamespace: str | None = None
    flows: Globs | None = None
    includeChildNamespaces: Flag = False


class PushNamespaceFilesTask(PushBase):
    type: Literal[PUSH_NAMESPACE_FILES_TYPES]  # type: ignore[valid-type]
    gitDirectory: str = "_files"
    namespace: str | None = None  # default: the flow's namespace
    files: Globs | None = None
    includeChildNamespaces: Flag = False
    errorOnMissing: Flag = False


class PushExecutionFilesTask(PushBase):
    type: Literal[PUSH_EXECUTION_FILES_TYPES]  # type: ignore[valid-type]
    gitDirectory: str = "_outputs"
    files: Globs | None = None
    filesMap: dict[str, str] | str | None = None
    errorOnMissing: Flag = False


class SyncBase(GitConnection):
    """What the sync tasks share (Kestra's ``AbstractSyncTask``)."""

    url: str
    branch: str = "main"
    dryRun: Flag = False
    delete: Flag = False


class SyncFlowsTask(SyncBase):
    type: Literal[SYNC_FLOWS_TYPES]  # type: ignore[valid-type]
    targetNamespace: str
    gitDirectory: str = "_flows"
    includeChildNamespaces: Flag = False
    ignoreInvalidFlows: Flag = False


class SyncNamespaceFilesTask(SyncBase):
    type: Literal[SYNC_NAMESPACE_FILES_TYPES]  # type: ignore[valid-type]
    namespace: str
    gitDirectory: str = "_files"


class PushFlowFiles(Model):
    """``git.Push``'s ``flows``: the namespace's flows written as YAML files (on by default)."""

    enabled: Flag = True
    childNamespaces: Flag = True
    gitDirectory: str = "_flows"


class PushNamespaceFiles(Model):
    """``git.Push``'s ``namespaceFiles``: the flow namespace's files, added at the root."""

    enabled: Flag = True
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    namespaces: list[str] | None = None
    folderPerNamespace: bool = False
    ifExists: Literal["OVERWRITE", "FAIL", "WARN", "IGNORE"] = "OVERWRITE"


class PushAuthor(Model):
    name: str | None = None
    email: str | None = None


class PushTask(GitConnection):
    """``git.Push`` (deprecated in Kestra, still in flows): commit the working directory's files.

    Inside a WorkingDirectory, without ``url``, it commits in the repository a Clone left there.
    """

    type: Literal[PUSH_TYPES]  # type: ignore[valid-type]
    branch: str
    commitMessage: str
    directory: str | None = None
    flows: PushFlowFiles = Field(default_factory=PushFlowFiles)
    namespaceFiles: PushNamespaceFiles | None = None
    inputFiles: dict[str, str] | str | None = None
    addFilesPattern: list[str] = Field(default_factory=lambda: ["."])
    author: PushAuthor | None = None
    dryRun: Flag = False
