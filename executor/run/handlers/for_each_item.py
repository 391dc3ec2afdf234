"""ForEachItem: a stored file cut into batches, one execution of another flow per batch.

As in Kestra, the task runs as three task runs under its own, each with Kestra's id and outputs:

- ``<id>_split`` cuts ``items`` into batch files as a stream (:mod:`executor.run.batches`) and
  lists their URIs in ``splits.txt`` (``outputs.<id>_split.splits``);
- ``<id>_items`` starts one child per batch through the Subflow machinery, ``{{ taskrun.items }}``
  the batch's URI and ``{{ taskrun.iteration }}`` its 0-based index; waited for, the children run
  ``foreach_item_concurrency`` at a time, and each child's flow outputs are kept as one Ion line
  (``<iteration>/outputs.ion``); its outputs are ``numberOfBatches`` and ``iterations`` (children
  by state, kept current while they run);
- ``<id>_merge`` joins those lines, in batch order, into ``outputs.ion``
  (``outputs.<id>_merge.subflowOutputs``).

The ForEachItem's own task run carries the three results too (``numberOfBatches``,
``iterations``, ``subflowOutputs``), so ``outputs.<id>.iterations`` works as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from typing import Any

from executor.errors import ExecutorError, FlowError
from executor.flow import model as m
from executor.flow.model import ForEachItemTask
from executor.model import Level, State, TaskRun
from executor.run.batches import BatchError, BatchRule, split_batches
from executor.run.block import close_block
from executor.run.cancel import CancelScope
from executor.run.concurrency import Unit, run_units
from executor.run.context import RunContext, SubflowRequest
from executor.run.handlers.attempts import Handler
from executor.run.handlers.host import HostJob, TaskInputError
from executor.run.handlers.subflow import child_depth, child_labels
from executor.run.ion import write_rows
from executor.run.scope import Scope
from executor.store.api import ArtifactStore
from executor.store.files.artifacts import SCHEME

_KIND = "io.kestra.plugin.core.flow.ForEachItem"
SPLIT, ITEMS, MERGE = m.FOR_EACH_ITEM_PARTS
_PART_TYPES = {
    SPLIT: f"{_KIND}$ForEachItemSplit",
    ITEMS: f"{_KIND}$ForEachItemExecutable",
    MERGE: f"{_KIND}$ForEachItemMergeOutputs",
}
_TERMINAL = (State.SUCCESS, State.FAILED, State.KILLED, State.WARNING, State.CANCELLED)
_UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


class _PartFailed(Exception):
    """One of the three parts ended badly; the message says why (already logged)."""

    def __init__(self, state: State, reason: str | None) -> None:
        super().__init__(reason or state.value)
        self.state = state
        self.reason = reason


def run_for_each_item(task: ForEachItemTask, run: TaskRun, scope: Scope, ctx: RunContext) -> State:
    if ctx.hooks is None:
        raise FlowError("a ForEachItem needs a flows directory to look the flow up in")
    inner = scope.under(run)
    try:
        splits, count = _run_split(task, run, inner, ctx)
        subflow_outputs = _run_items(task, run, inner, ctx, splits, count)
        _run_merge(task, run, inner, ctx, subflow_outputs)
        state = State.SUCCESS
    except _PartFailed as failed:
        state = failed.state
        if failed.reason:
            run.reason = ctx.secrets.mask(failed.reason)
    return close_block(state, task.errors, task.finally_, inner, ctx)


# ----- the three parts


def _part(task: ForEachItemTask, suffix: str, parent: TaskRun, ctx: RunContext) -> TaskRun:
    """Record and start one of the ForEachItem's own task runs."""
    part = TaskRun(task.id + suffix, _PART_TYPES[suffix], parent.id)
    ctx.add_task_run(part)
    ctx.set_state(part, State.RUNNING)
    return part


def _end(
    part: TaskRun,
    state: State,
    outputs: dict[str, Any],
    scope: Scope,
    ctx: RunContext,
    reason: str | None = None,
) -> None:
    with ctx.lock:
        part.outputs.update(outputs)
    ctx.set_outputs(part, scope, dict(part.outputs))
    ctx.set_state(part, state, reason)


def _fail(part: TaskRun, state: State, message: str, ctx: RunContext) -> _PartFailed:
    ctx.log(part, Level.ERROR, message)
    ctx.set_state(part, state, message)
    return _PartFailed(state, f"{part.task_id}: {message}")


def _publish(run: TaskRun, scope: Scope, ctx: RunContext, outputs: dict[str, Any]) -> None:
    """The results on the ForEachItem's own task run, as ``outputs.<id>``."""
    parent_scope = Scope(scope.cancel, ancestors=scope.ancestors[:-1])
    with ctx.lock:
        run.outputs.update(outputs)
    ctx.changed(run)
    ctx.set_outputs(run, parent_scope, dict(run.outputs))


