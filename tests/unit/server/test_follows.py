"""Event streams: idle polls back off, and the open ones are counted against a cap."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from executor.server.errors import TooBusy
from executor.server.follows import Backoff, FollowSlots


def test_idle_polls_back_off_and_news_resets_them() -> None:
    """A quarter second, doubled while nothing happens, at most two; back at once on news."""
    polls = Backoff()
    assert [polls.idle() for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert polls.busy() == 0.25
    assert polls.idle() == 0.25


def test_streams_past_the_cap_are_refused() -> None:
    """The cap counts streams handed out; one more is TooBusy (503), naming the setting."""

    async def events() -> AsyncIterator[dict[str, str]]:
        yield {"id": "start", "data": "{}"}

    slots = FollowSlots(2)
    slots.response(events())
    slots.response(events())
    with pytest.raises(TooBusy, match="maxFollows"):
        slots.response(events())
    assert slots.open == 2
