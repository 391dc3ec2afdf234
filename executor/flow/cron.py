"""Cron expressions as Kestra's Schedule trigger reads them, over ``croniter``.

Kestra (cron-utils) takes 5 fields (minute precision), or 6 with the seconds first when the
trigger says ``withSeconds: true``; Sunday is 0 or 7; and the nicknames ``@yearly``,
``@annually``, ``@monthly``, ``@weekly``, ``@daily``, ``@midnight`` and ``@hourly``.

Times are evaluated on the trigger's wall clock (``timezone``, default UTC). Across a change of
daylight saving time this follows the rule of Vixie cron, which users of cron know:
- a wall time that does not exist (02:30 when clocks jump from 02:00 to 03:00) runs at the first
  instant after the jump (03:00);
- a wall time that happens twice (02:30 when clocks go back from 03:00 to 02:00) runs once, the
  first time, for an expression with fixed hours (``30 2 * * *``); an expression whose hour is
  ``*`` (every hour, minute or second) runs in both passes, as elapsed time goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_HOUR = 1  # croniter's expanded fields: minute, hour, day of month, month, day of week[, second]


def zone(name: str) -> ZoneInfo:
    """A time zone by its tz database id (raises ValueError naming it)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use a tz database id like 'Europe/Paris')"
        ) from None


@dataclass(frozen=True)
class Cron:
    """One schedule: ``expression`` read with or without seconds, in ``timezone``.

    Raises:
        ValueError: the expression or the time zone is invalid (a readable message).
    """

    expression: str
    with_seconds: bool = False
    timezone: str = "UTC"
    _fields: str = field(init=False, repr=False, compare=False)
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _fixed_hours: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        text = " ".join(self.expression.split())
        expanded = NICKNAMES.get(text.lower())
        if expanded is not None:
            text = f"0 {expanded}" if self.with_seconds else expanded
        wanted = 6 if self.with_seconds else 5
        if len(text.split()) != wanted:
            hint = " (withSeconds: true takes 6, the seconds first)" if wanted == 5 else ""
            raise ValueError(
                f"invalid cron expression {self.expression!r}: {wanted} fields expected, "
                f"got {len(text.split())}{hint}"
            )
        try:
            parsed = croniter(text, second_at_beginning=self.with_seconds)
        except CroniterError as exc:
            raise ValueError(f"invalid cron expression {self.expression!r}: {exc}") from None
        object.__setattr__(self, "_fields", text)
        object.__setattr__(self, "_zone", zone(self.timezone))
        object.__setattr__(self, "_fixed_hours", parsed.expanded[_HOUR] != ["*"])

    def next_after(self, instant: datetime) -> datetime:
        """The first tick strictly after ``instant``, in the schedule's time zone."""
        return next(self.ticks_after(instant))

    def ticks_after(self, instant: datetime) -> Iterator[datetime]:
        """Every tick strictly after ``instant``, in order, in the schedule's time zone."""
        start = instant.astimezone(self._zone)
        it = croniter(self._fields, start, second_at_beginning=self.with_seconds, ret_type=datetime)
        while True:
            tick: datetime = it.get_next(datetime)
            if tick.fold == 1 and self._fixed_hours and _repeated(tick):
                continue  # the wall time already ran before the clocks went back
            yield tick

    def previous_before(self, instant: datetime) -> datetime | None:
        """The last tick strictly before ``instant`` (``None`` when there is none)."""
        start = instant.astimezone(self._zone)
        it = croniter(self._fields, start, second_at_beginning=self.with_seconds, ret_type=datetime)
        try:
            tick: datetime = it.get_prev(datetime)
        except CroniterError:
            return None
        if tick.fold == 1 and self._fixed_hours and _repeated(tick):
            return tick.replace(fold=0)
        return tick


def _repeated(tick: datetime) -> bool:
    """Whether this wall time also existed earlier, before the clocks went back."""
    first = tick.replace(fold=0)
    return first.astimezone(UTC) != tick.astimezone(UTC)


def to_utc(moment: datetime) -> datetime:
    """An aware instant in UTC (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
