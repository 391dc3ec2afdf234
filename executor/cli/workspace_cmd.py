"""``executor namespace``, ``executor cache`` and ``executor storage``: the workspace's stores.

Results go to stdout, problems are raised as ExecutorError subclasses for the main CLI to report
as one line and an exit code.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from executor.store.files.artifacts import LocalArtifactStore
    from executor.store.files.namespaces import LocalNamespaceStore

from executor.cli.context import AppContext, pass_app
from executor.errors import HostFileError, UsageError


def _size(size: float) -> str:
    from executor.workspace.service import human_size

    return human_size(size)


# ----- namespace files


@click.group("namespace")
def namespace() -> None:
    """Namespace files: what `namespaceFiles` seeds into a workspace."""


@namespace.command("push")
@click.argument("name")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--to",
    "prefix",
    default="",
    metavar="PATH",
    help="Put the files under this directory of the namespace.",
)
@pass_app
def push_cmd(app: AppContext, name: str, directory: Path, prefix: str) -> None:
    """Copy the files under DIRECTORY into namespace NAME (same paths are replaced)."""
    try:
        result = _store(app).push(name, directory, prefix)
    except OSError as exc:
        raise HostFileError.of(exc, f"namespace push {name}") from None
    for skipped in result.skipped:
        click.echo(f"skipped {skipped}", err=True)
    click.echo(f"pushed {result.copied} file(s), {_size(result.bytes)} to {name}")


@namespace.command("ls")
@click.argument("name", required=False)
@pass_app
def ls_cmd(app: AppContext, name: str | None) -> None:
    """List the files of namespace NAME (or the namespaces, when no NAME is given)."""
    store = _store(app)
    if name is None:
        for known in store.namespaces():
            click.echo(known)
        return
    for found in store.files(name):
        click.echo(f"{found.size:>10}  {found.path}")


@namespace.command("rm")
@click.argument("name")
@click.argument("path", required=False)
@pass_app
def rm_cmd(app: AppContext, name: str, path: str | None) -> None:
    """Remove PATH (a file or directory) from namespace NAME, or the whole namespace."""
    count = _store(app).remove(name, path)
    click.echo(f"removed {count} file(s) from {name}" + (f" ({path})" if path else ""))


# ----- cache


@click.group("cache")
def cache() -> None:
    """WorkingDirectory caches kept between executions."""


@cache.command("ls")
@pass_app
def cache_ls(app: AppContext) -> None:
    """List cache entries: namespace/flow/task, files, size and age."""
    entries = app.stores().cache.entries()
    click.echo(f"{'KEY':<48} {'FILES':>6} {'SIZE':>9}  SAVED")
    now = time.time()
    for entry in entries:
        click.echo(
            f"{entry.key!s:<48} {len(entry.paths):>6} {_size(entry.size):>9}  "
            f"{entry.age(now):.0f}s ago"
        )


@cache.command("clear")
@click.argument("namespace_name", metavar="[NAMESPACE", required=False)
@click.argument("flow_id", metavar="[FLOW", required=False)
@click.argument("task_id", metavar="[TASK]]]", required=False)
@pass_app
def cache_clear(
    app: AppContext, namespace_name: str | None, flow_id: str | None, task_id: str | None
) -> None:
    """Remove cache entries: all of them, or those of a namespace, a flow or one task."""
    removed = app.stores().cache.clear(namespace_name, flow_id, task_id)
    for entry in removed:
        click.echo(f"removed {entry.key}")
    click.echo(f"removed {len(removed)} cache entr{'y' if len(removed) == 1 else 'ies'}")


# ----- artifacts


@click.group("storage")
def storage() -> None:
    """Files the executions stored (outputFiles, LocalFiles outputs)."""


@storage.command("get")
@click.argument("uri")
@click.argument("dest", required=False, type=click.Path(path_type=Path))
@pass_app
def storage_get(app: AppContext, uri: str, dest: Path | None) -> None:
    """Copy the file at URI (kestra:///...) to DEST, or to stdout when DEST is '-' or omitted.

    A DEST that is a directory receives the file under its own name.
    """
    store = app.stores().artifacts
    try:
        written = _copy_out(store, uri, dest)
    except OSError as exc:
        raise HostFileError.of(exc, f"storage get {uri}") from None
    if written is not None:
        click.echo(f"{uri} -> {written}", err=True)


def _copy_out(store: LocalArtifactStore, uri: str, dest: Path | None) -> Path | None:
    from executor.store.files.artifacts import write_file

    with store.open(uri) as fh:
        if dest is None or str(dest) == "-":
            shutil.copyfileobj(fh, sys.stdout.buffer, 1024 * 1024)
            sys.stdout.buffer.flush()
            return None
        if dest.is_dir():
            dest = dest / uri.rsplit("/", 1)[-1]
        if not dest.name:
            raise UsageError(f"{dest} names no file")
        return write_file(dest.parent.resolve(), PurePosixPath(dest.name), fh)


def _store(app: AppContext) -> LocalNamespaceStore:
    """The namespace store; it keeps the versions that running workspaces mount."""
    return app.stores().namespaces
