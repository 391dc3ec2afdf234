"""The composition root: the CLI (and later the server) reach engines and stores only here.

``run_flow`` loads and checks a flow, wires the engine, images, workspace and listeners into a
``RunContext`` and runs it; Subflow tasks and paused runs come back here through ``AppHooks``.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from executor.engine import labels as labelling
from executor.engine import overlay
from executor.engine.api import Backend, ImageStore, RegistryAuth, Resource
from executor.engine.backends import backend_for
from executor.errors import (
    ExecutorError,
    FlowError,
    ImageError,
    StoreError,
    StoreUnavailable,
    UsageError,
)
from executor.flow.host_access import refuse_host_openings
from executor.flow.loaded import LoadedFlow
from executor.flow.loader import load_flow
from executor.flow.model import FLOW_CALLS
from executor.flow.secrets import Secrets
from executor.flow.tasks_exec import ExecScript
from executor.flow.walk import walk
from executor.flow_repository import DirectoryFlows, FlowRepository
from executor.host import Owner
from executor.images import ImageResolver, ResolvedImage
from executor.model import Execution, RunListener, State, StateHistory, TaskRun
from executor.model.subflow import parent_of, subflow_trigger
from executor.run.cancel import CancelScope, Running, runner_gone
from executor.run.context import RunContext, SubflowRequest, reader_of
from executor.run.handlers.images import default_image
from executor.run.inputs import resolve_inputs
from executor.run.restart import NotRestartable, plan_replay, plan_restart
from executor.run.runner import run_execution
from executor.run.signals import interrupts_as_keyboard
from executor.services import local_services, services
from executor.settings import Settings
from executor.store.api import ArtifactStore, Services
from executor.store.db import Store
from executor.store.queue import QueuedWork, withdraw
from executor.store.recorder import Recorder, StoreRetry, end_failed
from executor.store.restarts import record_restart
from executor.subflows import FlowIndex, FlowSource, check_subflows
from executor.workspace.hooks import WorkspaceHooks

log = structlog.get_logger(__name__)

__all__ = [
    "Kill",
    "Killed",
    "backend_for",
    "execution_of",
    "kill_execution",
    "load_flow",
    "local_services",
    "replay_execution",
    "restart_execution",
    "run_flow",
    "run_recorded",
    "services",
    "sweep_orphans",
    "sweep_overlays",
    "sweep_partial_files",
]

_RESUME_POLL = 0.5


def image_builder_engine(settings: Settings) -> ImageStore:
    """The engine as ``executor images`` builds the catalogue on it.

    Raises:
        EngineUnavailable: no engine answers.
        UsageError: the settings' engine builds no images.
    """
    backend = backend_for(settings)
    if not backend.capabilities.image_build:
        raise UsageError(f"EXECUTOR_ENGINE={settings.engine}: this engine builds no images")
    return backend.image_store()


def store_retry(settings: Settings, give_up: threading.Event | None = None) -> StoreRetry:
    """How a recorder waits for a store it cannot reach (``give_up``: stop waiting at once)."""
    return StoreRetry(
        settings.store_patience_seconds,
        settings.store_retry_wait_seconds,
        give_up or threading.Event(),
    )


def workspace_for(settings: Settings, stores: Services) -> WorkspaceHooks:
    """The workspace layer of a run: seeds from and harvests into ``stores``' host files."""
    from executor.workspace.service import WorkspaceService

    return WorkspaceService(settings, stores.host, stores.cache)


def secrets_for(settings: Settings) -> Secrets:
    path = settings.home / "secrets.yaml"
    return Secrets.from_env(settings.secret_env, path if path.exists() else None)


