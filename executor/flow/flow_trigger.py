"""Kestra's ``io.kestra.plugin.core.trigger.Flow`` as pydantic models: run a flow when others end.

A Flow trigger starts its flow (server mode only) when an execution of another flow ends and
it passes the trigger's ``states``, every one of its ``conditions`` and its ``preconditions``.
What each means, and how they are evaluated, is in :mod:`executor.flow.flow_match`; the server
acts on them in :mod:`executor.server.flow_triggers`.
"""

from __future__ import annotations

from datetime import time
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from executor import names
from executor.flow.durations import Duration

# what Kestra calls a terminated state, plus PAUSED: a Flow trigger's default ``states``
TERMINAL_STATES = ("SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED", "RETRIED")
DEFAULT_STATES = (*TERMINAL_STATES, "PAUSED")
StateName = Literal[
    "CREATED",
    "RUNNING",
    "PAUSED",
    "RESTARTED",
    "KILLING",
    "SUCCESS",
    "WARNING",
    "FAILED",
    "KILLED",
    "CANCELLED",
    "QUEUED",
    "RETRYING",
    "RETRIED",
    "SKIPPED",
    "BREAKPOINT",
    "SUBMITTED",
    "RESUBMITTED",
]
STATE_NAMES: tuple[str, ...] = get_args(StateName)  # every state of Kestra's, as text
FLOW_TRIGGER_TYPES = (
    "io.kestra.plugin.core.trigger.Flow",
    "io.kestra.core.models.triggers.types.Flow",
)
_CONDITION_PACKAGES = (
    "io.kestra.plugin.core.condition.",
    "io.kestra.core.models.conditions.types.",
)
CONDITION_KINDS = (
    "ExecutionStatus",
    "ExecutionFlow",
    "ExecutionNamespace",
    "ExecutionLabels",
    "ExecutionOutputs",
    "Expression",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Condition(_Strict):
    type: str
    id: str | None = None  # Kestra lets a condition carry an id; it means nothing here


class ExecutionStatus(_Condition):
    """The upstream execution ended in one of ``in`` and none of ``notIn``."""

    in_: list[StateName] | None = Field(default=None, alias="in")
    notIn: list[StateName] | None = None


class ExecutionFlow(_Condition):
    """The upstream execution is of this flow."""

    namespace: str
    flowId: str


class ExecutionNamespace(_Condition):
    """The upstream flow's namespace is, starts or ends with ``namespace``."""

    namespace: str
    comparison: Literal["EQUALS", "PREFIX", "SUFFIX"] | None = None
    prefix: bool = False  # Kestra's older spelling of ``comparison: PREFIX``


class ExecutionLabels(_Condition):
    """The upstream execution carries every one of these labels."""

    labels: dict[str, Any] | list[dict[str, Any]]


class ExecutionOutputs(_Condition):
    """An expression over ``trigger.outputs`` (the upstream flow's outputs) that is true."""

    expression: str


class Expression(_Condition):
    """An expression over ``trigger`` (the upstream execution) that is true."""

    expression: str


def condition_kind(type_name: str) -> str | None:
    """The kind (``ExecutionStatus``...) of a condition type, any of Kestra's spellings."""
    for package in _CONDITION_PACKAGES:
        if type_name.startswith(package):
            name = type_name.removeprefix(package).removesuffix("Condition")
            return name if name in CONDITION_KINDS else None
    return None


class Unsupported(BaseModel):
    """A condition type a Flow trigger cannot evaluate: refused with the supported ones."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str

    @model_validator(mode="after")
    def _refused(self) -> Unsupported:
        raise ValueError(
            f"condition type {self.type!r} is not supported on a Flow trigger (supported: "
            + ", ".join(f"io.kestra.plugin.core.condition.{k}" for k in CONDITION_KINDS)
            + "; for several upstream flows in a time window, use preconditions)"
        )


def _condition_tag(data: Any) -> str:
    kind = data.get("type") if isinstance(data, dict) else getattr(data, "type", None)
    return condition_kind(str(kind)) or "unsupported"


Condition = Annotated[
    Annotated[ExecutionStatus, Tag("ExecutionStatus")]
    | Annotated[ExecutionFlow, Tag("ExecutionFlow")]
    | Annotated[ExecutionNamespace, Tag("ExecutionNamespace")]
    | Annotated[ExecutionLabels, Tag("ExecutionLabels")]
    | Annotated[ExecutionOutputs, Tag("ExecutionOutputs")]
    | Annotated[Expression, Tag("Expression")]
    | Annotated[Unsupported, Tag("unsupported")],
    Discriminator(_condition_tag),
]


class UpstreamFlow(_Strict):
    """One of ``preconditions.flows``: an execution of this flow (or namespace) ended so."""

    namespace: str | None = None
    flowId: str | None = None
    states: list[StateName] | None = None
    labels: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _says_something(self) -> UpstreamFlow:
        if self.namespace is None and self.flowId is None:
            raise ValueError("a preconditions flow needs a namespace (and usually a flowId)")
        return self


FilterField = Literal["FLOW_ID", "NAMESPACE", "STATE", "EXPRESSION"]
FilterType = Literal[
    "EQUAL_TO",
    "NOT_EQUAL_TO",
    "IN",
    "NOT_IN",
    "IS_NULL",
    "IS_NOT_NULL",
    "IS_TRUE",
    "IS_FALSE",
    "STARTS_WITH",
    "ENDS_WITH",
    "PREFIX",
    "REGEX",
    "CONTAINS",
]


class Filter(_Strict):
    """One test of a ``where`` entry on a field of the upstream execution."""

    field: FilterField
    type: FilterType
    value: Any = None
    values: list[Any] | None = None


class Where(_Strict):
    """One of ``preconditions.where``: its filters, all (AND) or any (OR) of them."""

    id: str
    filters: list[Filter] = Field(min_length=1)
    operand: Literal["AND", "OR"] = "AND"


class TimeWindow(_Strict):
    """Within what time every precondition must be met (Kestra's default: a day, from
    midnight)."""

    type: Literal[
        "DURATION_WINDOW", "SLIDING_WINDOW", "DAILY_TIME_DEADLINE", "DAILY_TIME_WINDOW"
    ] = "DURATION_WINDOW"
    window: Duration | None = None
    windowAdvance: Duration | None = None
    deadline: time | None = None
    startTime: time | None = None
    endTime: time | None = None

    @model_validator(mode="after")
    def _complete(self) -> TimeWindow:
        if self.type == "DAILY_TIME_DEADLINE" and self.deadline is None:
            raise ValueError("a DAILY_TIME_DEADLINE time window needs a deadline")
        if self.type == "DAILY_TIME_WINDOW" and (self.startTime is None or self.endTime is None):
            raise ValueError("a DAILY_TIME_WINDOW time window needs startTime and endTime")
        if self.window is not None and self.window.total_seconds() <= 0:
            raise ValueError("the time window must be longer than zero")
        return self


class Preconditions(_Strict):
    """Kestra's ``preconditions``: every entry of ``flows`` and ``where`` met in the window."""

    id: str | None = None
    flows: list[UpstreamFlow] | None = None
    where: list[Where] | None = None
    timeWindow: TimeWindow = Field(default_factory=TimeWindow)
    resetOnSuccess: bool = True

    @model_validator(mode="after")
    def _not_empty(self) -> Preconditions:
        if not self.flows and not self.where:
            raise ValueError("preconditions need at least one of flows or where")
        return self

    def keys(self) -> list[str]:
        """One key per precondition: ``flow:N`` and ``where:ID``."""
        return [f"flow:{n}" for n in range(len(self.flows or ()))] + [
            f"where:{w.id}" for w in self.where or ()
        ]


class FlowTrigger(BaseModel):
    """``io.kestra.plugin.core.trigger.Flow``: start this flow when another one ends."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(pattern=names.TASK_ID)
    type: Literal[FLOW_TRIGGER_TYPES]  # type: ignore[valid-type]
    description: str | None = None
    conditions: list[Condition] | None = None
    preconditions: Preconditions | None = None
    states: list[StateName] | None = None
    inputs: dict[str, Any] | None = None
    disabled: bool = False
    workerGroup: dict[str, Any] | None = None
    workerSelector: dict[str, Any] | None = None
    logLevel: str | None = None
    minLogLevel: str | None = None
    labels: dict[str, Any] | list[dict[str, Any]] | None = None
    stopAfter: list[StateName] | None = None
    logToFile: bool = False
    failOnTriggerError: bool = False
    allowConcurrent: bool = False
    assets: dict[str, Any] | None = None
    when: str | None = None

    def watched_states(self) -> tuple[str, ...]:
        """The upstream end states this trigger looks at (Kestra's default: all ends, PAUSED)."""
        return tuple(self.states) if self.states else DEFAULT_STATES

    def label_map(self) -> dict[str, str]:
        """The trigger's labels (a mapping or Kestra's list of key/value), as text."""
        if isinstance(self.labels, dict):
            return {str(k): str(v) for k, v in self.labels.items()}
        if isinstance(self.labels, list):
            return {str(item.get("key")): str(item.get("value")) for item in self.labels}
        return {}
