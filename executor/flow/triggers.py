"""Kestra's flow triggers and flow-level ``concurrency`` as pydantic models.

Acted on in server mode (``executor server``): ``Schedule`` (``server/schedules.py``), ``Webhook``
(``server/api/webhooks.py``), ``Flow`` (``flow/flow_trigger.py``, ``server/flow_triggers.py``)
and ``concurrency`` (``server/queue.py``). ``executor run`` runs a flow once and ignores them.
Every property Kestra 1.x gives these triggers is accepted; what is not acted on is listed in the
README ("Schedules and triggers"). A trigger of any other type (plugins' polling and realtime
triggers) is accepted and not acted on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from executor import names
from executor.flow.cron import Cron, zone
from executor.flow.flow_trigger import FLOW_TRIGGER_TYPES, STATE_NAMES, FlowTrigger

SCHEDULE_TYPES = (
    "io.kestra.plugin.core.trigger.Schedule",
    "io.kestra.core.models.triggers.types.Schedule",
)
WEBHOOK_TYPES = (
    "io.kestra.plugin.core.trigger.Webhook",
    "io.kestra.core.models.triggers.types.Webhook",
)
TRIGGER_ID_PATTERN = names.TASK_ID


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TriggerBase(_Strict):
    """What every Kestra trigger has (AbstractTrigger, 0.x to 1.x)."""

    id: str = Field(pattern=TRIGGER_ID_PATTERN)
    type: str
    description: str | None = None
    conditions: list[dict[str, Any]] | None = None
    disabled: bool = False
    workerGroup: dict[str, Any] | None = None
    workerSelector: dict[str, Any] | None = None
    logLevel: str | None = None
    minLogLevel: str | None = None
    labels: dict[str, Any] | list[dict[str, Any]] | None = None
    stopAfter: list[Literal[STATE_NAMES]] | None = None  # type: ignore[valid-type]
    logToFile: bool = False
    failOnTriggerError: bool = False
    allowConcurrent: bool = False
    assets: dict[str, Any] | None = None
    when: str | None = None

    def label_map(self) -> dict[str, str]:
        """The trigger's labels (a mapping or Kestra's list of key/value), as text."""
        if isinstance(self.labels, dict):
            return {str(k): str(v) for k, v in self.labels.items()}
        if isinstance(self.labels, list):
            return {str(item.get("key")): str(item.get("value")) for item in self.labels}
        return {}


class ScheduleTrigger(TriggerBase):
    """``io.kestra.plugin.core.trigger.Schedule``: start the flow on a cron schedule."""

    type: Literal[SCHEDULE_TYPES]  # type: ignore[valid-type]
    cron: str
    withSeconds: bool = False
    timezone: str = "UTC"
    interval: None = None  # Kestra's hidden property, which must stay empty on a Schedule
    inputs: dict[str, Any] | None = None
    lateMaximumDelay: timedelta | None = None
    backfill: dict[str, Any] | None = None
    recoverMissedSchedules: Literal["ALL", "LAST", "NONE"] | None = None
    scheduleConditions: list[dict[str, Any]] | None = None  # Kestra 0.x's name of conditions

    @model_validator(mode="after")
    def _valid_cron(self) -> ScheduleTrigger:
        zone(self.timezone)
        self.schedule()
        return self

    def schedule(self) -> Cron:
        """The cron expression, read the way Kestra reads it (raises ValueError)."""
        return Cron(self.cron, self.withSeconds, self.timezone)


class WebhookTrigger(TriggerBase):
    """``io.kestra.plugin.core.trigger.Webhook``: start the flow on an HTTP call with ``key``."""

    type: Literal[WEBHOOK_TYPES]  # type: ignore[valid-type]
    key: str = Field(min_length=1, max_length=256)
    inputs: dict[str, Any] | None = None
    wait: bool = False
    returnOutputs: bool = False
    responseContentType: str | None = None
    responseCode: int | str | None = None
    fetchType: str | None = None


class OtherTrigger(BaseModel):
    """A trigger we do not act on (plugins' triggers): kept as written."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(pattern=TRIGGER_ID_PATTERN)
    type: str
    disabled: bool = False


def _trigger_tag(data: Any) -> str:
    kind = data.get("type") if isinstance(data, dict) else getattr(data, "type", None)
    if kind in SCHEDULE_TYPES or kind in WEBHOOK_TYPES or kind in FLOW_TRIGGER_TYPES:
        return str(kind)
    return "other"


AnyTrigger = Annotated[
    Annotated[ScheduleTrigger, Tag(SCHEDULE_TYPES[0])]
    | Annotated[ScheduleTrigger, Tag(SCHEDULE_TYPES[1])]
    | Annotated[WebhookTrigger, Tag(WEBHOOK_TYPES[0])]
    | Annotated[WebhookTrigger, Tag(WEBHOOK_TYPES[1])]
    | Annotated[FlowTrigger, Tag(FLOW_TRIGGER_TYPES[0])]
    | Annotated[FlowTrigger, Tag(FLOW_TRIGGER_TYPES[1])]
    | Annotated[OtherTrigger, Tag("other")],
    Discriminator(_trigger_tag),
]


class Concurrency(_Strict):
    """Flow-level ``concurrency``: at most ``limit`` executions of the flow run at once."""

    limit: int = Field(ge=1)
    behavior: Literal["QUEUE", "CANCEL", "FAIL"] = "QUEUE"