class ImageLookup:
    """Resolves references through aliases and the lock, remembering what it found."""

    def __init__(self, settings: Settings, backend: Backend) -> None:
        self.backend = backend
        self.resolver = ImageResolver(settings, backend.image_id)
        self.cache: dict[tuple[str, str, RegistryAuth | None], ResolvedImage] = {}
        self._lock = threading.Lock()

    def __call__(
        self, ref: str, pull_policy: str, auth: RegistryAuth | None = None
    ) -> ResolvedImage:
        key = (ref, pull_policy, auth)
        with self._lock:  # branches of a Parallel resolve at once; resolve (and pull) once
            if key not in self.cache:
                resolved = self.resolver.resolve(
                    ref, pull_policy, lambda r: self.backend.pull(r, auth)
                )
                if resolved.via == "pulled" and resolved.digest is None:
                    # a tag moves; the digest it had when pulled says what actually ran
                    digest = self.backend.repo_digest(ref, resolved.image_id)
                    resolved = dataclasses.replace(resolved, digest=digest)
                self.cache[key] = resolved
            return self.cache[key]


def preflight(loaded: LoadedFlow, settings: Settings, images: ImageLookup) -> None:
    """Resolve every image the flow names before anything starts.

    Raises:
        ImageError: an image cannot be resolved, located at its task.
    """
    for visit in walk(loaded.flow):
        task = visit.task
        if not isinstance(task, ExecScript):
            continue
        ref = task.image or default_image(task, settings)
        opts = task.docker_options
        if "{{" in ref or (opts is not None and opts.credentials is not None):
            continue  # resolved as the task starts: templates and secrets render then
        try:
            images(ref, opts.pullPolicy if opts else "IF_NOT_PRESENT")
        except ImageError as exc:
            raise ImageError(exc.message, where=loaded.task_where(task.id)) from None


def uses_subflows(loaded: LoadedFlow) -> bool:
    return any(isinstance(v.task, FLOW_CALLS) for v in walk(loaded.flow))


DetachSubflow = Callable[[Execution, dict[str, Any], int | None], Execution]
"""Starts a child that is not waited for somewhere else (the server queues it, so that it
counts against the slots): the child (trigger, labels, parent set), its inputs as rendered, the
revision asked. Returns the child as recorded."""


