"""Whether a resume can be asked: the execution is PAUSED and the inputs fit its Pause's
``onResume``.

The Pause records its ``onResume`` inputs on its task run when it starts waiting, so whoever
asks (``executor resume``, the API, the UI) checks them before anything is stored, and says what
is wrong at once instead of leaving a request the paused run would refuse. The paused run checks
them again when it takes the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from executor.errors import UsageError
from executor.flow.model import Input
from executor.model import Execution, State, TaskRun
from executor.run.inputs import InputProblem, check_inputs


class NotPaused(UsageError):
    """The execution is not PAUSED: there is nothing to resume."""


@dataclass(frozen=True)
class ResumeCheck:
    """What a resume with ``given`` inputs would do to a paused execution."""

    execution: Execution
    pause: TaskRun | None  # None: a paused run recorded before its inputs were (nothing to check)
    specs: list[Input] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, InputProblem] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unknown

    def message(self, *, command_line: bool = False) -> str:
        """Every problem in one sentence, naming the execution and each input (with how to
        pass a missing one, for ``executor resume``)."""
        parts = [p.sentence if command_line else p.plain for p in self.problems.values()]
        if self.unknown:
            declared = ", ".join(s.id for s in self.specs) or "none"
            parts.append(
                f"unknown input(s) {', '.join(self.unknown)}; the Pause's onResume declares: "
                f"{declared}"
            )
        task = f" (task '{self.pause.task_id}')" if self.pause else ""
        return f"execution {self.execution.id} cannot resume{task}: " + "; ".join(parts)


def paused_run(execution: Execution) -> TaskRun | None:
    """The Pause that waits to be resumed (the first one, when several branches wait)."""
    for run in execution.task_runs:
        if run.state.current == State.PAUSED and run.resume_inputs is not None:
            return run
    return None


def check_resume(execution: Execution, given: dict[str, str]) -> ResumeCheck:
    """Check a resume of ``execution`` with ``given`` inputs (raw text, by input id).

    Raises:
        NotPaused: the execution is not PAUSED.
    """
    state = execution.state.current
    if state != State.PAUSED:
        raise NotPaused(f"execution {execution.id} is {state.value}, not PAUSED")
    pause = paused_run(execution)
    if pause is None:
        return ResumeCheck(execution, None)
    specs = [Input.model_validate(spec) for spec in pause.resume_inputs or []]
    values, problems = check_inputs(specs, given)
    unknown = sorted(set(given) - {s.id for s in specs})
    return ResumeCheck(execution, pause, specs, values, problems, unknown)
