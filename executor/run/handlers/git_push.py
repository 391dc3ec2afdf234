"""``io.kestra.plugin.git.Push``: commit files and push them to a branch, as Kestra's (deprecated)
Push does.

With ``url``, the branch is cloned into a private directory on the host (created from the default
branch when missing), every file it tracked is removed, and the commit holds what this task adds:
``inputFiles``, the namespace's files (``namespaceFiles``) and its flows (``flows``, on by default,
under ``_flows/<namespace>.<id>.yml``). Without ``url``, inside a WorkingDirectory, it commits in
the repository a Clone left in the workspace (``directory``), with the files the earlier children
wrote; the updated ``.git`` goes back into the workspace. ``addFilesPattern`` says what is added.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from executor.errors import ExecutorError
from executor.flow.host_access import check_git_url
from executor.flow.tasks_git import PushTask
from executor.masking import Masker
from executor.model import Level, State
from executor.paths import safe_relative
from executor.run.handlers.attempts import AttemptFn, AttemptResult, Handler, with_attempts
from executor.run.handlers.gitops import git_request, relative_dir, remaining
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt
from executor.store.files.artifacts import write_file
from executor.workspace.git import CloneRequest, check_url, git_env, run_git
from executor.workspace.git_commit import (
    Author,
    Checkout,
    check_out_branch,
    commit_and_push,
    commit_url,
    open_checkout,
)
from executor.workspace.git_workdir import copy_in, copy_out, sanitize_repository
from executor.workspace.globs import GlobSet


def _author(task: PushTask, job: HostJob) -> Author | None:
    if task.author is None or not task.author.email:
        return None
    name = job.text(task.author.name) if task.author.name else None
    name = name or (job.text(task.username) if task.username else None)
    return Author(name, job.text(task.author.email)) if name else None


def _input_files(task: PushTask, job: HostJob) -> dict[str, bytes]:
    """``inputFiles``: path -> content, a ``kestra:///`` URI read from the artifact store."""
    if task.inputFiles is None:
        return {}
    files: dict[str, bytes] = {}
    for name, value in job.mapping(task.inputFiles, "inputFiles").items():
        with job.content(value) as fh:
            files[name] = fh.read()
    return files


def _namespace_files(task: PushTask, job: HostJob) -> dict[str, bytes]:
    option = task.namespaceFiles
    if option is None or not job.flag(option.enabled, "namespaceFiles.enabled", True):
        return {}
    store = job.ctx.stores().namespaces
    files: dict[str, bytes] = {}
    chosen = GlobSet.of(
        [job.text(g).lstrip("/") for g in option.include],
        [job.text(g).lstrip("/") for g in option.exclude],
    )
    for namespace in option.namespaces or [job.ctx.loaded.flow.namespace]:
        if not store.exists(namespace):
            continue
        for path in store.paths(namespace):
            if chosen(path):
                rel = f"{namespace}/{path}" if option.folderPerNamespace else path
                files[rel] = store.read(namespace, path)
    return files


def _flow_files(task: PushTask, job: HostJob) -> dict[str, bytes]:
    option = task.flows
    if not job.flag(option.enabled, "flows.enabled", True):
        return {}
    repository = job.ctx.flow_repository()
    namespace = job.ctx.loaded.flow.namespace
    children = job.flag(option.childNamespaces, "flows.childNamespaces", True)
    base = relative_dir(job.text(option.gitDirectory), "flows.gitDirectory")
    return {
        str(base / f"{flow.namespace}.{flow.id}.yml"): flow.source.encode("utf-8")
        for flow in repository.flows(namespace, children)
    }


def _write(checkout: Checkout, files: dict[str, bytes]) -> list[str]:
    written = []
    for rel, data in sorted(files.items()):
        path = safe_relative(rel)
        write_file(checkout.path, path, [data])
        written.append(str(path))
    return written


