"""Event streams (``follow``) that cost what they must: a cap on how many are open, and polls
that slow down while nothing happens.

Every follow holds a connection and polls the store. :class:`FollowSlots` counts the open ones
(``maxFollows``; one more is refused with 503 before its stream starts) and :class:`Backoff`
spaces the polls of an idle one from a quarter second up to two seconds, back to a quarter
second as soon as something new is seen.
"""

from __future__ import annotations

from collections.abc import AsyncIterable

from sse_starlette import EventSourceResponse
from starlette.types import Receive, Scope, Send

from executor.server.errors import TooBusy

FIRST_POLL_SECONDS = 0.25
IDLE_POLL_SECONDS = 2.0
PING_SECONDS = 15


class Backoff:
    """The waits between polls: doubled after each poll that found nothing new."""

    def __init__(self, first: float = FIRST_POLL_SECONDS, most: float = IDLE_POLL_SECONDS):
        self.first = first
        self.most = most
        self._next = first

    def idle(self) -> float:
        """The wait after a poll that found nothing new."""
        wait, self._next = self._next, min(self._next * 2, self.most)
        return wait

    def busy(self) -> float:
        """The wait after a poll that found something: the shortest again."""
        self._next = self.first
        return self.first


class FollowSlots:
    """How many event streams are open; used on the event loop only (no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def response(self, events: AsyncIterable[dict[str, str]]) -> EventSourceResponse:
        """The stream of ``events``, counted while it is open.

        Raises:
            TooBusy: ``limit`` streams are open already (503).
        """
        if self.open >= self.limit:
            raise TooBusy(
                f"{self.open} event streams are open, the most this server keeps (maxFollows);"
                " close one or try again later"
            )
        self.open += 1
        return _Counted(self, events)


class _Counted(EventSourceResponse):
    """A stream that gives its slot back however it ends (sent, failed, client gone)."""

    def __init__(self, slots: FollowSlots, events: AsyncIterable[dict[str, str]]) -> None:
        super().__init__(events, ping=PING_SECONDS)
        self._slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slots.open -= 1
