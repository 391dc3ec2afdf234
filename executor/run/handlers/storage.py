"""``core.storage.*`` and ``core.namespace.*Files``: files of the artifact and namespace stores.

Every file is written through :func:`~executor.store.files.artifacts.write_file` (a temporary file
renamed into place), so a failure leaves no partial file. Every URI is read, and deleted
(``storage.Delete``), as the task's execution (:meth:`HostJob.artifacts`): its own files, its
parent execution's and its namespace's, nothing else; ``PurgeCurrentExecutionFiles`` removes
its own execution's.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

from executor.errors import ExecutorError, NotFoundError
from executor.flow.tasks_core import (
    ConcatTask,
    DeleteFilesTask,
    DownloadFilesTask,
    PurgeFilesTask,
    SizeTask,
    SplitTask,
    StorageDeleteTask,
    UploadFilesTask,
    WriteTask,
)
from executor.model import Level, State
from executor.run.handlers.attempts import AttemptResult, Handler, with_attempts
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt
from executor.store.api import NamespaceStore
from executor.store.files.artifacts import SCHEME, write_file
from executor.workspace.globs import GlobSet

_UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _extension(text: str) -> str:
    text = text.strip()
    if not re.fullmatch(r"\.?[A-Za-z0-9_-]{0,16}", text):
        raise TaskInputError(f"'extension' {text!r} is not a file extension such as .txt")
    return text if not text or text.startswith(".") else f".{text}"


def _uris(value: list[str] | str, job: HostJob, name: str) -> list[str]:
    """A list of URIs, given as a list or as JSON text (``{{ outputs.x.uris | toJson }}``)."""
    if isinstance(value, list):
        return [job.text(v).strip() for v in value]
    text = job.text(value).strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return [text]
    if isinstance(parsed, list):
        return [str(v) for v in parsed]
    if isinstance(parsed, dict):
        return [str(v) for v in parsed.values()]
    raise TaskInputError(f"'{name}' must be a list of {SCHEME}/ URIs")


def _open(job: HostJob, uri: str) -> IO[bytes]:
    try:
        return job.artifacts().open(uri)
    except ExecutorError as exc:
        raise TaskInputError(exc.message) from None


def _write(task: WriteTask, job: HostJob) -> AttemptResult:
    content = job.render(task.content)
    text = content if isinstance(content, str) else json.dumps(content)
    name = f"{task.id}{_extension(job.text(task.extension))}"
    prefix = job.store_prefix()
    job.artifacts().write(prefix, name, [text.encode()])
    return AttemptResult(State.SUCCESS, outputs={"uri": job.artifacts().uri(prefix, name)})


def _size(task: SizeTask, job: HostJob) -> AttemptResult:
    with _open(job, job.text(task.uri).strip()) as fh:
        fh.seek(0, 2)
        size = fh.tell()
    return AttemptResult(State.SUCCESS, outputs={"size": size})


def _concat(task: ConcatTask, job: HostJob) -> AttemptResult:
    uris = _uris(task.files, job, "files")
    separator = job.text(task.separator).encode() if task.separator is not None else b""
    name = f"{task.id}{_extension(job.text(task.extension))}"
    opened = [_open(job, uri) for uri in uris]  # every file exists before anything is written

    def chunks() -> Iterator[bytes]:
        for fh in opened:
            with fh:
                while block := fh.read(1024 * 1024):
                    yield block
            if separator:
                yield separator

    prefix = job.store_prefix()
    try:
        job.artifacts().write(prefix, name, chunks())
    finally:
        for fh in opened:
            fh.close()
    return AttemptResult(State.SUCCESS, outputs={"uri": job.artifacts().uri(prefix, name)})


def _split(task: SplitTask, job: HostJob) -> AttemptResult:
    """Rows (separated by ``separator``) into parts; a row is never cut in two."""
    given = [
        n for n in ("bytes", "partitions", "rows", "regexPattern") if getattr(task, n) is not None
    ]
    if len(given) != 1:
        raise TaskInputError("give exactly one of 'bytes', 'partitions', 'rows', 'regexPattern'")
    source = job.text(task.from_).strip()
    separator = job.text(task.separator).encode() or b"\n"
    suffix = PurePosixPath(source).suffix
    with _open(job, source) as fh:
        rows = fh.read().split(separator)
    if rows and rows[-1] == b"":
        rows.pop()
    groups = _groups(task, job, rows, separator)
    prefix = job.store_prefix()
    uris = []
    for index, group in enumerate(groups):
        name = f"{task.id}-{index}{suffix}"
        job.artifacts().write(prefix, name, [b"".join(r + separator for r in group)])
        uris.append(job.artifacts().uri(prefix, name))
    return AttemptResult(State.SUCCESS, outputs={"uris": uris})


def _groups(task: SplitTask, job: HostJob, rows: list[bytes], separator: bytes) -> list[Any]:
    if task.rows is not None:
        size = _positive(job.integer(task.rows, "rows"), "rows")
        return [rows[i : i + size] for i in range(0, len(rows), size)]
    if task.partitions is not None:
        count = _positive(job.integer(task.partitions, "partitions"), "partitions")
        return [rows[i::count] for i in range(count) if rows[i::count]]
    if task.bytes is not None:
        limit = _byte_size(job.text(task.bytes))
        parts: list[list[bytes]] = [[]]
        used = 0
        for row in rows:
            if parts[-1] and used + len(row) + len(separator) > limit:
                parts.append([])
                used = 0
            parts[-1].append(row)
            used += len(row) + len(separator)
        return [p for p in parts if p]
    try:
        pattern = re.compile(job.text(task.regexPattern).encode())
    except re.error as exc:
        raise TaskInputError(f"'regexPattern' is not a regular expression: {exc}") from None
    grouped: dict[bytes, list[bytes]] = {}
    for row in rows:
        found = pattern.search(row)
        key = (found.group(1) if found and found.groups() else None) or b""
        grouped.setdefault(key, []).append(row)
    return list(grouped.values())


def _positive(value: int | None, name: str) -> int:
    if value is None or value < 1:
        raise TaskInputError(f"'{name}' must be at least 1")
    return value


def _byte_size(text: str) -> int:
    found = re.fullmatch(r"\s*(\d+)\s*([KMGT]?B?)\s*", text.upper())
    if not found or int(found[1]) < 1:
        raise TaskInputError(f"'bytes' {text!r} is not a size such as 10MB")
    return int(found[1]) * _UNITS[found[2] if found[2] in _UNITS else found[2] + "B"]


def _delete(task: StorageDeleteTask, job: HostJob) -> AttemptResult:
    uri = job.text(task.uri).strip()
    try:
        deleted = job.artifacts().delete(uri)
    except ExecutorError as exc:
        raise TaskInputError(exc.message) from None
    if not deleted and job.flag(task.errorOnMissing, "errorOnMissing"):
        raise TaskInputError(f"no file at {uri} and 'errorOnMissing' is true")
    return AttemptResult(State.SUCCESS, outputs={"uri": uri, "deleted": deleted})


def _purge(task: PurgeFilesTask, job: HostJob) -> AttemptResult:
    flow, execution = job.ctx.loaded.flow, job.ctx.execution
    uris = job.artifacts().purge(flow.namespace, flow.id, execution.id)
    job.log(Level.INFO, f"removed {len(uris)} file(s) of this execution")
    return AttemptResult(State.SUCCESS, outputs={"uris": uris})


# ----- namespace files


def _namespace_store(job: HostJob) -> NamespaceStore:
    return job.ctx.stores().namespaces


def _globs(value: list[str] | str, job: HostJob) -> GlobSet:
    patterns = [job.text(p).strip() for p in (value if isinstance(value, list) else [value])]
    # Kestra writes namespace paths from the root ("/scripts/**"): the same file here.
    return GlobSet.of([p.lstrip("/") for p in patterns if p])


def _existing(store: NamespaceStore, namespace: str) -> set[str]:
    return set(store.paths(namespace)) if store.exists(namespace) else set()


def _upload(task: UploadFilesTask, job: HostJob) -> AttemptResult:
    namespace = job.text(task.namespace).strip()
    files = job.render(task.files)
    destination = job.text(task.destination).strip().strip("/")
    if isinstance(files, str):
        files = [files]
    if isinstance(files, dict):
        wanted = {str(k).lstrip("/"): str(v) for k, v in files.items()}
    else:
        wanted = {}
        for uri in files:
            if not str(uri).startswith(SCHEME + "/"):
                raise TaskInputError(
                    f"'{uri}' is not a {SCHEME}/ URI; globs over a task's working directory "
                    "are not supported here (give the files' URIs, e.g. outputFiles)"
                )
            name = PurePosixPath(str(uri)).name
            wanted[f"{destination}/{name}".lstrip("/")] = str(uri)
    store = _namespace_store(job)
    existing = _existing(store, namespace)
    if task.conflict == "ERROR":
        clash = sorted(set(wanted) & existing)
        if clash:
            raise TaskInputError(f"namespace {namespace} already has {', '.join(clash)}")
    if task.conflict == "SKIP":
        wanted = {k: v for k, v in wanted.items() if k not in existing}
    with tempfile.TemporaryDirectory(prefix="upload-") as staging:
        for path, uri in wanted.items():
            with _open(job, uri) as fh:
                write_file(Path(staging), PurePosixPath(path), fh)
        if wanted:
            store.push(namespace, Path(staging))
    job.log(Level.INFO, f"uploaded {len(wanted)} file(s) to namespace {namespace}")
    return AttemptResult(State.SUCCESS, outputs={"files": {f"/{k}": v for k, v in wanted.items()}})


def _download(task: DownloadFilesTask, job: HostJob) -> AttemptResult:
    namespace = job.text(task.namespace).strip()
    store = _namespace_store(job)
    globs = _globs(task.files, job)
    try:
        chosen = [path for path in store.paths(namespace) if globs(path)]
    except NotFoundError as exc:
        raise TaskInputError(exc.message) from None
    prefix = job.store_prefix()
    artifacts = job.artifacts()
    downloaded = {}
    for path in chosen:
        downloaded[f"/{path}"] = artifacts.write(prefix, path, [store.read(namespace, path)])
    job.log(Level.INFO, f"downloaded {len(downloaded)} file(s) of namespace {namespace}")
    return AttemptResult(State.SUCCESS, outputs={"files": downloaded})


def _delete_files(task: DeleteFilesTask, job: HostJob) -> AttemptResult:
    namespace = job.text(task.namespace).strip()
    store = _namespace_store(job)
    if not store.exists(namespace):
        job.log(Level.INFO, f"namespace {namespace} has no files: nothing to delete")
        return AttemptResult(State.SUCCESS)
    globs = _globs(task.files, job)
    chosen = [path for path in store.paths(namespace) if globs(path)]
    for path in chosen:
        store.remove(namespace, path)
    if task.deleteParentFolder:
        _remove_empty_parents(store, namespace, chosen)
    job.log(Level.INFO, f"deleted {len(chosen)} file(s) of namespace {namespace}")
    return AttemptResult(State.SUCCESS)


def _remove_empty_parents(store: NamespaceStore, namespace: str, paths: list[str]) -> None:
    remaining = {PurePosixPath(path).parent for path in store.paths(namespace)}
    for parent in sorted(
        {PurePosixPath(p).parent for p in paths}, key=lambda p: len(p.parts), reverse=True
    ):
        if str(parent) != "." and not any(r == parent or parent in r.parents for r in remaining):
            with contextlib.suppress(NotFoundError):
                store.remove(namespace, str(parent))


write_attempt = host_attempt(_write)
size_attempt = host_attempt(_size)
concat_attempt = host_attempt(_concat)
split_attempt = host_attempt(_split)
storage_delete_attempt = host_attempt(_delete)
purge_attempt = host_attempt(_purge)
upload_files_attempt = host_attempt(_upload)
download_files_attempt = host_attempt(_download)
delete_files_attempt = host_attempt(_delete_files)


HANDLES: dict[type[Any], Handler[Any]] = {
    WriteTask: with_attempts(write_attempt),
    SizeTask: with_attempts(size_attempt),
    ConcatTask: with_attempts(concat_attempt),
    SplitTask: with_attempts(split_attempt),
    StorageDeleteTask: with_attempts(storage_delete_attempt),
    PurgeFilesTask: with_attempts(purge_attempt),
    UploadFilesTask: with_attempts(upload_files_attempt),
    DownloadFilesTask: with_attempts(download_files_attempt),
    DeleteFilesTask: with_attempts(delete_files_attempt),
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