class AppHooks:
    """What a running flow asks of the application: subflows, and resuming a pause.

    Each child runs on a thread of its own, waited for or not: a chain of subflows never grows
    one thread's stack (however deep the chain may go), and a child waited for is stopped with
    the Subflow task that waits, one not waited for with the whole run (the process must not
    outlive it). ``running`` learns every child, so a kill finds it.
    """

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        images: ImageLookup,
        flows: FlowSource | None,
        listeners: Sequence[RunListener],
        secrets: Secrets,
        stores: Services,
        workspace: WorkspaceHooks | None,
        cancel: CancelScope,
        detach: DetachSubflow | None = None,
        running: Running | None = None,
        flow_repository: FlowRepository | None = None,
    ) -> None:
        self.settings = settings
        self.flow_repository = flow_repository
        self.stores = stores
        self.backend = backend
        self.images = images
        self.flows = flows
        self.listeners = listeners
        self.secrets = secrets
        self.workspace = workspace
        self.cancel = cancel  # the root run's scope
        self.detach = detach
        self.running = running or Running()
        self.detached: list[_ChildRun] = []
        # a ForEachItem's children not waited for may be thousands: they take turns here
        self.batch_slots = threading.BoundedSemaphore(max(1, settings.foreach_item_concurrency))

    def run_subflow(self, request: SubflowRequest) -> Execution:
        if self.flows is None:
            raise FlowError("a Subflow needs a flows directory (--flows)", where=request.where)
        loaded = self.flows.find(
            request.namespace, request.flow_id, request.revision, request.where
        )
        refuse_host_openings(loaded, self.settings.allow_host_options)
        child = Execution(loaded.flow.namespace, loaded.flow.id)
        child.parent_id = request.parent.id
        child.labels = dict(request.labels)
        child.trigger = subflow_trigger(
            request.parent, request.task_run, request.depth, request.iteration
        )
        given = _as_given(request.inputs)
        if not request.wait and self.detach is not None:
            return self.detach(child, given, request.revision)
        child.inputs = resolve_inputs(list(loaded.flow.inputs), given)
        preflight(loaded, self.settings, self.images)
        scope = (request.cancel if request.wait else self.cancel).child()
        ctx = self.context(loaded, child, child.inputs, cancel=scope)
        batch = not request.wait and request.iteration is not None
        run = _ChildRun(ctx, self.running, self.batch_slots if batch else None)
        if not request.wait:
            self.detached.append(run)
            return child
        return run.wait()

    def context(
        self,
        loaded: LoadedFlow,
        execution: Execution,
        inputs: dict[str, Any],
        cancel: CancelScope | None = None,
    ) -> RunContext:
        """A RunContext for one execution, wired to this application's engine and listeners."""
        return RunContext(
            loaded=loaded,
            execution=execution,
            inputs=inputs,
            settings=self.settings,
            backend=self.backend,
            resolve_image=self.images,
            secrets=self.secrets,
            listeners=self.listeners,
            services=self.stores,
            workspace=self.workspace,
            hooks=self,
            cancel=cancel,
            flow_repository=self.flow_repository,
        )

    def wait_for_resume(
        self, execution: Execution, run: TaskRun, cancel: CancelScope, timeout: float | None
    ) -> dict[str, str] | None:
        """Poll until a resume is asked (``executor resume``, or the server's API for a worker);
        ``None`` on cancel or timeout."""
        records = self.stores.records.for_reader(reader_of(execution))
        end = time.monotonic() + timeout if timeout else None
        while not cancel.cancelled and (end is None or time.monotonic() < end):
            try:
                given = records.take_resume(execution.id)
            except StoreUnavailable:  # the store is away a while: the pause goes on
                given = None
            if given is not None:
                return given
            time.sleep(_RESUME_POLL)
        return None

    def join_detached(self) -> None:
        """Wait for subflows started with ``wait: false`` (they must not outlive the run)."""
        for run in self.detached:
            run.join()


class _ChildRun:
    """One child execution on a thread of its own (started at once), registered in
    ``running`` while it runs; with ``slots``, it runs once it holds one of them."""

    def __init__(
        self, ctx: RunContext, running: Running, slots: threading.BoundedSemaphore | None = None
    ) -> None:
        self.ctx = ctx
        self.running = running
        self.slots = slots
        self.error: BaseException | None = None
        # an Event, not Thread.join: a join cut short by Ctrl-C marks a live thread stopped
        # (CPython 3.11), and the next join would not wait for the child to clean up
        self.done = threading.Event()
        thread = threading.Thread(target=self._run, name=f"subflow-{ctx.execution.id}")
        thread.daemon = True
        thread.start()

    def _run(self) -> None:
        execution = self.ctx.execution
        held = False
        try:
            # cancelled while waiting: it still runs, and ends KILLED at once, recorded
            while self.slots is not None and not held and not self.ctx.cancel.cancelled:
                held = self.slots.acquire(timeout=_RESUME_POLL)
            with self.running.holding(execution.id, self.ctx.cancel):
                run_execution(self.ctx)
        except BaseException as exc:  # recorded FAILED by run_execution; its waiter says why
            self.error = exc
            if not isinstance(exc, ExecutorError):
                log.error("a subflow execution broke", execution_id=execution.id, error=str(exc))
        finally:
            if held and self.slots is not None:
                self.slots.release()
            self.done.set()

    def join(self) -> None:
        """Wait for the child to end; Ctrl-C stops it, and waits for it to clean up."""
        try:
            self.done.wait()
        except KeyboardInterrupt:
            self.ctx.cancel.cancel(State.KILLED, "interrupted")
            self.done.wait()
            raise

    def wait(self) -> Execution:
        """The child, ended.

        Raises:
            ExecutorError: the child could not run to its end (the engine was lost, a bug).
        """
        self.join()
        execution = self.ctx.execution
        if isinstance(self.error, ExecutorError):
            raise self.error
        if self.error is not None:
            raise ExecutorError(
                f"subflow execution {execution.id} broke: {execution.reason or self.error}"
            )
        return execution


