"""Acknowledgements that outlive a broker outage.

A message is acknowledged when its execution ended (``acks_late``). When Redis is away at that
moment, Celery logs "Couldn't ack ..." and moves on, but kombu's Redis channel still counts the
message as delivered and not acknowledged. The channel's prefetch window (one message per slot)
stays full, so the consumer never asks Redis for a message again; and since it no longer polls,
it never notices that Redis is back. The worker heartbeats, idle, while executions stay QUEUED.

:func:`patient_request` gives the worker's task a Celery ``Request`` that acknowledges such a
message again, with backoff, until the broker takes it. The window then frees and the consumer
polls again (it reconnects on its own: its old connection died with Redis). The message itself
may be long gone (a Redis restarted empty): acknowledging it only clears what the channel, and
Redis if it kept its data, still remember of it.

Celery acknowledges on its event loop's thread (the consumer's), never beside it: the retries
run there too, as timers of that loop, so nothing touches the channel from two threads.
"""

from __future__ import annotations

from typing import Any

import structlog
from celery.worker.request import Request
from kombu.asynchronous import get_event_loop

log = structlog.get_logger(__name__)

FIRST_CHECK_SECONDS = 1.0  # after Celery's own attempt, which is queued on the same loop
RETRY_SECONDS = 0.5
RETRY_MAX_SECONDS = 5.0

Errors = tuple[type[BaseException], ...]


def ack_later(loop: Any, message: Any, errors: Errors, wait: float = RETRY_SECONDS) -> None:
    """On the event loop's thread: acknowledge ``message`` unless done, again after ``wait``
    seconds (doubling up to :data:`RETRY_MAX_SECONDS`) while the broker cannot be reached."""
    if message.acknowledged:
        return
    if getattr(message.channel, "closed", False):  # the consumer reconnected: its new channel
        log.info("acknowledgement dropped with its channel", delivery_tag=message.delivery_tag)
        return  # owes nothing; Redis may deliver the message again (the server says: drop)
    try:
        message.ack()
    except errors as exc:
        if wait == RETRY_SECONDS:
            log.warning(
                "the broker did not take an acknowledgement; trying again until it answers",
                delivery_tag=message.delivery_tag,
                error=str(exc),
            )
        loop.call_later(wait, ack_later, loop, message, errors, min(wait * 2, RETRY_MAX_SECONDS))
    except Exception as exc:  # the channel was closed meanwhile: a new one has no such debt
        log.info("acknowledgement dropped", delivery_tag=message.delivery_tag, error=str(exc))
    else:
        log.info("acknowledged once the broker answered", delivery_tag=message.delivery_tag)


def patient_request() -> type[Any]:
    """A Celery ``Request`` class whose acknowledgement is retried until the broker takes it."""

    class PatientRequest(Request):  # type: ignore[misc]
        def acknowledge(self) -> None:
            if self.acknowledged:
                return
            super().acknowledge()  # Celery's own (queued on its loop), with its bookkeeping
            loop: Any = get_event_loop()  # kombu's Hub: its methods are not typed
            if loop is None:  # no event loop: Celery acknowledged in this thread, or not
                return
            message, errors = self.message, tuple(self.connection_errors)
            # the loop's timers are its own: set one from its thread
            loop.call_soon(
                lambda: loop.call_later(
                    FIRST_CHECK_SECONDS, ack_later, loop, message, errors, RETRY_SECONDS
                )
            )

    return PatientRequest
