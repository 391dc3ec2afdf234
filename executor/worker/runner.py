"""Run one execution of the server on this host: claim, fetch, run, report, upload.

Nothing is shared with the server but its API: the flow source and the inputs come with the
claim, FILE inputs and the namespace files a workspace is seeded with are downloaded into this
worker's own home, and every store the run reaches is the server's, through its API
(``app.services`` with the held run: :mod:`executor.worker.remote`). Records go back through a
``RemoteSink``, output files are uploaded into the server's artifact store as each execution
ends, and this worker's copies are removed.
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from executor import app as root
from executor.engine.api import Backend
from executor.errors import ExecutorError
from executor.flow.loader import LoadedFlow, load_flow_text
from executor.flow.walk import walk
from executor.log import LogContext
from executor.model import Level, LogLine, State, StateHistory
from executor.model.from_json import execution_from_json
from executor.run.cancel import CancelScope, Running
from executor.settings import Settings
from executor.store.api import Held
from executor.store.files.namespaces import LocalNamespaceStore
from executor.store.queue import QueuedWork
from executor.store.recorder import Recorder
from executor.store.records import parse_ts
from executor.store.workers import worker_owner
from executor.worker.client import WorkerClient
from executor.worker.flows import ServerFlows
from executor.worker.protocol import ClaimAnswer, FlowSource, Work
from executor.worker.remote import RemoteArtifacts

log = structlog.get_logger(__name__)

DEFAULT_PART_BYTES = 8 * 1024 * 1024
_WORK_FIELDS = ("namespace", "flow_id", "revision", "inputs", "labels", "trigger", "submitted")
LOST_CLAIM = "this worker no longer runs the execution (the server gave it to another)"


@dataclass(frozen=True)
class Outcome:
    """What the broker's message becomes: done (ack), or asked again in ``wait`` seconds."""

    action: str
    wait: float = 0.0
    note: str = ""


