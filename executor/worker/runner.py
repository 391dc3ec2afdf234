"""Run one execution of the server on this host: claim, fetch, run, report, upload.

Nothing is shared with the server but its API: the flow source and the inputs come with the
claim, FILE inputs and namespace files are downloaded into this worker's own home, records go
back through a ``RemoteSink``, output files are uploaded into the server's artifact store, and
this worker's copies are removed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import socket
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from executor import app as root
from executor.engine.api import Backend
from executor.errors import ExecutorError
from executor.flow.loader import LoadedFlow, load_flow_text
from executor.flow.walk import walk
from executor.log import LogContext
from executor.model import Execution, Level, LogLine, State, TaskRun
from executor.run.cancel import CancelScope, Running
from executor.settings import Settings
from executor.store.artifacts import Reader, attach_remote
from executor.store.db import ExecutionRecord, parse_ts
from executor.store.queue import QueuedWork
from executor.store.recorder import Recorder
from executor.store.workers import worker_owner
from executor.worker.client import WorkerClient
from executor.worker.flows import ServerFlows
from executor.worker.sink import RemoteSink
from executor.workspace.namespaces import NamespaceStore

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


class _Family:
    """Listens to a claimed execution's run: the subflows it starts belong to it."""

    def __init__(self, claimed: str, roots: dict[str, str], lock: threading.Lock) -> None:
        self.claimed, self.roots, self.lock = claimed, roots, lock

    def execution_changed(self, execution: Execution) -> None:
        with self.lock:
            self.roots.setdefault(execution.id, self.claimed)

    def task_changed(self, execution: Execution, task_run: TaskRun) -> None:
        pass

    def log(self, line: LogLine) -> None:
        pass


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
        self._claims: dict[str, tuple[int, Recorder]] = {}  # claimed id -> attempt, recorder
        self._roots: dict[str, str] = {}  # claimed execution or one of its subflows -> claimed
        attach_remote(settings.artifacts_dir, self._fetch_stored_file)

    def _fetch_stored_file(self, uri: str, dest: Path, reader: Reader | None) -> bool:
        """A file this worker's store lacks (another execution's output), from the server, as
        the execution that reads it: the server checks it is one this worker holds (or one of
        its subflows) and that it may read the file."""
        with self._lock:
            claimed = self._roots.get(reader.execution_id) if reader else None
            attempt, recorder = self._claims[claimed] if claimed else (0, None)
        if reader is None or claimed is None or recorder is None:
            return False  # nothing this worker runs reads it
        if reader.execution_id != claimed:
            recorder.flush()  # the server learns of the subflow from its records
        holder = {"execution": claimed, "worker": self.name, "attempt": attempt}
        return self.client.download(
            "/artifacts", dest, uri=uri, reader=reader.execution_id, **holder
        )

    def running(self) -> list[str]:
        return self._running.ids()

    def kill(self, execution_id: str, reason: str) -> None:
        root.kill_execution(execution_id, reason, running=self._running)

    def handle(self, execution_id: str) -> Outcome:
        """Claim the execution and, when the server says so, run it to its end."""
        if execution_id in self.running():  # a redelivery to the worker that runs it
            return Outcome("wait", self.wait_seconds, "this worker runs it")
        answer: dict[str, Any] = self.client.post(
            f"/executions/{execution_id}/claim", {"worker": self.name}
        )
        if answer["action"] != "run":
            wait = self.wait_seconds if answer["action"] == "wait" else 0.0
            return Outcome(answer["action"], wait, answer.get("note", ""))
        self._run_claimed(execution_id, answer)
        return Outcome("done")

    # ----- one claimed execution

    def _run_claimed(self, execution_id: str, answer: dict[str, Any]) -> None:
        attempt = int(answer["attempt"])
        # the server's rule on options that open the host holds on this host too (refused
        # when an older server does not say)
        settings = dataclasses.replace(
            self.settings, allow_host_options=answer.get("allowHostOptions") is True
        )
        part_bytes = max(int(answer.get("partBytes") or DEFAULT_PART_BYTES), 1)
        work = answer["work"]
        cancel = CancelScope()
        self._running.add(execution_id, cancel)
        queued = QueuedWork(execution_id=execution_id, **{k: work[k] for k in _WORK_FIELDS})
        execution = root.execution_of(
            queued, [(State(s), parse_ts(t)) for s, t in answer["histories"]]
        )

        def refused(message: str) -> None:
            log.warning("execution taken away", execution_id=execution_id, reason=message)
            cancel.cancel(State.KILLED, LOST_CLAIM)

        sink = RemoteSink(
            self.client,
            execution_id,
            self.name,
            attempt,
            refused,
            lambda ended: self._upload_outputs(execution_id, ended, attempt, part_bytes),
            max_bytes=part_bytes,
        )
        recorder = Recorder(
            self.settings.db_path,
            mask=self.secrets.mask_value,
            owner=worker_owner(self.name),
            sink=lambda: sink,
        )
        with self._lock:
            self._claims[execution_id] = (attempt, recorder)
            self._roots[execution_id] = execution_id

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
                answer["flow"]["source"],
                Path(f"{work['namespace']}.{work['flow_id']}@{work['revision']}"),
            )
            given = self._fetch_inputs(execution_id, attempt, work)
            self._fetch_namespace_files(loaded)
            root.run_flow(
                settings,
                loaded,
                given,
                [LogContext(), recorder, _Family(execution_id, self._roots, self._lock)],
                backend=self.engine,
                execution=execution,
                secrets=self.secrets,
                flow_source=ServerFlows(self.client),  # per run: a flow changed since is seen
                cancel=cancel,
                resumes=lambda paused: self._take_resume(execution_id, attempt, paused),
            )

        log.info("running", execution_id=execution_id, attempt=attempt, note=answer.get("note"))
        try:
            root.run_recorded(execution, recorder, run, "worker")
        finally:
            shutil.rmtree(self._uploads(execution_id), ignore_errors=True)
            with self._lock:
                self._running.discard(execution_id)
                self._claims.pop(execution_id, None)
                for member in [k for k, v in self._roots.items() if v == execution_id]:
                    del self._roots[member]
                if not self._running.ids():  # what it fetched of other executions: nobody reads it
                    shutil.rmtree(self.settings.artifacts_dir, ignore_errors=True)
                else:
                    shutil.rmtree(self._artifacts_of(execution), ignore_errors=True)

    def _take_resume(self, execution_id: str, attempt: int, paused: str) -> dict[str, str] | None:
        """A resume asked through the server for a Pause of this execution (or a subflow's)."""
        answer = self.client.post(
            f"/executions/{execution_id}/resume",
            {},
            worker=self.name,
            attempt=attempt,
            paused=paused,
        )
        inputs: dict[str, str] | None = answer["inputs"]
        return inputs

    def _uploads(self, execution_id: str) -> Path:
        return self.settings.home / "uploads" / execution_id

    def _fetch_inputs(
        self, execution_id: str, attempt: int, work: dict[str, Any]
    ) -> dict[str, str]:
        """Text inputs as given; each FILE input downloaded into this worker's home."""
        given: dict[str, str] = dict(work["inputs"])
        holder = {"worker": self.name, "attempt": attempt}
        for name, filename in work["file_inputs"].items():
            dest = self._uploads(execution_id) / name / Path(filename).name
            path = f"/executions/{execution_id}/inputs/{name}"
            if not self.client.download(path, dest, **holder):
                raise ExecutorError(f"input '{name}': the server no longer has its file")
            given[name] = str(dest)
        return given

    def _fetch_namespace_files(self, loaded: LoadedFlow) -> None:
        """Bring the namespaces the flow's tasks read files from into this worker's store."""
        wanted: set[str] = set()
        for visit in walk(loaded.flow):
            files = getattr(visit.task, "namespaceFiles", None)
            if files is not None and files.enabled:
                wanted.update(files.namespaces or [loaded.flow.namespace])
        store = NamespaceStore(self.settings.namespaces_dir)
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

    def _artifacts_of(self, execution: Execution | ExecutionRecord) -> Path:
        return self.settings.artifacts_dir.joinpath(
            *execution.namespace.split("."), execution.flow_id, "executions", execution.id
        )

    def _upload_outputs(
        self, claimed: str, ended: ExecutionRecord, attempt: int, part_bytes: int
    ) -> None:
        """Send every file an ended execution (this one, or a subflow's) left in this worker's
        artifact store to the server, each in parts the server's body limit lets through."""
        base = self._artifacts_of(ended)
        if not base.is_dir():
            return
        root_dir = self.settings.artifacts_dir
        for path in sorted(p for p in base.rglob("*") if p.is_file() and not p.is_symlink()):
            if path.name.startswith(".") and path.name.endswith(".part"):
                continue
            rel = path.relative_to(root_dir).as_posix()
            self._upload_file(path, f"/executions/{claimed}/artifacts/{rel}", attempt, part_bytes)

    def _upload_file(self, path: Path, url: str, attempt: int, part_bytes: int) -> None:
        """One file, part after part; the last part carries the whole file's sha256."""
        digest = hashlib.sha256()
        with path.open("rb") as data:
            size = os.fstat(data.fileno()).st_size
            offset = 0
            while True:
                part = data.read(min(part_bytes, size - offset))
                if not part and offset < size:
                    raise ExecutorError(f"{path} shrank while it was uploaded")
                digest.update(part)
                last = offset + len(part) >= size
                params: dict[str, Any] = {"worker": self.name, "attempt": attempt}
                params.update(offset=offset, size=size)
                if last:
                    params["sha256"] = digest.hexdigest()
                self.client.upload(url, part, **params)
                offset += len(part)
                if last:
                    return