def _run_split(
    task: ForEachItemTask, run: TaskRun, scope: Scope, ctx: RunContext
) -> tuple[str, int]:
    """``<id>_split``: the batches stored, their URIs listed; (the list's URI, how many)."""
    part = _part(task, SPLIT, run, ctx)
    job = HostJob(task, part, scope, ctx)
    try:
        source = job.text(task.items).strip()
        if not source.startswith(f"{SCHEME}/"):
            raise TaskInputError(
                f"'items' must be a {SCHEME}/ URI of a stored file (an output or a FILE input),"
                f" got {source[:120]!r}"
            )
        rule = _rule(task, job)
        artifacts = job.artifacts()
        prefix = _prefix(artifacts, part, ctx)
        suffix = PurePosixPath(source).suffix
        count = 0

        def store(index: int, pieces: Iterable[bytes]) -> str:
            if scope.cancel.cancelled:
                raise _Stopped
            return artifacts.write(prefix, f"batch-{index}{suffix}", pieces)

        def listed() -> Iterator[bytes]:
            nonlocal count
            with artifacts.open(source) as fh:
                for uri in split_batches(fh, rule, store):
                    count += 1
                    yield f"{uri}\n".encode()

        splits = artifacts.write(prefix, "splits.txt", listed())
    except _Stopped:
        stopped = scope.cancel.state or State.KILLED
        raise _fail(part, stopped, "stopped while splitting", ctx) from None
    except (TaskInputError, BatchError) as exc:
        raise _fail(part, State.FAILED, str(exc), ctx) from None
    except ExecutorError as exc:
        raise _fail(part, State.FAILED, exc.message, ctx) from None
    ctx.log(part, Level.INFO, f"{count} batch(es) of {source}")
    _end(part, State.SUCCESS, {"splits": splits}, scope, ctx)
    _publish(run, scope, ctx, {"numberOfBatches": count})
    return splits, count


class _Stopped(Exception):
    """The run was cancelled while its file was being split."""


def _rule(task: ForEachItemTask, job: HostJob) -> BatchRule:
    batch = task.batch
    separator = job.text(batch.separator)
    regex = None
    if batch.regexPattern is not None:
        try:
            regex = re.compile(job.text(batch.regexPattern).encode())
        except re.error as exc:
            raise TaskInputError(
                f"'batch.regexPattern' is not a regular expression: {exc}"
            ) from None
    size = None if batch.bytes is None else _byte_size(job.text(batch.bytes))
    return BatchRule(
        rows=job.integer(batch.rows, "batch.rows"),
        max_bytes=size,
        partitions=job.integer(batch.partitions, "batch.partitions"),
        regex=regex,
        separator=separator.encode() if separator else b"\n",
    )


def _byte_size(text: str) -> int:
    """``10MB``, ``512KB``, ``1024`` as bytes (Kestra's readable sizes)."""
    found = re.fullmatch(r"\s*(\d+)\s*([KMGT]?B?)\s*", text.upper())
    if not found or int(found[1]) < 1:
        raise TaskInputError(f"'batch.bytes' {text!r} is not a size such as 10MB")
    unit = found[2] if found[2] in _UNITS else found[2] + "B"
    return int(found[1]) * _UNITS[unit]


def _prefix(artifacts: ArtifactStore, part: TaskRun, ctx: RunContext) -> PurePosixPath:
    flow, execution = ctx.loaded.flow, ctx.execution
    return artifacts.prefix(flow.namespace, flow.id, execution.id, part.task_id, part.id)


class _Iterations:
    """Kestra's ``iterations``: children by state, kept on the task run as they change."""

    def __init__(self, part: TaskRun, count: int, ctx: RunContext) -> None:
        self.part, self.ctx = part, ctx
        self.counts: dict[str, int] = {State.CREATED.value: count, State.RUNNING.value: 0}
        self._show()

    def move(self, before: State, after: State) -> None:
        with self.ctx.lock:
            self.counts[before.value] = self.counts.get(before.value, 0) - 1
            self.counts[after.value] = self.counts.get(after.value, 0) + 1
            self._show()

    def _show(self) -> None:
        with self.ctx.lock:
            self.part.outputs["iterations"] = dict(self.counts)
        self.ctx.changed(self.part)

    def final(self) -> State:
        """Kestra's state of a ForEachItem whose failures are passed on."""
        for state in (State.FAILED, State.KILLED, State.WARNING):
            if self.counts.get(state.value, 0) > 0:
                return state
        return State.SUCCESS


