"""Namespace files: upload (a ``.zip`` is extracted), download, list, stats, mkdir, move, delete.

Paths are Kestra's (``/dir/file.txt``); the leading slash is dropped and the rest must stay
inside the namespace (no ``..``, no link out), as everywhere the store writes. A zip may hold
``maxZipMembers`` entries at most, and a path that would be both a file and a directory (``x``
and ``x/y``) is a 422; a write costs what it changes (see ``store.files.namespaces``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from executor.errors import NotFoundError, UsageError
from executor.paths import safe_relative
from executor.server.api.deps import config_of, stores_of
from executor.store.files.namespaces import LocalNamespaceStore

router = APIRouter(tags=["namespace files"])


def _store(request: Request) -> LocalNamespaceStore:
    return stores_of(request).namespaces  # it keeps the versions running workspaces mount


def _rel(path: str | None) -> str:
    """A Kestra path without its leading slash (``""`` for the root), checked."""
    text = (path or "").lstrip("/").rstrip("/")
    return str(safe_relative(text)) if text else ""


def _attributes(target: Path) -> dict[str, Any]:
    """Kestra's ``FileAttributes``."""
    st = target.stat()
    return {
        "fileName": target.name,
        "type": "Directory" if target.is_dir() else "File",
        "size": 0 if target.is_dir() else st.st_size,
        "lastModifiedTime": int(st.st_mtime * 1000),
        "creationTime": int(st.st_ctime * 1000),
        "metadata": {},
    }


@router.get("/namespaces/{namespace}/files")
def download(request: Request, namespace: str, path: str) -> FileResponse:
    """One file's bytes."""
    target = _store(request).locate(namespace, _rel(path))
    if not target.is_file():
        raise NotFoundError(f"{path!r} in namespace {namespace!r} is not a file")
    return FileResponse(target, media_type="application/octet-stream", filename=target.name)


@router.get("/namespaces/{namespace}/files/stats")
def stats(request: Request, namespace: str, path: str | None = None) -> dict[str, Any]:
    """A file's or directory's attributes."""
    return _attributes(_store(request).locate(namespace, _rel(path)))


@router.get("/namespaces/{namespace}/files/directory")
def list_directory(
    request: Request, namespace: str, path: str | None = None
) -> list[dict[str, Any]]:
    """What a directory holds (the root when no path); an empty namespace lists nothing."""
    rel = _rel(path)
    try:
        target = _store(request).locate(namespace, rel)
    except NotFoundError:
        if rel:
            raise
        return []
    if not target.is_dir():
        raise UsageError(f"{path!r} is not a directory")
    return [
        _attributes(child)
        for child in sorted(target.iterdir())
        if not child.is_symlink() and not child.name.endswith(".part")
    ]


@router.post("/namespaces/{namespace}/files/directory", status_code=200)
def make_directory(request: Request, namespace: str, path: str) -> Response:
    """Create a directory."""
    _store(request).make_directory(namespace, _rel(path))
    return Response(status_code=200)


@router.post("/namespaces/{namespace}/files", status_code=200)
async def upload(request: Request, namespace: str, path: str) -> Response:
    """Write the multipart part ``fileContent`` at ``path``; a ``.zip`` is extracted there."""
    form = await request.form(max_files=1, max_fields=10)
    try:
        part = form.get("fileContent")
        if not isinstance(part, UploadFile):
            raise UsageError("send the file as the multipart part 'fileContent'")
        store, rel = _store(request), _rel(path)
        if not rel:
            raise UsageError("give the file's path (?path=/dir/name)")
        if (part.filename or "").lower().endswith(".zip"):
            config = config_of(request)
            zip_dir = str(Path(rel).parent) if rel.lower().endswith(".zip") else rel
            await run_in_threadpool(
                store.put_zip,
                namespace,
                "" if zip_dir == "." else zip_dir,
                part.file,
                config.max_body_bytes * 10,
                config.limits.max_zip_members,
            )
        else:
            await run_in_threadpool(store.put, namespace, rel, part.file)
    finally:
        await form.close()
    return Response(status_code=200)


@router.put("/namespaces/{namespace}/files", status_code=200)
def move(
    request: Request, namespace: str, from_: str | None = None, to: str | None = None
) -> Response:
    """Move (rename) a file or directory: ``?from=/a&to=/b``."""
    moved_from = request.query_params.get("from", from_)
    if not moved_from or not to:
        raise UsageError("give ?from=/old/path&to=/new/path")
    _store(request).move(namespace, _rel(moved_from), _rel(to))
    return Response(status_code=200)


@router.delete("/namespaces/{namespace}/files", status_code=204)
def delete(request: Request, namespace: str, path: str) -> Response:
    """Delete a file or a directory with everything in it."""
    rel = _rel(path)
    if not rel:
        raise UsageError("give the path to delete (?path=/dir/name)")
    _store(request).remove(namespace, rel)
    return Response(status_code=204)
