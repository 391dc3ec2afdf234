"""Health and metrics wired into the app: routes, the queue's listener, the error counts."""

from __future__ import annotations

from fastapi import FastAPI

from executor.server import health, metrics
from executor.server.config import ServerConfig
from executor.server.queue import ExecutionQueue
from executor.settings import Settings


def install(app: FastAPI, queue: ExecutionQueue, settings: Settings, config: ServerConfig) -> None:
    """Mount ``/health*``, ``/metrics`` and ``/prometheus``, and start counting.

    ``app.state.metrics`` is the :class:`~executor.server.metrics.ServerMetrics` (the workers'
    records and the error handlers report to it); ``app.state.readiness`` runs the checks.
    """
    counted = metrics.ServerMetrics(queue)
    app.state.metrics = counted
    app.state.readiness = health.Readiness.for_server(
        settings, queue.stores.records, config, counted.error
    )
    queue.listeners.append(counted.listener())
    queue.on_error = counted.error
    app.include_router(health.router)
    app.include_router(metrics.router)
