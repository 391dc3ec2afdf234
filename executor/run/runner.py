"""``run_task``: one task run from creation to its final state; ``run_execution`` for a flow.

What every task shares lives here (disabled, ``runIf``, a cancelled branch, ``allowFailure``,
``allowWarning``, the task run's events); what a task *does* is its handler's job, looked up by
the task's model class in ``handlers.HANDLERS``.
"""

from __future__ import annotations

from executor.errors import EngineLost, ExecutorError
from executor.flow.model import Task
from executor.flow.template import truthy
from executor.model import Execution, Level, State, TaskRun
from executor.run.block import run_block
from executor.run.context import RunContext
from executor.run.handlers import handler_for
from executor.run.scope import Scope


def run_task(task: Task, scope: Scope, ctx: RunContext) -> State:
    """Create ``task``'s run in ``scope``, run it by its handler, return how it ended.

    Handlers run their children through ``ctx.run_task``, which comes here: the runner knows
    the handlers, the handlers never import the runner.
    """
    run = ctx.new_task_run(task, scope)
    if ctx.ran_before(run):  # a restart or a replay keeps it, outputs and all
        return run.state.current
    try:
        skipped = _skip_reason(task, run, scope, ctx)
        if skipped is not None:
            ctx.log(run, Level.INFO, f"skipped: {skipped}")
            ctx.set_state(run, State.SKIPPED, skipped)
            return State.SKIPPED
        if scope.cancel.cancelled:
            stopped = scope.cancel.state or State.KILLED
            ctx.set_state(run, stopped, scope.cancel.reason)
            return stopped
        ctx.set_state(run, State.RUNNING)
        state = handler_for(task)(task, run, scope, ctx)
    except KeyboardInterrupt:
        if not run.state.current.terminal:
            ctx.set_state(run, State.KILLED, "interrupted")
        raise
    except EngineLost as exc:  # no later task could run either: the execution ends here
        lost = exc.during(run.task_id)
        ctx.log(run, Level.ERROR, str(lost))
        if run.state.current.terminal:
            run.reason = run.reason or lost.message
        else:
            ctx.set_state(run, State.FAILED, lost.message)
        if lost is exc:
            raise
        raise lost from exc
    except ExecutorError as exc:
        ctx.log(run, Level.ERROR, str(exc))
        state = State.FAILED
        run.reason = ctx.secrets.mask(exc.message)
    return _settle(task, run, state, ctx)


def _skip_reason(task: Task, run: TaskRun, scope: Scope, ctx: RunContext) -> str | None:
    if task.disabled:
        return "disabled"
    if task.runIf is not None:
        value = ctx.renderer.evaluate(
            task.runIf, ctx.variables(run, task, scope), where=ctx.where(task)
        )
        if not truthy(value):
            return f"runIf {task.runIf!r} is false"
    return None


def _settle(task: Task, run: TaskRun, state: State, ctx: RunContext) -> State:
    """The final state after ``allowFailure``/``allowWarning``, recorded once."""
    if state == State.FAILED and task.allowFailure:
        ctx.log(run, Level.WARN, "failure tolerated (allowFailure)")
        state = State.WARNING
    elif state == State.WARNING and task.allowWarning:
        state = State.SUCCESS
    if run.state.current != state:
        ctx.set_state(run, state)
    return state


def run_execution(ctx: RunContext) -> Execution:
    """Run the flow to the end; Ctrl-C (KeyboardInterrupt) ends it KILLED and re-raises.

    An engine lost mid-run ends it FAILED with that reason, and re-raises; so does anything
    else that escapes (a bug): no execution is left RUNNING because its run broke.
    """
    execution, flow = ctx.execution, ctx.loaded.flow
    ctx.use_runner(run_task)
    execution.state.to(State.RUNNING)
    ctx.emit_execution()
    ctx.announce_earlier()
    ctx.log(None, Level.INFO, f"execution {execution.id} of {flow.namespace}.{flow.id} started")
    try:
        final = run_block(flow.tasks, flow.errors, flow.finally_, Scope(ctx.cancel), ctx)
    except KeyboardInterrupt:
        ctx.cancel.cancel(State.KILLED, "interrupted")
        execution.reason = execution.reason or "interrupted"
        execution.state.to(State.KILLED)
        ctx.log(None, Level.WARN, "execution killed: interrupted")
        ctx.emit_execution()
        raise
    except EngineLost as exc:
        ctx.cancel.cancel(State.FAILED, exc.message)
        execution.reason = exc.message
        execution.state.to(State.FAILED)
        ctx.log(None, Level.ERROR, f"execution ended FAILED: {exc.message}")
        ctx.emit_execution()
        raise
    except Exception as exc:
        reason = f"internal error: {type(exc).__name__}: {exc}"
        ctx.cancel.cancel(State.FAILED, reason)
        execution.reason = ctx.secrets.mask(reason)
        if not execution.state.current.terminal:
            execution.state.to(State.FAILED)
        ctx.log(None, Level.ERROR, f"execution ended FAILED: {reason}")
        ctx.emit_execution()
        raise
    if final in (State.CANCELLED, State.PAUSED):
        final = State.FAILED if final == State.CANCELLED else State.SUCCESS
    if final == State.KILLED and ctx.cancel.reason:
        execution.reason = ctx.cancel.reason
    if final in (State.SUCCESS, State.WARNING):
        final = _flow_outputs(ctx, final)
    execution.state.to(final)
    ctx.log(
        None,
        Level.INFO if final in (State.SUCCESS, State.WARNING) else Level.ERROR,
        f"execution ended {final.value} in {execution.state.duration:.2f}s",
    )
    ctx.emit_execution()
    return execution


def _flow_outputs(ctx: RunContext, state: State) -> State:
    """Render the flow's ``outputs`` (what a parent's Subflow task sees); a failure fails it."""
    outputs = ctx.loaded.flow.outputs or []
    if not outputs:
        return state
    variables = ctx.variables()
    where = str(ctx.loaded.source)
    try:
        ctx.execution.outputs = {
            str(o.get("id")): ctx.renderer.render_value(o.get("value"), variables, where=where)
            for o in outputs
        }
    except ExecutorError as exc:
        ctx.log(None, Level.ERROR, f"flow outputs: {exc}")
        ctx.execution.reason = exc.message
        return State.FAILED
    return state