def _as_given(inputs: Any) -> dict[str, Any]:
    return dict(inputs) if isinstance(inputs, dict) else {}


def run_flow(
    settings: Settings,
    flow_path: Path | LoadedFlow,
    given_inputs: dict[str, str],
    listeners: Sequence[RunListener] = (),
    *,
    backend: Backend | None = None,
    execution: Execution | None = None,
    stores: Services | None = None,
    workspace: WorkspaceHooks | None = None,
    secrets: Secrets | None = None,
    flows_dir: Path | None = None,
    flow_source: FlowSource | None = None,
    cancel: CancelScope | None = None,
    detach: DetachSubflow | None = None,
    running: Running | None = None,
    flow_repository: FlowRepository | None = None,
    inputs_resolved: bool = False,
) -> Execution:
    """Load, check and run a flow; Ctrl-C ends it KILLED (KeyboardInterrupt re-raised).

    SIGTERM does too inside :func:`run_recorded`, which installs the handler.

    ``flow_path`` is a flow file, or a flow already loaded (the server's stored flows).
    ``secrets`` lets the caller share the masker with its own listeners (the run record masks
    outputs with it); by default they are loaded from the environment and the secrets file.
    ``flows_dir`` is where Subflow tasks look flows up (default: the flow file's directory);
    ``flow_source`` replaces it (the server resolves them in its own store).
    ``cancel`` lets another thread kill the run (``cancel.cancel(State.KILLED, reason)``).
    ``stores``: every store the run reaches (default: this host's, from ``settings``);
    ``workspace``: its workspace layer (default: one over ``stores``' host files).
    ``detach`` starts the children of ``wait: false`` Subflow tasks (default: on threads here).
    ``running`` learns the subflow executions this run starts (what the server may kill).
    ``flow_repository`` is where tasks read and change flows (``git.PushFlows``/``SyncFlows``);
    for a flow file it defaults to ``flows_dir`` (or the file's directory), otherwise none.
    ``inputs_resolved``: ``execution`` runs again (a restart, a replay) with the inputs it holds,
    ``given_inputs`` aside; the task runs it holds are taken back as their tasks come.
    """
    loaded = flow_path if isinstance(flow_path, LoadedFlow) else load_flow(flow_path, settings.envs)
    refuse_host_openings(loaded, settings.allow_host_options)  # a server: again, as it runs
    flows: FlowSource | None = None
    if uses_subflows(loaded):
        flows = flow_source or FlowIndex(flows_dir or Path(loaded.source).resolve().parent)
        check_subflows(loaded, flows)
    if inputs_resolved and execution is not None:
        inputs = dict(execution.inputs)
    else:
        inputs = resolve_inputs(list(loaded.flow.inputs), given_inputs)
    backend = backend or backend_for(settings)
    sweep_orphans(backend)
    sweep_overlays(settings, backend)
    sweep_partial_files(settings)
    images = ImageLookup(settings, backend)
    preflight(loaded, settings, images)
    stores = stores or services(settings)
    workspace = workspace or workspace_for(settings, stores)
    execution = execution or Execution(loaded.flow.namespace, loaded.flow.id, inputs)
    inputs = store_file_inputs(stores.host.artifacts, loaded, inputs, execution)
    execution.inputs = inputs
    if secrets is None:
        secrets = secrets_for(settings)
    if flow_repository is None and not isinstance(flow_path, LoadedFlow):
        flow_repository = flows_beside(settings, loaded, flows_dir)
    cancel = cancel or CancelScope()
    hooks = AppHooks(
        settings,
        backend,
        images,
        flows,
        listeners,
        secrets,
        stores,
        workspace,
        cancel,
        detach,
        running,
        flow_repository,
    )
    ctx = hooks.context(loaded, execution, inputs, cancel=cancel)
    try:
        return run_execution(ctx)
    finally:
        hooks.join_detached()


