"""``executor worker``: a Celery consumer on this host, with a heartbeat to the server.

Each slot is a Celery thread that takes one execution at a time from the queues this worker
serves (its ``--queue`` names and its ``--label`` names: a flow whose tasks ask for
``workerGroup.key: gpu`` lands on a worker labelled ``gpu``). Messages are acknowledged when the
execution ended, so a worker killed mid-run leaves its message to be delivered again.

The heartbeat says who this worker is (host, engine id, slots, what it runs) and brings back
kills asked through the server's API.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from executor import app as root
from executor.broker import RUN_TASK, celery_app
from executor.errors import ExecutorError, ServerError
from executor.settings import Settings
from executor.store.records import ts
from executor.worker.acks import patient_request
from executor.worker.client import WorkerClient
from executor.worker.protocol import Heartbeat as HeartbeatBody
from executor.worker.runner import ExecutionRunner

log = structlog.get_logger(__name__)

KILLED_REASON = "killed through the API"


@dataclass(frozen=True)
class WorkerOptions:
    """How ``executor worker`` was started."""

    broker: str
    server: str
    queues: tuple[str, ...]
    labels: tuple[str, ...]
    slots: int
    name: str
    heartbeat_seconds: float
    token: str  # the worker credential the server's workerTokens hold


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Heartbeat:
    """Tells the server every few seconds that this worker lives, and what it runs."""

    def __init__(
        self, client: WorkerClient, runner: ExecutionRunner, info: HeartbeatBody, every: float
    ) -> None:
        self.client = client
        self.runner = runner
        self.info = info
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def beat(self) -> None:
        """One heartbeat; kills it brings back are done at once."""
        body = self.info.model_copy(update={"running": self.runner.running()})
        try:
            answer = self.client.heartbeat(body)
        except ServerError as exc:
            log.warning("heartbeat not delivered", error=exc.message)
            return
        for execution_id in answer.kill:
            self.runner.kill(execution_id, KILLED_REASON)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.beat()


def serve(settings: Settings, options: WorkerOptions, announce: Callable[[str], None]) -> None:
    """Connect to this host's engine and the server, then consume until stopped.

    ``announce`` shows the one line that says the worker is ready.

    Raises:
        EngineUnavailable: this host's engine does not answer.
        ServerError: the server cannot be reached or refuses the credentials.
    """
    engine = root.backend_for(settings)
    engine_id = engine.engine_id()
    client = WorkerClient(options.server, token=options.token)
    runner = ExecutionRunner(settings, client, options.name, engine, engine_id)
    queues = list(dict.fromkeys([*options.queues, *options.labels]))
    info = HeartbeatBody(
        name=options.name,
        host=socket.gethostname(),
        engine_id=engine_id,
        queues=queues,
        labels=list(options.labels),
        slots=options.slots,
        running=[],
        started=ts(datetime.now(UTC)),
    )
    client.heartbeat(info)  # wrong URL or credentials: say so now
    app: Any = celery_app(options.broker, settings.broker_visibility_timeout)

    def run_execution(task: Any, execution_id: str) -> None:
        try:
            outcome = runner.handle(execution_id)
        except ExecutorError as exc:  # the server is away: ask again later
            log.warning("cannot claim", execution_id=execution_id, error=str(exc))
            raise task.retry(countdown=runner.wait_seconds) from None
        if outcome.action == "wait":
            raise task.retry(countdown=outcome.wait)
        if outcome.action == "drop":
            log.info("dropped", execution_id=execution_id, note=outcome.note)

    app.task(
        name=RUN_TASK,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        max_retries=None,
        Request=patient_request(),  # acknowledged even after a broker outage
    )(run_execution)
    heartbeat = Heartbeat(client, runner, info, options.heartbeat_seconds)
    heartbeat.start()
    announce(
        f"executor worker {options.name}: engine {engine_id[:17]} at "
        f"{settings.docker_host or 'the local socket'}, {options.slots} slot(s), queues "
        f"{', '.join(queues)}; server {options.server}; Ctrl-C stops it"
    )
    try:
        app.Worker(
            hostname=f"executor@{options.name}",
            queues=queues,
            concurrency=options.slots,
            pool="threads",
            loglevel="WARNING",
            without_gossip=True,
            without_mingle=True,
            without_heartbeat=True,
            redirect_stdouts=False,
            quiet=True,
        ).start()
    finally:
        heartbeat.stop()
