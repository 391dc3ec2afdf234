"""GitOps tasks on the host: push flows, namespace files and execution files to a branch, and
sync flows and namespace files from one.

git runs on the host as for a Clone (``workspace.git``): credentials by askpass only, every
message masked, ``file://`` refused where host options are. Flows are read and written through
the run's ``FlowRepository`` (the ``--flows`` directory under ``executor run``, the server's store
in server mode); namespace files through the run's namespace store (on a worker, the
server's, through its API).

A sync checks every flow it would write before it writes any, so a flow in Git that does not
validate fails the task with nothing changed.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from executor.errors import ExecutorError, UnsafePathError
from executor.flow.host_access import check_git_url
from executor.flow.tasks_git import (
    GitConnection,
    PushBase,
    PushExecutionFilesTask,
    PushFlowsTask,
    PushNamespaceFilesTask,
    SyncFlowsTask,
    SyncNamespaceFilesTask,
)
from executor.flow_repository import FlowRepository, KeptFlow
from executor.model import Level, State
from executor.paths import safe_relative
from executor.run import ion
from executor.run.handlers.attempts import AttemptFn, AttemptResult, Handler, with_attempts
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt
from executor.store.files.artifacts import SCHEME, write_file
from executor.workspace.git import CloneRequest
from executor.workspace.git_commit import (
    Author,
    Checkout,
    check_out_branch,
    commit_and_push,
    commit_url,
    diff_rows,
    remove,
    stage,
)
from executor.workspace.globs import GlobSet

_NAMESPACE_LINE = re.compile(r"(?m)^namespace:[ \t]*(.*)$")
_REVISION_LINE = re.compile(r"(?m)^revision:\s*\d+\n?")
_MAX_SYNCED_FILE = 64 * 1024 * 1024


# ----- shared: the remote, the deadline, paths, globs


def git_request(task: GitConnection, job: HostJob, url: str | None = None) -> CloneRequest:
    """The rendered remote of a git task, its secrets remembered for masking."""
    rendered = (url if url is not None else job.text(task.url)).strip()
    if not rendered:
        raise TaskInputError("'url' is required")
    request = CloneRequest(
        url=rendered,
        submodules=job.flag(task.cloneSubmodules, "cloneSubmodules"),
        username=job.text(task.username) or None if task.username else None,
        password=job.text(task.password) or None if task.password else None,
        private_key=job.text(task.privateKey) or None if task.privateKey else None,
        passphrase=job.text(task.passphrase) or None if task.passphrase else None,
        allow_file=job.ctx.settings.allow_host_options,
    )
    job.ctx.secrets.remember(*request.secrets())
    check_git_url(request.url, request.allow_file, job.where)
    return request


def remaining(job: HostJob) -> float | None:
    """Seconds left before the task's ``timeout`` (what each git call may take)."""
    deadline = job.deadline()
    if deadline is None:
        return None
    import time

    left = deadline - time.monotonic()
    if left <= 0:
        raise TaskInputError(f"timed out after {job.task.timeout}")
    return left


def relative_dir(text: str, name: str) -> PurePosixPath:
    """A directory inside the repository (``.`` or empty: its root)."""
    cleaned = text.strip().strip("/")
    if cleaned in ("", "."):
        return PurePosixPath()
    try:
        return safe_relative(cleaned)
    except UnsafePathError:
        raise TaskInputError(f"'{name}' must stay inside the repository, got {text!r}") from None


def globs_of(value: str | list[str] | None, job: HostJob) -> list[str] | None:
    """Kestra's glob property: a list, one glob, or the JSON text of a list."""
    if value is None:
        return None
    if isinstance(value, list):
        return [job.text(v) for v in value]
    text = job.text(value).strip()
    if text.startswith("["):
        try:
            found = json.loads(text)
        except ValueError:
            return [text]
        if isinstance(found, list):
            return [str(v) for v in found]
    return [text]