def flows_beside(settings: Settings, loaded: LoadedFlow, flows_dir: Path | None) -> FlowRepository:
    """Where the tasks of a flow file read and change flows (``git.PushFlows``/``SyncFlows``):
    ``flows_dir``, or the file's own directory."""
    directory = flows_dir or Path(loaded.source).resolve().parent
    return DirectoryFlows(directory, settings.allow_host_options)


def execution_of(work: QueuedWork, history: Sequence[tuple[State, datetime]]) -> Execution:
    """The execution of queued work, about to run (CREATED, after the states of ``history``)."""
    return Execution(
        work.namespace,
        work.flow_id,
        id=work.execution_id,
        state=StateHistory(State.CREATED, list(history)),
        labels=dict(work.labels),
        trigger=work.trigger,
        flow_revision=work.revision,
        parent_id=parent_of(work.trigger),
    )


FlowOf = Callable[[Execution, int | None], LoadedFlow]
"""The flow an execution runs, at a revision (``None``: the one it ran)."""


def restart_execution(
    store: Store,
    execution_id: str,
    flow_of: FlowOf,
    owner: Owner,
    work: Callable[[Execution], QueuedWork] | None = None,
) -> Execution:
    """Restart an ended execution in the store, the one way the server and the CLI restart.

    Its failed task runs (and the flowable ones above them, and a WorkingDirectory whole) are
    RESTARTED, the ones that ended well kept (``run.restart.plan_restart``). With ``work`` (a
    server) it waits in the queue (QUEUED) for a slot or a worker; without it, it is recorded
    CREATED, run by ``owner`` (``executor restart`` runs it at once). Run it with ``run_flow``
    (``execution=``, ``inputs_resolved=True``).

    Raises:
        NotFoundError: no such execution.
        NotRestartable: it is not FAILED or KILLED (or was restarted meanwhile).
        FlowError: its flow cannot be found or loaded.
    """
    execution = store.get_execution(execution_id).execution
    plan = plan_restart(execution, flow_of(execution, None).flow)
    execution.state.to(State.QUEUED if work is not None else State.CREATED)
    found = record_restart(
        store, execution, plan.dropped, owner, work(execution) if work is not None else None
    )
    if found is not None:
        raise NotRestartable(f"execution {execution_id} is {found.value} now: not restarted")
    return execution


def replay_execution(
    store: Store,
    execution_id: str,
    flow_of: FlowOf,
    *,
    task_run_id: str | None = None,
    task_id: str | None = None,
    revision: int | None = None,
) -> Execution:
    """A new execution replaying a stored one from a task run (not recorded yet: the server
    queues it, ``executor replay`` runs it with ``run_flow(..., inputs_resolved=True)``).

    Raises:
        NotFoundError: no such execution, or task run.
        NotRestartable: the execution has not ended.
        FlowError: its flow cannot be found at that revision.
    """
    original = store.get_execution(execution_id).execution
    flow = flow_of(original, revision).flow
    return plan_replay(
        original, flow, task_run_id, task_id=task_id, revision=revision or original.flow_revision
    )


def runs_again(execution: Execution) -> bool:
    """Whether a stored execution about to run is a restart or a replay: it runs with the
    inputs and the task runs it holds (``run_flow(..., inputs_resolved=True)``)."""
    return (
        bool(execution.task_runs)
        or execution.original_id is not None
        or any(state == State.RESTARTED for state, _ in execution.state.history)
    )


