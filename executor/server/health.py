"""``/health``, ``/health/liveness`` and ``/health/readiness``: what an orchestrator probes.

The shape is Kestra's (Micronaut's management endpoints): ``{"name": "executor", "status":
"UP"}``, 200 when UP and 503 when DOWN, and for readiness one entry per dependency under
``details``, each ``{"name", "status", "details"}``.

- Liveness (``/health`` and ``/health/liveness``) only says the server's event loop answers: it
  never looks at a dependency, so a database that is down makes the server not ready, never
  restarted (Kestra moved its probes off ``/health`` for that reason in 0.22).
- Readiness checks the record store, and the broker (with ``--broker``) or else the Docker
  engine (the server's own slots use it). Each check runs in a thread of its own, never on the
  event loop, bounded by a short timeout; a check still running from an earlier probe is waited
  for again rather than started twice, and answers are reused for a second, so a flood of probes
  costs at most one thread per dependency.

All three are reachable without credentials (an orchestrator's probe has none). When users or
tokens are configured, readiness shows its per-dependency details (addresses, versions, errors)
only to a caller with valid credentials; others get the status alone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from executor import probes
from executor.errors import ExecutorError
from executor.server.auth import authorized
from executor.server.config import CHECK_SECONDS, ServerConfig
from executor.settings import Settings
from executor.store.local import LocalRecords

NAME = "executor"
REUSE_SECONDS = 1.0  # a readiness answer serves the probes of the next second

Status = Literal["UP", "DOWN"]

router = APIRouter(tags=["health"], include_in_schema=False)


@dataclass(frozen=True)
class Component:
    """One dependency's answer."""

    name: str
    status: Status
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "details": self.details}


@dataclass(frozen=True)
class Report:
    """Every dependency's answer; UP only when all are."""

    components: tuple[Component, ...]

    @property
    def status(self) -> Status:
        return "UP" if all(c.status == "UP" for c in self.components) else "DOWN"

    def to_json(self, with_details: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"name": NAME, "status": self.status}
        if with_details:
            body["details"] = {c.name: c.to_json() for c in self.components}
        return body


class Readiness:
    """Runs the readiness checks off the event loop, one thread per dependency at most.

    Args:
        checks: dependency name -> a blocking call that returns details or raises.
        timeout: how long one probe waits for a check.
    """

    def __init__(
        self,
        checks: dict[str, probes.Probe],
        timeout: float = CHECK_SECONDS,
        on_error: Callable[[str, BaseException], None] = lambda source, exc: None,
    ) -> None:
        self.checks = checks
        self.timeout = timeout
        self.on_error = on_error  # counts a failed check's store or engine error
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._running: dict[str, concurrent.futures.Future[dict[str, Any]]] = {}
        self._last: tuple[float, Report] | None = None
        self._lock: asyncio.Lock | None = None

    @classmethod
    def for_server(
        cls,
        settings: Settings,
        records: LocalRecords,
        config: ServerConfig,
        on_error: Callable[[str, BaseException], None] = lambda source, exc: None,
    ) -> Readiness:
        """The store always; the broker with ``--broker``, else the engine the slots use."""
        seconds = config.readiness_timeout
        checks = {"store": probes.store_probe(records, seconds)}
        if config.broker:
            checks["broker"] = probes.broker_probe(config.broker, seconds)
        else:
            checks["engine"] = probes.engine_probe(settings, seconds)
        return cls(checks, seconds, on_error)

    async def report(self) -> Report:
        """Every check's answer (the last one when it is under a second old)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # concurrent probes share one round of checks
            if self._last is not None and time.monotonic() - self._last[0] < REUSE_SECONDS:
                return self._last[1]
            answers = await asyncio.gather(*(self._check(name) for name in self.checks))
            report = Report(tuple(answers))
            self._last = (time.monotonic(), report)
            return report

    async def _check(self, name: str) -> Component:
        running = self._running.get(name)
        if running is None or running.done():
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=len(self.checks), thread_name_prefix="readiness"
                )
            running = self._pool.submit(self.checks[name])
            running.add_done_callback(self._count_error)  # once per call, even if late
            self._running[name] = running
        answer = asyncio.wrap_future(running)
        answer.add_done_callback(_retrieved)
        # asyncio.wait leaves the check running past the timeout: the next probe waits for it
        done, _ = await asyncio.wait({answer}, timeout=self.timeout)
        if not done:
            return Component(name, "DOWN", {"error": f"no answer within {self.timeout:g} s"})
        try:
            details = answer.result()
        except ExecutorError as exc:
            return Component(name, "DOWN", {"error": str(exc)})
        except Exception as exc:  # a check's own bug still answers, DOWN, with what it was
            return Component(name, "DOWN", {"error": f"{type(exc).__name__}: {exc}"})
        return Component(name, "UP", details)

    def _count_error(self, call: concurrent.futures.Future[dict[str, Any]]) -> None:
        error = None if call.cancelled() else call.exception()
        if isinstance(error, ExecutorError):
            self.on_error("readiness", error)


def _retrieved(answer: asyncio.Future[dict[str, Any]]) -> None:
    """Mark a late answer's error as seen (it was reported DOWN already, or will be)."""
    if not answer.cancelled():
        answer.exception()


def _alive() -> JSONResponse:
    return JSONResponse({"name": NAME, "status": "UP"})


@router.get("/health")
async def health() -> JSONResponse:
    """Liveness: the server answers (dependencies are readiness's business)."""
    return _alive()


@router.get("/health/liveness")
async def liveness() -> JSONResponse:
    """Liveness, at Micronaut's (and Kestra's Helm chart's) path."""
    return _alive()


@router.get("/health/readiness")
async def readiness(request: Request) -> JSONResponse:
    """UP (200) when the store and the broker or engine answer, DOWN (503) otherwise."""
    checker: Readiness = request.app.state.readiness
    report = await checker.report()
    config: ServerConfig = request.app.state.config
    shown = authorized(config, request.headers.get("authorization"))
    return JSONResponse(report.to_json(shown), status_code=200 if report.status == "UP" else 503)
