"""Readiness probes of what a server depends on: the record store, the broker, the engine.

Each probe is a plain blocking call bounded by its own timeout (a connect and one question), so
a dependency that is down or silent fails it within seconds; the server runs them off its event
loop (``server.health``). They sit beside ``app.py``, the composition root, because they reach
the store and the engine the way the rest of the executor does, through ``store/`` and
``engine/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from executor.errors import ExecutorError
from executor.settings import Settings

if TYPE_CHECKING:
    from executor.store.local import LocalRecords

Probe = Callable[[], dict[str, Any]]


class BrokerUnavailable(ExecutorError):
    """The broker (Redis) does not answer."""


def store_probe(records: LocalRecords, timeout: float) -> Probe:
    """Connect to the record store and run one query."""
    return lambda: records.ping(timeout)


def engine_probe(settings: Settings, timeout: float) -> Probe:
    """Ask the settings' engine who it is (its address and version)."""
    from executor.engine.backends import describe_engine

    return lambda: describe_engine(settings, timeout)


def broker_probe(url: str, timeout: float) -> Probe:
    """PING the broker and read its version (``redis://`` URLs)."""

    def probe() -> dict[str, Any]:
        import redis

        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout, retry_on_timeout=False
        )
        try:
            client.ping()
            info = client.info("server")
        except redis.RedisError as exc:
            where = client.connection_pool.connection_kwargs
            address = f"{where.get('host', '?')}:{where.get('port', '?')}"
            raise BrokerUnavailable(f"the broker at {address} does not answer ({exc})") from None
        finally:
            client.close()
        return {
            "version": str(info.get("redis_version", "")),
            "uptimeSeconds": info.get("uptime_in_seconds"),
        }

    return probe
