"""The execution queue: submit writes work to disk, N slots run it through ``executor.app``.

``ExecutionQueue.submit(Submission(...))`` is the one way an execution starts in server mode:
the API, and later schedules and webhooks, all call it. It checks the flow and the inputs
(404/409/422 before anything is written), then records the execution QUEUED with its work in one
transaction (``store.queue``). Slot threads take the oldest work, run it with ``app.run_flow``
(the same composition root as ``executor run``), and record it with a ``Recorder``.

The children of ``wait: false`` Subflow tasks are submitted here too, so they wait for a slot
like any execution; a child waited for runs inside its parent's slot.

Stopping (Ctrl-C, SIGTERM): slots take nothing more, running executions are killed (KILLED,
"server stopped"; their containers removed as on any kill) and waited for; queued work stays on
disk and runs when the server starts again. A server that died instead leaves its running
executions to crash recovery, which marks them FAILED ("executor died") at the next start.

No execution stays RUNNING while the server lives: a recorder waits for a store that went away
(the final states are written when it is back), and ``server.recovery`` ends FAILED what lost
its runner anyway.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import structlog

from executor import app as root
from executor.engine.api import Backend
from executor.errors import ExecutorError, FlowError, NotFoundError, UsageError
from executor.flow.host_access import refuse_host_openings
from executor.flow.loaded import LoadedFlow
from executor.flow.secrets import Secrets
from executor.host import Owner
from executor.log import LogContext
from executor.model import Execution, RunListener, State, StateHistory, new_id, now
from executor.paths import safe_relative
from executor.run.cancel import CancelScope, Running
from executor.run.inputs import resolve_inputs
from executor.run.restart import NotRestartable
from executor.server.config import DEFAULT_LAPSE_SECONDS, DEFAULT_MAX_FLOW_BYTES
from executor.server.dispatch import BrokerDispatch, worker_group
from executor.server.errors import Conflict
from executor.server.flow_parser import FlowParser
from executor.server.flow_repository import StoredFlowRepository
from executor.server.recovery import Recovery
from executor.server.stored_flows import StoredFlows
from executor.settings import Settings
from executor.store.concurrency import active, record_ended
from executor.store.db import Store
from executor.store.files.artifacts import SCHEME, Reader, write_file
from executor.store.flows import get_flow
from executor.store.local import LocalServices
from executor.store.queue import QueuedWork, enqueue, take_next
from executor.store.recorder import Recorder
from executor.store.records import parse_ts, ts
from executor.store.workers import withdraw_dispatched

log = structlog.get_logger(__name__)

KILLED_REASON = "killed through the API"
STOPPED_REASON = "server stopped"
_IDLE_POLL = 1.0  # seconds between looks at the queue when nobody wakes the slots


@dataclass(frozen=True)
class Submission:
    """One execution to start.

    Attributes:
        inputs: text inputs by id, as a client sent them.
        files: FILE inputs by id: (file name, readable stream); written to disk by ``submit``.
        labels: labels added to the flow's own.
        trigger: Kestra's ``trigger`` object (schedules and webhooks say who started it).
        revision: a stored revision to run instead of the latest.
    """

    namespace: str
    flow_id: str
    inputs: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, tuple[str, IO[bytes]]] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    trigger: dict[str, Any] | None = None
    revision: int | None = None


class ExecutionQueue:
    """The durable queue and its slots.

    Args:
        settings: the executor's settings (home, engine).
        workers: how many executions run at once.
        backend: an engine backend to use (default: the settings' engine, on first run).
        broker_url: send executions to workers through this broker instead of running them
            in slots (``server.dispatch``).
        parser: where flows are parsed (default: one parse process); stopped with the queue.
        stores: this host's stores (default: those ``settings`` name, built by ``app.py``).
        worker_lapse: how long a worker may stay silent before its runs count as lost.
    """

    def __init__(
        self,
        settings: Settings,
        workers: int,
        backend: Backend | None = None,
        broker_url: str | None = None,
        parser: FlowParser | None = None,
        stores: LocalServices | None = None,
        worker_lapse: timedelta = timedelta(seconds=DEFAULT_LAPSE_SECONDS),
    ) -> None:
        self.settings = settings
        self.stores = stores or root.local_services(settings)
        records = self.stores.records
        self.workers = workers
        self.parser = parser or FlowParser()
        self.flows = StoredFlows(records, self.parser)
        self.dispatch: BrokerDispatch | None = (
            BrokerDispatch(records, self.flows, broker_url, worker_lapse, settings.home)
            if broker_url
            else None
        )
        self.secrets: Secrets = root.secrets_for(settings)
        self.owner = Owner.current()
        self._backend = backend
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self.running = Running()  # every execution this process runs, subflows included
        self._stopping = False
        self._stopped = threading.Event()  # also: recorders waiting for the store give up
        self._slots: list[threading.Thread] = []
        self.recovery = Recovery(settings, records, self.owner, self.running, self._stopped)
        self._admit = threading.Lock()  # a concurrency CANCEL/FAIL counts and queues at once
        self._limits: dict[tuple[str, str, int | None], int | None] = {}
        # told of every execution the slots run (metrics), and once more of how it ended
        self.listeners: list[RunListener] = []
        # told of each error the slots meet: ("queue" | "execution", the error)
        self.on_error: Callable[[str, ExecutorError], None] = lambda where, exc: None

    @property
    def uploads_dir(self) -> Path:
        return self.settings.home / "uploads"

    # ----- lifecycle

    def start(self) -> None:
        """Recover what a dead server left, then start the slots (queued work runs first)."""
        with self.stores.records.open() as store:  # crash recovery of dead runs
            marked = store.recover_dead()
        if marked:
            log.warning("executions of a server that died marked FAILED", count=len(marked))
        self.recovery.start()
        if self.dispatch is not None:  # workers elsewhere run them
            self.dispatch.start()
            return
        for number in range(self.workers):
            slot = threading.Thread(target=self._slot, name=f"slot-{number}", daemon=True)
            slot.start()
            self._slots.append(slot)

    def stop(self) -> None:
        """Take no more work, kill what runs, wait for it to clean up (queued work stays)."""
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
        self._stopped.set()
        for scope in self.running.scopes():
            scope.cancel(State.KILLED, STOPPED_REASON)
        if self.dispatch is not None:  # what workers run goes on; they report when we are back
            self.dispatch.stop()
        for slot in self._slots:
            slot.join()
        self.recovery.join()
        self.parser.close()

    # ----- submitting

    def submit(self, submission: Submission) -> Execution:
        """Check and record one execution QUEUED; a free slot starts it.

        Raises:
            NotFoundError: no such flow (404).
            Conflict: the flow is disabled (409).
            UsageError: an input is unknown, missing or of the wrong type (422).
            FlowError: the flow opens the host and the server does not allow it (422).
        """
        with self.stores.records.connect() as store:
            stored = get_flow(store, submission.namespace, submission.flow_id, submission.revision)
            if stored is None:
                raise NotFoundError(
                    f"Flow '{submission.namespace}.{submission.flow_id}' not found"
                    + (f" at revision {submission.revision}" if submission.revision else "")
                )
            loaded = self.parser.load_stored(stored)
            if loaded.flow.disabled:
                raise Conflict(f"Cannot execute disabled flow {stored.namespace}.{stored.id}")
            # a flow stored before the rule, or run by a trigger: refused as when it is saved
            refuse_host_openings(loaded, self.settings.allow_host_options)
            if self.dispatch is not None:
                worker_group(loaded)  # one execution, one worker: conflicting groups are a 422
            execution_id = new_id()
            given = self._given_inputs(loaded, submission, execution_id)
            try:
                resolved = resolve_inputs(list(loaded.flow.inputs), given)
                execution = Execution(
                    stored.namespace,
                    stored.id,
                    self.secrets.mask_value(resolved),
                    id=execution_id,
                    state=StateHistory(State.QUEUED, [(State.QUEUED, now())]),
                    labels={**flow_labels(loaded), **submission.labels},
                    trigger=submission.trigger,
                    flow_revision=stored.revision,
                )
                work = QueuedWork(
                    execution_id=execution_id,
                    namespace=stored.namespace,
                    flow_id=stored.id,
                    revision=stored.revision,
                    inputs=given,
                    labels=execution.labels,
                    trigger=submission.trigger,
                    submitted=ts(execution.state.start),
                )
                refused = self._enqueue(store, loaded, execution, work)
            except BaseException:
                shutil.rmtree(self.uploads_dir / execution_id, ignore_errors=True)
                raise
        if refused:
            shutil.rmtree(self.uploads_dir / execution_id, ignore_errors=True)
            return execution
        with self._lock:
            self._wake.notify()
        if self.dispatch is not None:
            self.dispatch.wake()
        return execution

    def _enqueue(
        self, store: Store, loaded: LoadedFlow, execution: Execution, work: QueuedWork
    ) -> bool:
        """Queue the work, or end it at once (``True``) when the flow's concurrency is full and
        its behavior is CANCEL or FAIL (QUEUE waits in the queue: see ``_limit_of``)."""
        concurrency = loaded.flow.concurrency
        queued = concurrency is not None and concurrency.behavior == "QUEUE"
        self._limits[(work.namespace, work.flow_id, work.revision)] = (
            concurrency.limit if concurrency is not None and queued else None
        )
        if concurrency is None or queued:
            enqueue(store, execution, work, self.owner)
            return False
        with self._admit:
            if active(store, work.namespace, work.flow_id) < concurrency.limit:
                enqueue(store, execution, work, self.owner)
                return False
            execution.state = StateHistory(State.CREATED, [(State.CREATED, execution.state.start)])
            execution.state.to(
                State.CANCELLED if concurrency.behavior == "CANCEL" else State.FAILED
            )
            execution.reason = (
                f"the flow's concurrency limit ({concurrency.limit}) is reached"
                f" (behavior {concurrency.behavior})"
            )
            record_ended(store, execution, self.owner)
            return True

    def _limit_of(self, namespace: str, flow_id: str, revision: int | None) -> int | None:
        """The QUEUE concurrency limit of a flow revision (work queued before a restart too)."""
        key = (namespace, flow_id, revision)
        if key not in self._limits:
            try:
                concurrency = self.flows.find(namespace, flow_id, revision).flow.concurrency
            except FlowError:
                concurrency = None
            queued = concurrency is not None and concurrency.behavior == "QUEUE"
            self._limits[key] = concurrency.limit if concurrency is not None and queued else None
        return self._limits[key]

    def _given_inputs(
        self, loaded: LoadedFlow, submission: Submission, execution_id: str
    ) -> dict[str, str]:
        """Text inputs as given; FILE inputs written under ``uploads/`` (only as file parts)."""
        file_inputs = {spec.id for spec in loaded.flow.inputs if spec.type == "FILE"}
        for spec in loaded.flow.inputs:
            if spec.type == "FILE" and spec.defaults is not None:
                raise UsageError(
                    f"input '{spec.id}' (FILE) has a default: the server never reads a host "
                    "file named by a flow; send the file as a multipart part"
                )
        given = dict(submission.inputs)
        for name in sorted(file_inputs & set(given)):
            if not given[name].startswith(SCHEME + "/"):
                raise UsageError(
                    f"input '{name}' is a FILE: send it as a file part (or a {SCHEME}/ URI"
                    " of a stored file), not as text"
                )
            # the execution reads it: another namespace's file is refused, as its tasks would
            flow = loaded.flow
            reader = Reader(flow.namespace, flow.id, execution_id)
            try:
                self.stores.artifacts.for_reader(reader).open(given[name]).close()
            except ExecutorError as exc:
                raise UsageError(f"input '{name}': {exc.message}") from None
        for name, (filename, stream) in submission.files.items():
            if name not in file_inputs:
                given[name] = stream.read().decode(
                    "utf-8", "replace"
                )  # a text input sent as a file
                continue
            base = Path(filename or name).name or name
            rel = safe_relative(f"{execution_id}/{name}/{base}")
            given[name] = str(write_file(self.uploads_dir, rel, stream))
        return given

    # ----- restarting and replaying

    def restart(self, execution_id: str) -> Execution:
        """Restart a FAILED or KILLED execution: RESTARTED, then queued like any submission
        (a slot or a worker runs its failed task runs again; see ``app.restart_execution``).

        Raises:
            NotFoundError: no such execution (404).
            Conflict: it is not FAILED or KILLED (409).
        """

        def work(execution: Execution) -> QueuedWork:
            return self._work_of(execution)

        with self.stores.records.connect() as store:
            try:
                execution = root.restart_execution(
                    store, execution_id, self._flow_of, self.owner, work
                )
            except NotRestartable as exc:
                raise Conflict(f"Illegal state: {exc.message}") from None
        self._wake_runners()
        return execution

    def replay(self, execution_id: str, task_run_id: str | None, revision: int | None) -> Execution:
        """A new execution that replays a stored one from ``task_run_id`` (the task runs before
        it copied, with their outputs), queued like any submission.

        Raises:
            NotFoundError: no such execution, task run or revision (404).
            Conflict: the execution has not ended (409).
        """
        with self.stores.records.connect() as store:
            try:
                execution = root.replay_execution(
                    store, execution_id, self._flow_of, task_run_id=task_run_id, revision=revision
                )
            except NotRestartable as exc:
                raise Conflict(f"Illegal state: {exc.message}") from None
            loaded = self._flow_of(execution, execution.flow_revision)
            execution.state = StateHistory(State.QUEUED, [(State.QUEUED, now())])
            self._enqueue(store, loaded, execution, self._work_of(execution))
        self._wake_runners()
        return execution

    def _flow_of(self, execution: Execution, revision: int | None) -> LoadedFlow:
        """The stored flow of ``execution`` at ``revision`` (default: the one it ran).

        Raises:
            NotFoundError: the flow (or that revision) is not stored (any more).
        """
        wanted = revision if revision is not None else execution.flow_revision
        try:
            return self.flows.find(execution.namespace, execution.flow_id, wanted)
        except FlowError as exc:
            raise NotFoundError(exc.message) from None

    @staticmethod
    def _work_of(execution: Execution) -> QueuedWork:
        """The queue's work for an execution that runs again: it runs with its own inputs and
        task runs (``app.runs_again``), so the work carries none."""
        return QueuedWork(
            execution_id=execution.id,
            namespace=execution.namespace,
            flow_id=execution.flow_id,
            revision=execution.flow_revision,
            inputs={},
            labels=execution.labels,
            trigger=execution.trigger,
            submitted=ts(now()),
        )

    def _wake_runners(self) -> None:
        with self._lock:
            self._wake.notify()
        if self.dispatch is not None:
            self.dispatch.wake()

    # ----- killing

    def kill(self, execution_id: str) -> None:
        """Kill a queued or running execution of this server (a subflow's too), through
        ``app.kill_execution``.

        What this process runs is killed through its scope, without the store (so a kill works
        while the store is away); what is recorded as run here but has no runner any more, or
        was run by a process of this host that died, is ended KILLED in the store.

        Raises:
            NotFoundError: no such execution.
            Conflict: it already ended, or another live process runs it.
        """
        killed = root.kill_execution(
            execution_id,
            KILLED_REASON,
            running=self.running,
            records=self.stores.records.connect,
            me=self.owner,
            remote=self._kill_dispatched if self.dispatch is not None else None,
        )
        if killed.kill == root.Kill.ALREADY_ENDED:
            state = killed.state.value if killed.state else "already"
            raise Conflict(f"Illegal state: execution {execution_id} already ended {state}")
        if killed.kill == root.Kill.REFUSED:
            raise Conflict(f"Illegal state: {killed.message}")

    def _kill_dispatched(self, store: Store, execution_id: str) -> root.Killed:
        """Kill an execution sent to the broker: at once if no worker took it, else through
        the heartbeat of the worker that runs it."""
        assert self.dispatch is not None
        if withdraw_dispatched(store, execution_id, State.KILLED, KILLED_REASON):
            return root.Killed(root.Kill.ENDED, State.KILLED)
        state = store.execution_state(execution_id)
        if state.terminal:
            return root.Killed(root.Kill.ALREADY_ENDED, state)
        self.dispatch.request_kill(execution_id)
        return root.Killed(root.Kill.STOPPING, state)

    # ----- subflows not waited for

    def submit_subflow(
        self, child: Execution, given: dict[str, Any], revision: int | None
    ) -> Execution:
        """Queue the child of a ``wait: false`` Subflow task: it waits for a slot like any
        execution (its trigger, labels and parent are set by the caller).

        Raises:
            NotFoundError: no such flow.
            FlowError: the flow is disabled.
            UsageError: an input is unknown, missing or of the wrong type.
        """
        with self.stores.records.connect() as store:
            stored = get_flow(store, child.namespace, child.flow_id, revision)
            if stored is None:
                raise NotFoundError(
                    f"Unable to find flow '{child.namespace}'.'{child.flow_id}' on this server"
                )
            loaded = self.parser.load_stored(stored)
            if loaded.flow.disabled:
                raise FlowError(f"Cannot execute disabled flow {stored.namespace}.{stored.id}")
            resolved = resolve_inputs(list(loaded.flow.inputs), given)
            child.inputs = self.secrets.mask_value(resolved)
            child.state = StateHistory(State.QUEUED, [(State.QUEUED, now())])
            child.flow_revision = stored.revision
            work = QueuedWork(
                execution_id=child.id,
                namespace=stored.namespace,
                flow_id=stored.id,
                revision=stored.revision,
                inputs=given,
                labels=child.labels,
                trigger=child.trigger,
                submitted=ts(child.state.start),
            )
            self._enqueue(store, loaded, child, work)
        with self._lock:
            self._wake.notify()
        if self.dispatch is not None:
            self.dispatch.wake()
        return child

    def running_ids(self) -> list[str]:
        """Ids of the executions this process runs now (subflows waited for included)."""
        return self.running.ids()

    # ----- the slots

    def _slot(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
            try:
                with self.stores.records.connect() as store:
                    work = take_next(store, self.owner, self._limit_of)
            except ExecutorError as exc:
                log.error("cannot read the queue", error=str(exc))
                self.on_error("queue", exc)
                work = None
            if work is None:
                with self._lock:
                    if not self._stopping:
                        self._wake.wait(_IDLE_POLL)
                continue
            self._run(work)

    def _run(self, work: QueuedWork) -> None:
        cancel = CancelScope()
        execution = root.execution_of(
            work, [(State.QUEUED, parse_ts(work.submitted)), (State.CREATED, now())]
        )
        again = self._runs_again(work.execution_id)
        if again is not None:  # a restart or a replay: as stored, with its task runs
            execution = again
        recorder = Recorder(
            self.stores.records,
            mask=self.secrets.mask_value,
            owner=self.owner,
            retry=root.store_retry(self.settings, self._stopped),
        )

        def run() -> None:
            try:
                root.run_flow(
                    self.settings,
                    self.flows.find(work.namespace, work.flow_id, work.revision),
                    work.inputs,
                    [LogContext(), recorder, *self.listeners],
                    backend=self._backend_now(),
                    execution=execution,
                    stores=self.stores,
                    secrets=self.secrets,
                    flow_source=self.flows,
                    cancel=cancel,
                    detach=self.submit_subflow,
                    running=self.running,
                    flow_repository=StoredFlowRepository(
                        self.stores.records,
                        DEFAULT_MAX_FLOW_BYTES,
                        self.settings.allow_host_options,
                    ),
                    inputs_resolved=again is not None,
                )
            except ExecutorError as exc:
                self.on_error("execution", exc)
                raise

        try:
            # held until the recorder has written the end: until then the run is not lost
            with self.running.holding(work.execution_id, cancel):
                root.run_recorded(execution, recorder, run, "server")
        finally:
            for listener in self.listeners:  # also an end run_flow never told (it raised)
                listener.execution_changed(execution)
            shutil.rmtree(self.uploads_dir / work.execution_id, ignore_errors=True)

    def _runs_again(self, execution_id: str) -> Execution | None:
        """The stored execution when it is a restart or a replay (``None``: a new one, or a
        store that cannot say: it then runs as submitted)."""
        try:
            with self.stores.records.connect() as store:
                stored = store.get_execution(execution_id).execution
        except ExecutorError:
            return None
        return stored if root.runs_again(stored) else None

    def _backend_now(self) -> Backend:
        """The engine backend, connected on first use (and again after it was unavailable)."""
        with self._lock:
            if self._backend is None:
                self._backend = root.backend_for(self.settings)
            return self._backend


def flow_labels(loaded: LoadedFlow) -> dict[str, str]:
    """The flow's own labels (a mapping, or Kestra's list of key/value)."""
    labels = loaded.flow.labels
    if isinstance(labels, dict):
        return {str(k): str(v) for k, v in labels.items()}
    if isinstance(labels, list):
        return {str(item.get("key")): str(item.get("value")) for item in labels}
    return {}