def run_recorded(
    execution: Execution,
    recorder: Recorder,
    run: Callable[[], object],
    runner: str,
    *,
    queued: bool = True,
) -> StoreError | None:
    """Run ``execution`` (``run`` runs it, ``recorder`` among its listeners) and record it to
    its end, whoever runs it: ``executor run``, a server's slot, a worker.

    Whatever stops the run before its end (its flow, inputs, images, the engine, a bug) ends it
    FAILED with the reason in its log; Ctrl-C or SIGTERM (on the main thread, the handler is
    installed here, once) ends it KILLED, and the KeyboardInterrupt goes on up.

    Args:
        queued: the store holds the execution already (a server queued it): every failure is
            recorded and logged, never raised, so the slot or the worker goes on. ``False``
            (``executor run``): failures are raised after they are recorded, for the exit
            code, and one before the run began leaves no record (a bad input starts nothing).
        runner: who runs it, as this process's own log says ("server", "worker", "cli").

    Returns:
        What could not be recorded (a store that stayed away), for the caller to report after
        its own output; ``None`` when the whole record is written.

    Raises:
        StoreError: (``queued=False``) the store cannot be opened.
        ExecutorError: (``queued=False``) the run could not start or broke.
        KeyboardInterrupt: Ctrl-C or SIGTERM.
    """
    try:
        recorder.start()
    except ExecutorError as exc:
        if not queued:
            raise
        log.error("execution could not be recorded", execution_id=execution.id, error=str(exc))
        return None
    try:
        with interrupts_as_keyboard():
            run()
    except KeyboardInterrupt:
        if not execution.state.current.terminal:
            execution.state.to(State.KILLED)
            if execution.id in recorder.recorded:
                recorder.execution_changed(execution)
        raise
    except ExecutorError as exc:
        if queued or execution.id in recorder.recorded:
            _end_failed(execution, recorder, str(exc))
        if not queued:
            raise
    except Exception as exc:  # a bug must not kill the runner; the run ends FAILED, logged
        log.exception(f"execution failed inside the {runner}", execution_id=execution.id)
        _end_failed(execution, recorder, f"internal error: {type(exc).__name__}: {exc}")
        if not queued:
            raise
    finally:
        problem = recorder.finish()
        if problem is not None and queued:
            log.error("execution record incomplete", error=problem.message)
    return problem


def _end_failed(execution: Execution, recorder: Recorder, message: str) -> None:
    """End FAILED a run that stopped before its end; one that ended (run_execution recorded
    why) is left as it is."""
    if not execution.state.current.terminal:
        end_failed(execution, recorder, message)


class Kill(enum.Enum):
    """What a kill did."""

    STOPPING = "stopping"
    """Its runner was told (a scope of this process, its worker, its process): it ends KILLED
    once its processes are stopped and its containers removed."""
    ENDED = "ended"
    """Ended KILLED in the store: it was waiting in the queue, or its runner is gone."""
    ALREADY_ENDED = "already ended"
    REFUSED = "refused"
    """Run by another live process this one may not stop; ``message`` says where and why."""
    NOT_HERE = "not here"
    """This process runs no such execution and has no store to look it up in (a worker)."""


@dataclass(frozen=True)
class Killed:
    """The outcome of :func:`kill_execution`: what it did, and the state it left (or found)."""

    kill: Kill
    state: State | None = None
    message: str = ""


RecordStoreOpener = Callable[[], AbstractContextManager[Store]]
"""Opens the record store for one use (``with opener() as store``)."""

RemoteKill = Callable[[Store, str], Killed | None]
"""Kills an execution sent to other hosts (a server's broker): ``None`` when it was not."""