def _matches(globs: list[str] | None, *candidates: str) -> bool:
    """Whether a glob chooses any of the candidates (Java's glob syntax: ``**`` crosses ``/``)."""
    if not globs:
        return True
    try:
        chosen = GlobSet.of(g.lstrip("/") for g in globs)
    except UnsafePathError as exc:
        raise TaskInputError(exc.message) from None
    return any(
        chosen(c.lstrip("/")) or fnmatch.fnmatchcase(c, g) for g in globs for c in candidates
    )


def store_rows(job: HostJob, rows: Iterable[dict[str, Any]], name: str = "diff.ion") -> str:
    """The rows as an Ion file of this task run in the artifact store; its URI."""
    prefix = job.store_prefix()
    return job.artifacts().write(prefix, name, ion.write_rows(rows))


def diff_uri(job: HostJob, rows: list[dict[str, Any]]) -> str:
    for row in rows:
        job.log(Level.DEBUG, ion.dumps(row))
    return store_rows(job, rows)


# ----- pushing files to a branch


Content = dict[str, bytes]  # path inside the git directory -> bytes


def _author(task: PushBase, job: HostJob) -> Author | None:
    name = job.text(task.authorName) if task.authorName else None
    if not name and task.username:
        name = job.text(task.username)
    email = job.text(task.authorEmail) if task.authorEmail else None
    return Author(name, email) if name and email else None


def _outdated(
    checkout: Checkout, base: PurePosixPath, keep: set[str], globs: list[str] | None
) -> list[str]:
    """Tracked files under ``base`` that the instance no longer has (and the globs choose)."""
    root = checkout.path / base
    if not root.is_dir():
        return []
    gone: list[str] = []
    for line in checkout.git("ls-files", "-z", "--", str(base) or ".").split("\0"):
        if not line:
            continue
        in_base = str(PurePosixPath(line).relative_to(base)) if base.parts else line
        name = PurePosixPath(line).name
        if in_base in keep or name == ".kestraignore":
            continue
        if _matches(globs, line, in_base, name, PurePosixPath(name).stem):
            gone.append(line)
    return gone


def push_content(
    task: PushBase, job: HostJob, content: Content, globs: list[str] | None, output: str
) -> AttemptResult:
    """Write ``content`` under ``gitDirectory`` on the branch, drop what is gone (``delete``),
    commit and push; outputs ``commitId``, ``commitURL`` and the diff file under ``output``."""
    request = git_request(task, job)
    branch = job.text(task.branch).strip() or "main"
    base = relative_dir(job.text(task.gitDirectory), "gitDirectory")  # type: ignore[attr-defined]
    dry_run = job.flag(task.dryRun, "dryRun")
    outputs: dict[str, Any] = {"commitId": None, "commitURL": None}
    if not content:
        job.log(Level.INFO, "No content to push - skipping Git operations.")
        return AttemptResult(State.SUCCESS, outputs={**outputs, output: None})
    with tempfile.TemporaryDirectory(prefix="executor-push-") as tmp:
        checkout = check_out_branch(
            request, branch, Path(tmp), timeout=remaining(job), log=lambda m: job.log(Level.INFO, m)
        )
        written: list[str] = []
        for rel, data in sorted(content.items()):
            path = base / safe_relative(rel)
            write_file(checkout.path, path, [data])
            written.append(str(path))
        if job.flag(task.delete, "delete"):
            outdated = _outdated(checkout, base, set(content), globs)
            if outdated:
                remove(checkout, outdated)
        stage(checkout, written)
        shown = commit_url(request.url, branch, None)
        if dry_run:
            job.log(
                Level.INFO,
                f"Dry run — no changes will be pushed to {_web(request.url)} until dryRun is false",
            )
            rows = diff_rows(checkout, staged=True)
        else:
            checkout.timeout = remaining(job)
            message = job.text(task.commitMessage) if task.commitMessage else None
            commit = commit_and_push(
                checkout, message or _default_message(task, job), _author(task, job)
            )
            if commit is None:
                job.log(Level.INFO, "No changes to commit. Skipping push.")
                rows = []
            else:
                shown = commit_url(request.url, branch, commit)
                job.log(Level.INFO, f"Pushed to {shown}")
                rows = diff_rows(checkout, staged=False)
                outputs = {"commitId": commit, "commitURL": shown}
    return AttemptResult(State.SUCCESS, outputs={**outputs, output: diff_uri(job, rows)})


