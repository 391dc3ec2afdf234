"""What the routes share: the app's settings, queue and a store connection per request."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request

from executor.server.config import ServerConfig
from executor.server.follows import FollowSlots
from executor.server.queue import ExecutionQueue
from executor.settings import Settings
from executor.store.db import Store
from executor.store.local import LocalServices

TENANT_PREFIX = "/api/v1/main/"


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def config_of(request: Request) -> ServerConfig:
    config: ServerConfig = request.app.state.config
    return config


def queue_of(request: Request) -> ExecutionQueue:
    queue: ExecutionQueue = request.app.state.queue
    return queue


def follows_of(request: Request) -> FollowSlots:
    """The open event streams, counted against ``maxFollows``."""
    follows: FollowSlots = request.app.state.follows
    return follows


def tenant_of(request: Request) -> str | None:
    """``main`` when the client used Kestra 0.22+'s tenant prefix, else ``None``."""
    return "main" if request.url.path.startswith(TENANT_PREFIX) else None


def stores_of(request: Request) -> LocalServices:
    """The server's stores, built once by ``app.py`` (``ExecutionQueue.stores``)."""
    stores: LocalServices = request.app.state.stores
    return stores


def open_store(request: Request) -> Store:
    """A store connection, opened in the thread that uses it (``with open_store(r) as s``)."""
    return stores_of(request).records.connect()


def worker_lapse(request: Request) -> timedelta:
    """How long a worker may stay silent before it counts as lost, on this server (longer
    during the grace a just-started server gives its workers)."""
    dispatch = queue_of(request).dispatch
    if dispatch is None:
        return timedelta(seconds=config_of(request).worker_lapse)
    return dispatch.judging_lapse()