class ExecutionRunner:
    """Runs claimed executions on this host's engine; thread-safe (one per slot at once).

    Args:
        settings: this worker's own settings (its ``EXECUTOR_HOME``, its ``DOCKER_HOST``).
        client: the server.
        name: this worker's name.
        engine: this host's engine.
        wait_seconds: how soon to ask again when another live worker runs the execution.
    """

    def __init__(
        self,
        settings: Settings,
        client: WorkerClient,
        name: str,
        engine: Backend,
        engine_id: str,
        wait_seconds: float = 10.0,
    ) -> None:
        self.settings = settings
        self.client = client
        self.name = name
        self.engine = engine
        self.engine_id = engine_id
        self.wait_seconds = wait_seconds
        self.secrets = root.secrets_for(settings)
        self._lock = threading.Lock()
        self._running = Running()

    def running(self) -> list[str]:
        return self._running.ids()

    def kill(self, execution_id: str, reason: str) -> None:
        root.kill_execution(execution_id, reason, running=self._running)

    def handle(self, execution_id: str) -> Outcome:
        """Claim the execution and, when the server says so, run it to its end."""
        if execution_id in self.running():  # a redelivery to the worker that runs it
            return Outcome("wait", self.wait_seconds, "this worker runs it")
        answer = self.client.claim(execution_id, self.name)
        if answer.action != "run" or answer.work is None or answer.flow is None:
            wait = self.wait_seconds if answer.action == "wait" else 0.0
            return Outcome(answer.action, wait, answer.note)
        self._run_claimed(execution_id, answer, answer.work, answer.flow)
        return Outcome("done")

    # ----- one claimed execution

    def _run_claimed(
        self, execution_id: str, answer: ClaimAnswer, work: Work, flow: FlowSource
    ) -> None:
        attempt = answer.attempt
        # the server's rule on options that open the host holds on this host too (refused
        # when an older server does not say)
        settings = dataclasses.replace(
            self.settings, allow_host_options=answer.allow_host_options is True
        )
        cancel = CancelScope()
        self._running.add(execution_id, cancel)
        queued = QueuedWork(
            execution_id=execution_id,
            namespace=work.namespace,
            flow_id=work.flow_id,
            revision=work.revision,
            inputs=work.inputs,
            labels=work.labels,
            trigger=work.trigger,
            submitted=work.submitted,
        )
        history = [(State(s), parse_ts(t)) for s, t in answer.histories]
        execution = root.execution_of(queued, history)
        if answer.execution is not None:  # a restart or a replay: as the server holds it
            execution = execution_from_json(answer.execution)
            execution.state = StateHistory(State.CREATED, history)

        def refused(message: str) -> None:
            log.warning("execution taken away", execution_id=execution_id, reason=message)
            cancel.cancel(State.KILLED, LOST_CLAIM)

        recorders: list[Recorder] = []

        def flush() -> None:  # the server learns of a subflow from its records
            for recorder in recorders:
                recorder.flush()

        held = Held(
            server=self.client.url,
            token=self.client.token,
            worker=self.name,
            execution_id=execution_id,
            attempt=attempt,
            part_bytes=max(answer.part_bytes or DEFAULT_PART_BYTES, 1),
            on_refused=refused,
            flush=flush,
        )
        stores = root.services(settings, held)
        recorder = Recorder(
            stores.records, mask=self.secrets.mask_value, owner=worker_owner(self.name)
        )
        recorders.append(recorder)

        def run() -> None:
            recorder.log(
                LogLine(
                    datetime.now(UTC),
                    execution_id,
                    None,
                    None,
                    None,
                    "executor",
                    Level.INFO,
                    f"attempt {attempt} on worker {self.name} (host {socket.gethostname()},"
                    f" engine {self.engine_id})",
                )
            )
            loaded = load_flow_text(
                flow.source, Path(f"{work.namespace}.{work.flow_id}@{work.revision}")
            )
            given = self._fetch_inputs(execution_id, attempt, work)
            self._fetch_namespace_files(loaded, stores.host.namespaces)
            root.run_flow(
                settings,
                loaded,
                given,
                [LogContext(), recorder],
                backend=self.engine,
                execution=execution,
                stores=stores,
                secrets=self.secrets,
                flow_source=ServerFlows(self.client),  # per run: a flow changed since is seen
                cancel=cancel,
                inputs_resolved=answer.execution is not None,
            )

        log.info("running", execution_id=execution_id, attempt=attempt, note=answer.note)
        try:
            root.run_recorded(execution, recorder, run, "worker")
        finally:
            shutil.rmtree(self._uploads(execution_id), ignore_errors=True)
            with self._lock:
                self._running.discard(execution_id)
                idle = not self._running.ids()
            copies = stores.host.artifacts
            if isinstance(copies, RemoteArtifacts):  # they are on the server now
                if idle:  # what it fetched of other executions too: nobody reads it
                    copies.discard_all()
                else:
                    copies.discard(execution.namespace, execution.flow_id, execution.id)

    def _uploads(self, execution_id: str) -> Path:
        return self.settings.home / "uploads" / execution_id

    def _fetch_inputs(self, execution_id: str, attempt: int, work: Work) -> dict[str, str]:
        """Text inputs as given; each FILE input downloaded into this worker's home."""
        given: dict[str, str] = {k: str(v) for k, v in work.inputs.items()}
        holder = {"worker": self.name, "attempt": attempt}
        for name, filename in work.file_inputs.items():
            dest = self._uploads(execution_id) / name / Path(filename).name
            path = f"/executions/{execution_id}/inputs/{name}"
            if not self.client.download(path, dest, **holder):
                raise ExecutorError(f"input '{name}': the server no longer has its file")
            given[name] = str(dest)
        return given

    def _fetch_namespace_files(self, loaded: LoadedFlow, store: LocalNamespaceStore) -> None:
        """Bring the namespaces the flow's workspaces are seeded with into this worker's store
        (a workspace seeds from files on its own host; tasks read the server's)."""
        wanted: set[str] = set()
        for visit in walk(loaded.flow):
            files = getattr(visit.task, "namespaceFiles", None)
            if files is not None and files.enabled:
                wanted.update(files.namespaces or [loaded.flow.namespace])
        for namespace in sorted(wanted):
            with tempfile.TemporaryDirectory(prefix="executor-ns-") as tmp:
                archive = Path(tmp) / "files.tar"
                tree = Path(tmp) / "files"
                tree.mkdir()
                if self.client.download(f"/namespaces/{namespace}/archive", archive):
                    with tarfile.open(archive) as tar:
                        tar.extractall(tree, filter="data")
                elif not store.exists(namespace):
                    continue  # none here either: the task says so as it would locally
                # exactly the server's files (none when it has none), never an older run's
                store.push(namespace, tree, replace=True)