def _web(url: str) -> str:
    from executor.workspace.git import shown_url
    from executor.workspace.git_commit import http_url

    return shown_url(http_url(url))


def _default_message(task: PushBase, job: HostJob) -> str:
    if isinstance(task, PushFlowsTask):
        return f"Add flows from {_source_namespace(task, job)} namespace"
    if isinstance(task, PushNamespaceFilesTask):
        return f"Add files from {_files_namespace(task, job)} namespace"
    return f"Add files from execution {job.ctx.execution.id}"


def _source_namespace(task: PushFlowsTask, job: HostJob) -> str:
    given = job.text(task.sourceNamespace).strip() if task.sourceNamespace else ""
    return given or job.ctx.loaded.flow.namespace


def _files_namespace(task: PushNamespaceFilesTask, job: HostJob) -> str:
    given = job.text(task.namespace).strip() if task.namespace else ""
    return given or job.ctx.loaded.flow.namespace


def exported_flows(
    repository: FlowRepository,
    namespace: str,
    children: bool,
    globs: list[str] | None,
    target: str | None,
) -> Content:
    """The flows of ``namespace`` as files: ``<child path>/<id>.yml``, the namespace rewritten to
    ``target`` and the server's ``revision`` line dropped, as Kestra exports them."""
    content: Content = {}
    for flow in repository.flows(namespace, children):
        if globs and not any(fnmatch.fnmatchcase(flow.id, g) for g in globs):
            continue
        below = flow.namespace[len(namespace) + 1 :] if flow.namespace != namespace else ""
        rel = PurePosixPath(*below.split(".")) / f"{flow.id}.yml" if below else f"{flow.id}.yml"
        source = _REVISION_LINE.sub("", flow.source)
        if target and target != namespace:
            source = re.sub(
                rf"(?m)^(\s*namespace:\s*){re.escape(namespace)}", rf"\g<1>{target}", source
            )
        content[str(rel)] = source.encode("utf-8")
    return content


def _push_flows(task: PushFlowsTask, job: HostJob) -> AttemptResult:
    repository = job.ctx.flow_repository()
    namespace = _source_namespace(task, job)
    target = job.text(task.targetNamespace).strip() if task.targetNamespace else None
    globs = globs_of(task.flows, job)
    children = job.flag(task.includeChildNamespaces, "includeChildNamespaces")
    content = exported_flows(repository, namespace, children, globs, target)
    job.log(Level.INFO, f"{len(content)} flow(s) of {namespace} from {repository.described}")
    return push_content(task, job, content, globs, "flows")


def _namespace_content(
    job: HostJob, namespace: str, children: bool, globs: list[str] | None
) -> Content:
    store = job.ctx.stores().namespaces
    chosen = [namespace]
    if children:
        chosen += [n for n in store.namespaces() if n.startswith(namespace + ".")]
    content: Content = {}
    for name in chosen:
        if not store.exists(name):
            continue
        for path in store.paths(name):
            if globs and not _matches(globs, path, "/" + path):
                continue
            rel = path if name == namespace else f"{name}/{path}"
            content[rel] = store.read(name, path)
    return content


def _push_namespace_files(task: PushNamespaceFilesTask, job: HostJob) -> AttemptResult:
    namespace = _files_namespace(task, job)
    globs = globs_of(task.files, job)
    children = job.flag(task.includeChildNamespaces, "includeChildNamespaces")
    content = _namespace_content(job, namespace, children, globs)
    if not content and job.flag(task.errorOnMissing, "errorOnMissing"):
        raise TaskInputError("No Namespace Files matched the provided 'files' parameter to commit.")
    job.log(Level.INFO, f"{len(content)} file(s) of namespace {namespace}")
    stripped = [g.lstrip("/") for g in globs] if globs else None
    return push_content(task, job, content, stripped, "files")


def _output_files(job: HostJob) -> dict[str, str]:
    """Every ``outputFiles`` entry of the tasks that ran before (name -> URI)."""
    found: dict[str, str] = {}

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            files = value.get("outputFiles")
            if isinstance(files, dict):
                found.update({str(k): str(v) for k, v in files.items() if isinstance(v, str)})
            for key, inner in value.items():
                if key != "outputFiles":
                    visit(inner)

    visit(job.ctx.outputs())
    return found