def _run_items(
    task: ForEachItemTask, run: TaskRun, scope: Scope, ctx: RunContext, splits: str, count: int
) -> list[str]:
    """``<id>_items``: one child per batch; the URIs of the children's outputs, in order."""
    part = _part(task, ITEMS, run, ctx)
    where = ctx.where(task)
    variables = ctx.variables(part, task, scope)
    artifacts = ctx.stores().artifacts
    prefix = _prefix(artifacts, part, ctx)
    try:
        namespace = ctx.renderer.render(task.namespace, variables, where=where)
        flow_id = ctx.renderer.render(task.flowId, variables, where=where)
        labels = child_labels(task, variables, ctx)
        depth = child_depth(ctx, namespace, flow_id, where)
        with artifacts.open(splits) as fh:
            batches = [line.decode().strip() for line in fh if line.strip()]
    except ExecutorError as exc:
        raise _fail(part, State.FAILED, exc.message, ctx) from None
    if task.scheduleDate:
        ctx.log(part, Level.WARN, "scheduleDate is not supported: the children start now")
    with ctx.lock:
        part.outputs["numberOfBatches"] = count
    iterations = _Iterations(part, count, ctx)
    kept: dict[int, str] = {}
    errors: list[str] = []
    hooks = ctx.hooks
    assert hooks is not None  # checked by run_for_each_item

    def child(index: int, uri: str, cancel: CancelScope) -> State:
        if errors:  # the flow cannot be started (not found, refused): no point in trying again
            return State.FAILED
        given = dict(variables)
        given["taskrun"] = {**variables["taskrun"], "items": uri, "iteration": index}
        iterations.move(State.CREATED, State.RUNNING)
        try:
            inputs = ctx.renderer.render_value(task.inputs, given, where=where)
            request = SubflowRequest(
                namespace,
                flow_id,
                task.revision,
                inputs,
                labels,
                ctx.execution,
                part,
                task.wait,
                where,
                depth,
                cancel,
                index,
            )
            started = hooks.run_subflow(request)
        except ExecutorError as exc:
            errors.append(exc.message)
            iterations.move(State.RUNNING, State.FAILED)
            return State.FAILED
        if not task.wait:
            iterations.move(State.RUNNING, State.CREATED)  # started, not followed
            return State.SUCCESS
        ended = started.state.current
        iterations.move(State.RUNNING, ended if ended in _TERMINAL else State.FAILED)
        if started.outputs:
            line = write_rows([dict(started.outputs)])
            kept[index] = artifacts.write(prefix, f"{index}/outputs.ion", line)
        return ended

    def unit(index: int, uri: str) -> Unit:
        return Unit(str(index), lambda cancel: child(index, uri, cancel))

    units = [unit(i, uri) for i, uri in enumerate(batches)]
    limit = 1 if not task.wait else max(1, ctx.settings.foreach_item_concurrency)
    run_units(units, limit=limit, on_failure="CONTINUE", cancel=scope.cancel, name=part.task_id)
    base = str(prefix)
    with ctx.lock:
        part.outputs["subflowOutputsBaseUri"] = f"/{base}"
    outputs = {"numberOfBatches": count, "iterations": dict(iterations.counts)}
    _publish(run, scope, ctx, outputs)
    if scope.cancel.cancelled:
        stopped = scope.cancel.state or State.KILLED
        raise _fail(part, stopped, scope.cancel.reason or "stopped", ctx)
    if errors:
        raise _fail(part, State.FAILED, errors[0], ctx)
    state = iterations.final() if task.wait and task.transmitFailed else State.SUCCESS
    if state == State.SUCCESS:
        _end(part, state, {}, scope, ctx)
    else:
        failed = iterations.counts.get(state.value, 0)
        children = f"subflow execution(s) of {namespace}.{flow_id}"
        reason = f"{failed} of {count} {children} ended {state.value}"
        ctx.log(part, Level.ERROR, reason)
        _end(part, state, {}, scope, ctx, reason)
        raise _PartFailed(state, reason)
    return [kept[i] for i in sorted(kept)]


def _run_merge(
    task: ForEachItemTask, run: TaskRun, scope: Scope, ctx: RunContext, uris: list[str]
) -> None:
    """``<id>_merge``: the children's outputs, one Ion line each, joined in batch order."""
    part = _part(task, MERGE, run, ctx)
    if not uris:  # no child had outputs (or none was waited for): Kestra gives none either
        _end(part, State.SUCCESS, {}, scope, ctx)
        return
    artifacts = ctx.stores().artifacts

    def joined() -> Iterator[bytes]:
        for uri in uris:
            with artifacts.open(uri) as fh:
                yield from iter(lambda: fh.read(1024 * 1024), b"")

    try:
        merged = artifacts.write(_prefix(artifacts, part, ctx), "outputs.ion", joined())
    except ExecutorError as exc:
        raise _fail(part, State.FAILED, exc.message, ctx) from None
    _end(part, State.SUCCESS, {"subflowOutputs": merged}, scope, ctx)
    _publish(run, scope, ctx, {"subflowOutputs": merged})


HANDLES: dict[type[Any], Handler[Any]] = {
    m.ForEachItemTask: run_for_each_item,
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