def kill_execution(
    execution_id: str,
    reason: str,
    *,
    running: Running | None = None,
    records: RecordStoreOpener | None = None,
    me: Owner | None = None,
    remote: RemoteKill | None = None,
    signal_wait: float | None = None,
) -> Killed:
    """Kill an execution as far as this process can reach it: the CLI, the server and the worker
    all kill through here.

    In order: what this process runs (``running``) is stopped through its scope (KILLED,
    ``reason``), without the store, so a kill works while the store is away; without a store
    (``records``: a worker) nothing else is tried. Then, in the store: work still queued is
    withdrawn and ended KILLED; work sent to other hosts is left to ``remote``; an execution
    whose runner is gone (``run.cancel.runner_gone``) is ended KILLED in the store; one run by
    another live process of this host gets SIGTERM when ``signal_wait`` is given (``executor
    kill``: then waited for, that long), and is refused otherwise.

    Args:
        me: this process, as its runs are recorded (default: itself).

    Raises:
        NotFoundError: no such execution.
        ExecutorError: (``signal_wait``) it did not end in time after SIGTERM.
    """
    scope = running.get(execution_id) if running is not None else None
    if scope is not None:
        scope.cancel(State.KILLED, reason)
        return Killed(Kill.STOPPING)
    if records is None:
        return Killed(Kill.NOT_HERE)
    me = me or Owner.current()
    with records() as store:
        if withdraw(store, execution_id, State.KILLED, reason):
            return Killed(Kill.ENDED, State.KILLED)
        if remote is not None:
            sent = remote(store, execution_id)
            if sent is not None:
                return sent
        state = store.execution_state(execution_id)
        for _ in range(_TAKEN_CHECKS):
            if running is not None and (scope := running.get(execution_id)) is not None:
                scope.cancel(State.KILLED, reason)
                return Killed(Kill.STOPPING)
            if running is None or state != State.CREATED:
                break
            # taken by a runner of this process this very moment: it registers at once
            threading.Event().wait(0.05)
            state = store.execution_state(execution_id)
        if state.terminal:
            return Killed(Kill.ALREADY_ENDED, state)
        owner = store.owner(execution_id)
        if runner_gone(owner, me, running, execution_id):
            note = f"execution {reason}: {_gone_why(owner, me)}"
            if store.end_lost(execution_id, State.KILLED, reason, note):
                return Killed(Kill.ENDED, State.KILLED)
            return Killed(Kill.ALREADY_ENDED, store.execution_state(execution_id))
        if signal_wait is None or owner.host != me.host or owner == me:
            return Killed(Kill.REFUSED, state, _refusal(execution_id, owner, me))
        return _signal_owner(store, execution_id, owner, signal_wait)


_TAKEN_CHECKS = 50


def _gone_why(owner: Owner, me: Owner) -> str:
    if owner == me:
        return "its runner in this process had ended without recording its end"
    return f"the process that ran it (pid {owner.pid}) no longer runs"


def _refusal(execution_id: str, owner: Owner, me: Owner) -> str:
    if owner == me:
        return "an executor cannot kill its own execution"
    if owner.host != me.host:
        return f"execution {execution_id} runs on host {owner.host}: run `executor kill` there"
    return (
        f"execution {execution_id} is run by another process (pid {owner.pid} on {owner.host});"
        " `executor kill` it on its host"
    )


