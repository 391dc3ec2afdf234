"""Backfills of Schedule triggers: one execution per tick between ``start`` and ``end``.

A backfill is asked through Kestra's API (``PUT /api/v1/triggers`` with ``backfill: {start,
end, inputs, labels}``) or ``executor triggers backfill``, and kept in the trigger's row as JSON
(:class:`Backfill`). The scheduler moves it on at each pass (:func:`next_tick`): the next tick,
oldest first, is claimed (compare-and-set on the row, so a pause or a delete in between wins and
no tick is submitted twice) and submitted through the queue, only while the flow has fewer
executions queued or running than its ``concurrency.limit`` (or the server's slots): a backfill
of a year of hourly ticks never floods the queue. Each execution is labelled
``system.backfill: true`` (and with the backfill's labels), its ``trigger.date`` the tick's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from executor.errors import UsageError
from executor.flow.cron import Cron
from executor.model import iso

BACKFILL_LABEL = "system.backfill"
MAX_TICKS = 10_000  # a backfill longer than this is refused: say it in smaller pieces


class Backfill(BaseModel):
    """A backfill's request and progress, in Kestra's field names (plus the counts)."""

    model_config = ConfigDict(extra="forbid")

    start: datetime
    end: datetime
    inputs: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    currentDate: datetime | None = None  # the next tick to run; None once all have run
    paused: bool = False
    total: int = 0
    submitted: int = 0

    @property
    def finished(self) -> bool:
        return self.currentDate is None

    def to_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        for key in ("start", "end", "currentDate"):
            value = getattr(self, key)
            data[key] = iso(value) if value else None
        data["finished"] = self.finished
        return data

    def dumps(self) -> str:
        return self.model_dump_json()


def _labels(given: Any) -> dict[str, str]:
    """Kestra's labels: a mapping, or a list of ``{key, value}``."""
    if given is None:
        return {}
    if isinstance(given, dict):
        return {str(k): str(v) for k, v in given.items()}
    if isinstance(given, list) and all(isinstance(i, dict) and "key" in i for i in given):
        return {str(i["key"]): str(i.get("value")) for i in given}
    raise UsageError("backfill.labels must be a mapping or a list of {key, value}")


def new_backfill(request: dict[str, Any], cron: Cron, now: datetime) -> Backfill:
    """A backfill from Kestra's request body ``{start, end, inputs, labels}``.

    Raises:
        UsageError: a date is missing or not ISO-8601, ``end`` is before ``start``, or there
            are no ticks or too many between them (a 422, naming the field).
    """
    if not isinstance(request, dict):
        raise UsageError("backfill must be an object {start, end, inputs, labels}")
    unknown = set(request) - {
        "start",
        "end",
        "inputs",
        "labels",
        "currentDate",
        "paused",
        "previousNextExecutionDate",
    }
    if unknown:
        raise UsageError(f"backfill: unknown field(s) {sorted(unknown)}")
    if not request.get("start"):
        raise UsageError("backfill.start is required (an ISO-8601 date)")
    try:
        start = _aware(datetime.fromisoformat(str(request["start"]).replace("Z", "+00:00")))
        end_text = request.get("end")
        end = (
            _aware(datetime.fromisoformat(str(end_text).replace("Z", "+00:00")))
            if end_text
            else now
        )
    except ValueError as exc:
        raise UsageError(f"backfill: not an ISO-8601 date: {exc}") from None
    if end < start:
        raise UsageError(f"backfill.end ({iso(end)}) is before backfill.start ({iso(start)})")
    inputs = request.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise UsageError("backfill.inputs must be a mapping of input id to value")
    first = cron.next_after(start - timedelta(microseconds=1))
    total = count_ticks(cron, first, end)
    if total == 0:
        raise UsageError(f"backfill: the schedule has no tick between {iso(start)} and {iso(end)}")
    try:
        return Backfill(
            start=start,
            end=end,
            inputs=inputs,
            labels=_labels(request.get("labels")),
            currentDate=first,
            total=total,
        )
    except ValidationError as exc:  # pragma: no cover - the fields are checked above
        raise UsageError(f"backfill: {exc}") from None


def count_ticks(cron: Cron, first: datetime, end: datetime) -> int:
    """Ticks from ``first`` to ``end`` (both included).

    Raises:
        UsageError: more than :data:`MAX_TICKS`.
    """
    if first > end:
        return 0
    count = 1
    for tick in cron.ticks_after(first):
        if tick > end:
            break
        count += 1
        if count > MAX_TICKS:
            raise UsageError(
                f"backfill: more than {MAX_TICKS} ticks between the dates: ask for a shorter range"
            )
    return count


def next_tick(backfill: Backfill, cron: Cron) -> Backfill:
    """The backfill once its current tick is claimed."""
    assert backfill.currentDate is not None
    following = cron.next_after(backfill.currentDate)
    return backfill.model_copy(
        update={
            "currentDate": following if following <= backfill.end else None,
            "submitted": backfill.submitted + 1,
        }
    )


def loads(text: str | None) -> Backfill | None:
    return Backfill.model_validate_json(text) if text else None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