def _push_execution_files(task: PushExecutionFilesTask, job: HostJob) -> AttemptResult:
    globs = globs_of(task.files, job)
    if task.filesMap is not None:
        wanted = {k: str(v) for k, v in job.mapping(task.filesMap, "filesMap").items()}
    else:
        wanted = _output_files(job)
        if globs:
            wanted = {k: v for k, v in wanted.items() if _matches(globs, k, PurePosixPath(k).name)}
        elif wanted:
            job.log(
                Level.INFO,
                "No files or filesMap provided - pushing all execution output files instead.",
            )
    content: Content = {}
    for name, uri in wanted.items():
        if not uri.startswith(f"{SCHEME}/"):
            raise TaskInputError(f"{uri!r} is not a file of the artifact store (kestra:///...)")
        with job.content(uri) as fh:
            content[name] = fh.read()
    if not content and job.flag(task.errorOnMissing, "errorOnMissing"):
        raise TaskInputError(f"No files matched the provided patterns: {globs}")
    return push_content(task, job, content, globs, "files")


# ----- syncing from a branch


def _synced_tree(
    task: SyncFlowsTask | SyncNamespaceFilesTask, job: HostJob, tmp: Path
) -> tuple[Path, str]:
    """The branch checked out under ``tmp``; the git directory in it, and its rendered name."""
    from executor.workspace.git import clone

    request = git_request(task, job)
    branch = job.text(task.branch).strip() or "main"
    request = dataclasses.replace(request, branch=branch)
    result = clone(request, tmp, timeout=remaining(job), log=lambda m: job.log(Level.INFO, m))
    shown = job.text(task.gitDirectory).strip()
    base = result.path / relative_dir(shown, "gitDirectory")
    if not base.exists():
        raise TaskInputError(
            f"The directory '{shown}' was not found in the git repository. "
            f"Verify if the path exists in the specified branch '{branch}'."
        )
    if not base.is_dir() or base.is_symlink():
        raise TaskInputError(f"The path '{shown}' exists but is not a directory.")
    return base, shown.strip("/")


def _files_below(base: Path, recursive: bool) -> list[PurePosixPath]:
    """Regular files under ``base`` (not ``.git``, no links followed), by path."""
    found: list[PurePosixPath] = []
    for path in sorted(base.rglob("*") if recursive else base.iterdir()):
        rel = PurePosixPath(path.relative_to(base).as_posix())
        if ".git" in rel.parts or path.is_symlink() or not path.is_file():
            continue
        if path.stat().st_size > _MAX_SYNCED_FILE:
            raise TaskInputError(f"{rel} is larger than {_MAX_SYNCED_FILE} bytes")
        found.append(rel)
    return found