def _signal_owner(store: Store, execution_id: str, owner: Owner, wait_seconds: float) -> Killed:
    """SIGTERM the process that runs the execution (it ends it KILLED, as on Ctrl-C) and wait
    for it to end; one that died without recording its end is recovered."""
    log.info("stopping execution", execution_id=execution_id, pid=owner.pid, signal="SIGTERM")
    try:
        os.kill(owner.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    except PermissionError:
        message = (
            f"not allowed to signal pid {owner.pid}, which runs execution {execution_id}:"
            " run `executor kill` as its user"
        )
        return Killed(Kill.REFUSED, store.execution_state(execution_id), message)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        state = store.execution_state(execution_id)
        if state.terminal and owner.is_gone():
            return Killed(Kill.STOPPING, state)
        if owner.is_gone():
            # it ended without recording the end (killed harder, or crashed): recover it
            store.recover_dead()
            if (state := store.execution_state(execution_id)).terminal:
                return Killed(Kill.STOPPING, state)
        time.sleep(0.1)
    raise ExecutorError(
        f"execution {execution_id} did not end within {wait_seconds:g}s of "
        f"SIGTERM to pid {owner.pid}; try again, or `kill -9 {owner.pid}` and `executor gc`"
    )


def store_file_inputs(
    artifacts: ArtifactStore, loaded: LoadedFlow, inputs: dict[str, Any], execution: Execution
) -> dict[str, Any]:
    """Copy FILE inputs into the artifact store; templates then see their ``kestra:///`` URIs.

    Like Kestra, a task reaches a FILE input's bytes through inputFiles, never the host path.
    A FILE input given as a ``kestra:///`` URI (another execution's file) stays that URI; it
    must be one the execution may read (of its namespace), and readable now (a worker fetches
    it from the server here).

    Raises:
        UsageError: a ``kestra:///`` input names no stored file, or another namespace's.
    """
    from executor.store.files.artifacts import SCHEME

    store = artifacts.for_reader(reader_of(execution))
    execution_id = execution.id
    flow = loaded.flow
    converted = dict(inputs)
    for spec in flow.inputs:
        value = inputs.get(spec.id)
        if spec.type != "FILE" or not value:
            continue
        if str(value).startswith(SCHEME + "/"):
            try:
                store.open(str(value)).close()
            except ExecutorError as exc:
                raise UsageError(f"input '{spec.id}': {exc.message}") from None
            continue
        source = Path(value)
        prefix = store.prefix(flow.namespace, flow.id, execution_id, "inputs", spec.id)
        with source.open("rb") as fh:
            converted[spec.id] = store.write(prefix, source.name, fh)
    return converted


def sweep_orphans(engine: Backend, *, dry_run: bool = False) -> list[Resource]:
    """Remove our containers, volumes and networks whose owner process is provably gone."""
    hostname = socket.gethostname()
    removed: list[Resource] = []
    resources = engine.list_resources({labelling.MANAGED: "true"})
    # containers first: a volume in use cannot be removed
    for res in sorted(resources, key=lambda r: {"container": 0, "network": 1}.get(r.kind, 2)):
        if labelling.owner_is_gone(res.labels, hostname):
            if not dry_run:
                engine.remove_resource(res)
            removed.append(res)
    return removed


def sweep_overlays(settings: Settings, engine: Backend, *, dry_run: bool = False) -> list[Path]:
    """Remove overlay scratch directories whose volume is gone (run after ``sweep_orphans``).

    A crashed run leaves its volume (removed by ``sweep_orphans`` once its owner is gone) and
    the volume's upper layer here; removing the directory also lets its namespace versions go.
    """

    def live() -> list[str]:
        volumes = engine.list_resources({overlay.SCRATCH: None})
        return [r.labels[overlay.SCRATCH] for r in volumes if r.kind == "volume"]

    try:
        return overlay.sweep(settings.overlays_dir, live, dry_run=dry_run)
    except OSError:
        return []  # swept next time


def leftovers(settings: Settings, execution_id: str) -> list[Resource] | None:
    """What the engine still holds of one execution (``None`` when it cannot be asked)."""
    try:
        return backend_for(settings).list_resources({labelling.EXECUTION: execution_id})
    except ExecutorError:
        return None


def sweep_partial_files(settings: Settings, *, dry_run: bool = False) -> list[Path]:
    """Remove ``.part`` files of dead writers from this host's artifact and namespace stores."""
    from executor.store.files.artifacts import sweep_partial_files as sweep

    found: list[Path] = []
    for root in (settings.artifacts_dir, settings.namespaces_dir):
        try:
            found += sweep(root, dry_run=dry_run)
        except OSError:
            continue  # a store we cannot walk now is swept next time
    return found