def _push(task: PushTask, job: HostJob) -> AttemptResult:
    branch = job.text(task.branch).strip()
    if not branch:
        raise TaskInputError("'branch' is required")
    directory = relative_dir(job.text(task.directory), "directory") if task.directory else None
    files = {**_namespace_files(task, job), **_flow_files(task, job), **_input_files(task, job)}
    url = job.text(task.url).strip() if task.url else ""
    with tempfile.TemporaryDirectory(prefix="executor-push-") as tmp:
        if url:
            request = git_request(task, job, url)
            checkout = check_out_branch(
                request,
                branch,
                Path(tmp),
                timeout=remaining(job),
                log=lambda m: job.log(Level.INFO, m),
            )
            tracked = [p for p in checkout.git("ls-files", "-z").split("\0") if p]
            if tracked:
                checkout.git("rm", "-q", "-r", "--cached", "--", ".")
                for rel in tracked:
                    (checkout.path / rel).unlink(missing_ok=True)
            written = _write(checkout, files)
        else:
            checkout, written, workdir = _from_workspace(
                task, job, Path(tmp), branch, directory, files
            )
        for pattern in task.addFilesPattern:
            checkout.git("add", "-A", "--", job.text(pattern) or ".")
        origin = checkout.git("config", "--get", "remote.origin.url").strip()
        shown = commit_url(origin, branch, None)
        job.log(Level.INFO, f"Pushing to {job.ctx.secrets.mask(origin)}/tree/{branch}")
        commit = None
        if job.flag(task.dryRun, "dryRun"):
            job.log(Level.INFO, "Dry run: nothing is committed or pushed")
        else:
            checkout.timeout = remaining(job)
            commit = commit_and_push(checkout, job.text(task.commitMessage), _author(task, job))
            if commit is None:
                job.log(Level.INFO, "No changes to commit. Skipping push.")
            else:
                shown = commit_url(origin, branch, commit)
                job.log(Level.INFO, f"Pushed {commit[:12]} to {branch}")
        if not url:
            copy_in(*workdir, checkout.path, [".git", *written], str(directory or ""))
    outputs: dict[str, Any] = {"commitId": commit}
    if commit:
        outputs["commitURL"] = job.ctx.secrets.mask(shown or "")
    return AttemptResult(State.SUCCESS, outputs=outputs)


def _from_workspace(
    task: PushTask,
    job: HostJob,
    tmp: Path,
    branch: str,
    directory: PurePosixPath | None,
    files: dict[str, bytes],
) -> tuple[Checkout, list[str], tuple[Any, str]]:
    """The workspace's repository, on the host, on ``branch``, with ``files`` written."""
    scope = job.scope
    if scope.workdir is None:
        raise TaskInputError(
            "without 'url', git.Push commits in the repository a Clone left in its "
            "WorkingDirectory: give a 'url' or run it inside one"
        )
    container = scope.workdir.any_container()
    repo = tmp / "repo"
    refused = copy_out(scope.workdir, container, str(directory or "."), repo)
    if not (repo / ".git").is_dir():
        raise TaskInputError(
            f"there is no git repository in the workspace's {directory or 'root'}: "
            "clone one first (git.Clone) or give a 'url'"
        )
    request = CloneRequest(
        url="",
        username=job.text(task.username) or None if task.username else None,
        password=job.text(task.password) or None if task.password else None,
        private_key=job.text(task.privateKey) or None if task.privateKey else None,
        passphrase=job.text(task.passphrase) or None if task.passphrase else None,
        allow_file=job.ctx.settings.allow_host_options,
    )
    job.ctx.secrets.remember(*request.secrets())
    origin = sanitize_repository(repo, _origin_reader(tmp))
    if not origin:
        raise TaskInputError("the workspace's repository has no 'origin' remote to push to")
    if any(ord(c) < 0x20 for c in origin):
        raise TaskInputError(
            "the workspace's repository names an origin URL with control characters"
        )
    request = dataclasses.replace(request, url=check_url(origin))
    job.ctx.secrets.remember(*request.secrets())
    check_git_url(origin, request.allow_file, job.where)
    private = tmp / "git"
    private.mkdir()
    checkout = open_checkout(repo, request, private, timeout=remaining(job))
    extra = {"core.fileMode": "false", "core.hooksPath": os.devnull, "core.fsmonitor": "false"}
    count = int(checkout.env.get("GIT_CONFIG_COUNT", "0"))
    for key, value in extra.items():  # modes do not survive the copy; nothing of it may run
        checkout.env[f"GIT_CONFIG_KEY_{count}"], checkout.env[f"GIT_CONFIG_VALUE_{count}"] = (
            key,
            value,
        )
        count += 1
    checkout.env["GIT_CONFIG_COUNT"] = str(count)
    if refused:  # links and special files stay as git has them
        checkout.git("checkout", "--", *refused)
    if checkout.branch != branch:
        checkout.git("checkout", "-q", "-B", branch)
        checkout.branch = branch
    written = _write(checkout, files)
    return checkout, written, (scope.workdir, container)


def _origin_reader(tmp: Path) -> Callable[[Path], str]:
    """Reads ``remote.origin.url`` of a config file (``git config -f`` runs nothing it names)."""

    def read(config: Path) -> str:
        private = tmp / "read-config"
        private.mkdir(mode=0o700, exist_ok=True)
        env = git_env(CloneRequest(url=""), private)
        try:
            found = run_git(
                ["git", "config", "--no-includes", "-f", str(config), "--get", "remote.origin.url"],
                env,
                tmp,
                Masker(),
                30,
                "reading the repository's origin",
            )
        except ExecutorError:
            return ""
        return found.strip()

    return read


PUSH_ATTEMPT: AttemptFn[Any] = host_attempt(_push)


HANDLES: dict[type[Any], Handler[Any]] = {
    PushTask: with_attempts(PUSH_ATTEMPT),
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