def _sync_flows(task: SyncFlowsTask, job: HostJob) -> AttemptResult:
    repository = job.ctx.flow_repository()
    namespace = job.text(task.targetNamespace).strip()
    children = job.flag(task.includeChildNamespaces, "includeChildNamespaces")
    dry_run = job.flag(task.dryRun, "dryRun")
    flow = job.ctx.loaded.flow
    planned: list[tuple[str, KeptFlow]] = []
    with tempfile.TemporaryDirectory(prefix="executor-sync-") as tmp:
        base, shown = _synced_tree(task, job, Path(tmp))
        for rel in _files_below(base, children):
            if rel.suffix not in (".yml", ".yaml"):
                continue
            target = ".".join([namespace, *rel.parent.parts])
            text = (base / rel).read_text(encoding="utf-8", errors="replace")
            source = _NAMESPACE_LINE.sub(f"namespace: {target}", text, count=1).rstrip()
            git_path = f"{shown}/{rel}" if shown else str(rel)
            try:
                loaded = repository.check(source, git_path)
            except ExecutorError as exc:
                raise TaskInputError(f"{git_path} is not a valid flow: {exc}") from None
            planned.append((git_path, KeptFlow(loaded.flow.namespace, loaded.flow.id, source)))
    before = {(f.namespace, f.id): f for f in repository.flows(namespace, children)}
    rows: list[dict[str, Any]] = []
    synced: set[tuple[str, str]] = set()
    for git_path, wanted in planned:
        key = (wanted.namespace, wanted.id)
        synced.add(key)
        old = before.get(key)
        if dry_run:
            changed = old is None or old.source != wanted.source
            kept = KeptFlow(
                wanted.namespace, wanted.id, wanted.source, old.revision if old else None
            )
        else:
            kept, changed = repository.save(wanted.namespace, wanted.id, wanted.source)
        state = "ADDED" if old is None else ("UPDATED" if changed else "UNCHANGED")
        rows.append(_flow_row(git_path, state, kept))
    if job.flag(task.delete, "delete"):
        for key, old in sorted(before.items()):
            if key in synced or key == (flow.namespace, flow.id):  # never the running flow
                continue
            if not dry_run:
                repository.delete(*key)
            rows.append(_flow_row(None, "DELETED", old))
    rows.sort(key=lambda r: (r["gitPath"] is not None, r["gitPath"] or ""))
    counts = {s: sum(r["syncState"] == s for r in rows) for s in ("ADDED", "UPDATED", "DELETED")}
    job.log(
        Level.INFO,
        f"{'dry run: ' if dry_run else ''}{counts['ADDED']} added, {counts['UPDATED']} updated, "
        f"{counts['DELETED']} deleted in {repository.described}",
    )
    return AttemptResult(State.SUCCESS, outputs={"flows": diff_uri(job, rows)})


def _flow_row(git_path: str | None, state: str, flow: KeptFlow) -> dict[str, Any]:
    row: dict[str, Any] = {"gitPath": git_path, "syncState": state}
    row.update(flowId=flow.id, namespace=flow.namespace, revision=flow.revision)
    return row


def _sync_namespace_files(task: SyncNamespaceFilesTask, job: HostJob) -> AttemptResult:
    store = job.ctx.stores().namespaces
    namespace = job.text(task.namespace).strip()
    dry_run = job.flag(task.dryRun, "dryRun")
    delete = job.flag(task.delete, "delete")
    existing = set(store.paths(namespace)) if store.exists(namespace) else set()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="executor-sync-") as tmp:
        base, shown = _synced_tree(task, job, Path(tmp))
        files = _files_below(base, True)
        for rel in files:
            state = "OVERWRITTEN" if str(rel) in existing else "ADDED"
            git_path = f"{shown}/{rel}" if shown else str(rel)
            rows.append({"gitPath": git_path, "syncState": state, "kestraPath": f"/{rel}"})
        if delete:
            kept = {str(r) for r in files}
            rows += [
                {"gitPath": None, "syncState": "DELETED", "kestraPath": f"/{p}"}
                for p in sorted(existing - kept)
            ]
        if not dry_run and (files or delete):
            staged = Path(tmp) / "staged"
            for rel in files:
                with (base / rel).open("rb") as fh:
                    write_file(staged, PurePosixPath(rel), fh)
            staged.mkdir(exist_ok=True)
            store.push(namespace, staged, replace=delete)  # one new version, all at once
    rows.sort(key=lambda r: (r["gitPath"] is not None, r["gitPath"] or ""))
    job.log(
        Level.INFO,
        f"{'dry run: ' if dry_run else ''}{len(rows)} namespace file change(s) in {namespace}",
    )
    return AttemptResult(State.SUCCESS, outputs={"files": diff_uri(job, rows)})


GITOPS_ATTEMPTS: dict[type[Any], AttemptFn[Any]] = {
    PushFlowsTask: host_attempt(_push_flows),
    PushNamespaceFilesTask: host_attempt(_push_namespace_files),
    PushExecutionFilesTask: host_attempt(_push_execution_files),
    SyncFlowsTask: host_attempt(_sync_flows),
    SyncNamespaceFilesTask: host_attempt(_sync_namespace_files),
}


HANDLES: dict[type[Any], Handler[Any]] = {
    **{kind: with_attempts(attempt) for kind, attempt in GITOPS_ATTEMPTS.items()},
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
