"""Kestra's Pebble functions and filters, each against what Kestra documents."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from executor.errors import FlowValidationError, TemplateError
from executor.flow.loader import load_flow_text
from executor.flow.template import Renderer
from executor.flow.template.registry import TemplateCall, TemplateFunctions
from executor.run.template_functions import run_functions

CONTEXT: dict[str, Any] = {
    "flow": {"id": "f", "namespace": "company.team"},
    "inputs": {"m": {"a": 1, "b": 2}, "items": [3, 1, 3, 2], "text": "héllo wörld/a b"},
    "vars": {"inner": "{{ inputs.m.a }}", "twice": "{{ vars.inner }}"},
    "body": '{"items": [{"id": 7}, {"id": 9}]}',
    "day": "2024-01-31T10:00:00Z",
}


def render(template: str, renderer: Renderer | None = None) -> str:
    return (renderer or Renderer()).render(template, CONTEXT, where="f.yaml task 't'")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ render(vars.twice) }}", "1"),
        ("{{ renderOnce(vars.twice) }}", "{{ inputs.m.a }}"),
        ("{{ fromJson(body).items[1].id }}", "9"),
        ("{{ inputs.m | toJson }}", '{"a":1,"b":2}'),
        ("{{ body | jq('.items[].id') }}", "[7,9]"),
        ("{{ body | jq('.items[0].id') | first }}", "7"),
        ("{{ inputs.m | jq('.a + .b') | first }}", "3"),
        ("{{ day | dateAdd(1, 'MONTHS') }}", "2024-02-29T10:00:00.000000Z"),
        ("{{ day | dateAdd(-2, 'HOURS', 'yyyy-MM-dd HH:mm') }}", "2024-01-31 08:00"),
        ("{{ day | dateFormat('yyyy/MM/dd') }}", "2024/01/31"),
        ("{{ day | timestamp }}", "1706695200"),
        ("{{ day | timestampMicro }}", "1706695200000000"),
        ("{{ day | timestampNano }}", "1706695200000000000"),
        ("{{ isIn(2, inputs.items) }}", "true"),
        ("{{ isIn('z', ['a', 'b']) }}", "false"),
        ("{{ 'pdf' isIn ['pdf', 'docx'] and true }}", "true"),
        ("{{ inputs.m.a isIn [5] }}", "false"),
        ("{{ inputs.m.a | ternary('yes', 'no') }}", "yes"),
        ("{{ 'false' | ternary('yes', 'no') }}", "no"),
        ("{{ inputs.m.keySet() }}", '["a","b"]'),
        ("{{ inputs.m.values() }}", "[1,2]"),
        ("{{ inputs.m | keys }}", '["a","b"]'),
        ("{{ inputs.m | values }}", "[1,2]"),
        ("{{ inputs.items | first }}", "3"),
        ("{{ inputs.items | last }}", "2"),
        ("{{ 'abc' | first }}", "a"),
        ("{{ inputs.items | slice(1, 3) }}", "[1,3]"),
        ("{{ 'a,b,,c' | split(',') }}", '["a","b","","c"]'),
        ("{{ 'a-b' | replace({'-': '+'}) }}", "a+b"),
        ("{{ 'hello world' | abbreviate(8) }}", "hello..."),
        ("{{ 'hello' | capitalize }}", "Hello"),
        ("{{ 'hello wIDE world' | title }}", "Hello WIDE World"),
        (
            "{{ 'abc' | sha256 }}",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        ("{{ 'abc' | md5 }}", "900150983cd24fb0d6963f7d28e17f72"),
        ("{{ 'hi' | base64encode }}", "aGk="),
        ("{{ inputs.text | urlencode }}", "h%C3%A9llo+w%C3%B6rld%2Fa+b"),
        ("{{ 'a%2Fb+c' | urldecode }}", "a/b c"),
        ("{{ inputs.items | distinct }}", "[3,1,2]"),
        ("{{ [[1, 2], [3]] | flatten }}", "[1,2,3]"),
        ("{{ [1, 2, 3] | chunk(2) }}", "[[1,2],[3]]"),
        ("{{ 'a\nb' | indent(2) }}", "a\n  b"),
        ("{{ inputs.text.toUpperCase() }}", "HÉLLO WÖRLD/A B"),
        ("{{ inputs.items.size() }}", "4"),
        ("{{ inputs.m.a > 0 ? 'pos' ~ '!' : 'neg' }}", "pos!"),
        ("{{ 'x' ~ (inputs.m.b == 2 ? 'two' : 'other') ~ 'y' }}", "xtwoy"),
    ],
)
def test_functions_and_filters(template: str, expected: str) -> None:
    """Each function and filter gives Kestra's result."""
    assert render(template) == expected


def test_now_is_the_clock() -> None:
    """``now()`` reads the renderer's clock."""
    moment = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert render("{{ now() }}", Renderer(clock=lambda: moment)) == "2024-05-06T07:08:09Z"


def test_print_context_is_the_variables_as_json() -> None:
    """``printContext()`` prints the template's variables, and no internal helper."""
    printed = json.loads(render("{{ printContext() }}"))
    assert printed["flow"] == CONTEXT["flow"] and printed["inputs"] == CONTEXT["inputs"]
    assert not [key for key in printed if key.startswith("_")]


def test_an_unknown_function_is_named_as_such() -> None:
    """Calling a function Kestra has not is "unknown function 'x'", not a sandbox message."""
    with pytest.raises(TemplateError, match=r"unknown function 'nosuch' in \{\{ nosuch\(1\) \}\}"):
        render("{{ nosuch(1) }}")
    with pytest.raises(TemplateError, match=r"unknown function or method 'inputs\.m\.nope'"):
        render("{{ inputs.m.nope() }}")


def test_a_bad_jq_program_names_it() -> None:
    """A jq program that does not compile is an error quoting it."""
    with pytest.raises(TemplateError, match=r"jq: cannot compile '\.\[\['"):
        render("{{ body | jq('.[[') }}")


def test_date_add_refuses_an_unknown_unit() -> None:
    """``dateAdd`` takes Java's ChronoUnit names and lists them when given another."""
    with pytest.raises(TemplateError, match="unknown unit 'FORTNIGHTS'"):
        render("{{ day | dateAdd(1, 'FORTNIGHTS') }}")


def test_render_stops_on_a_template_that_renders_itself() -> None:
    """``render()`` of a template that keeps producing expressions ends with an error."""
    context = {**CONTEXT, "vars": {"loop": "x{{ vars.loop }}"}}
    with pytest.raises(TemplateError, match="still finds expressions"):
        Renderer().render("{{ render(vars.loop) }}", context, where="w")


def test_registered_functions_get_the_template_variables() -> None:
    """A registered function is called with the caller's variables, then its arguments."""
    functions = TemplateFunctions()
    functions.register("kv", lambda call, key: f"{call.namespace}:{key}")
    renderer = Renderer(functions=functions)
    assert render("{{ kv('k1') }}", renderer) == "company.team:k1"


class _Namespaces:
    def __init__(self, files: dict[tuple[str, str], bytes]) -> None:
        self.files = files

    def read(self, namespace: str, path: str) -> bytes:
        from executor.errors import NotFoundError

        try:
            return self.files[(namespace, path.lstrip("/"))]
        except KeyError:
            raise NotFoundError(f"namespace {namespace!r} has no file {path!r}") from None


def test_read_a_namespace_file_a_file_uri_and_a_stored_file(tmp_path: Path) -> None:
    """``read()`` reads the flow's namespace files, ``fileURI()`` URIs and kestra:/// files."""
    from pathlib import PurePosixPath

    from executor.services import local_services
    from executor.settings import Settings

    stores = local_services(Settings(home=tmp_path / "home"))
    source = tmp_path / "src"
    (source / "sql").mkdir(parents=True)
    (source / "sql" / "q.sql").write_text("select 1")
    stores.namespaces.push("company.team", source)
    uri = stores.artifacts.write(PurePosixPath("e1/t1"), "out.txt", [b"stored"])
    renderer = Renderer(functions=run_functions(stores, list))
    variables = {**CONTEXT, "uri": uri}

    def go(template: str) -> str:
        return renderer.render(template, variables, where="w")

    assert go("{{ read('sql/q.sql') }}") == "select 1"
    assert go("{{ read('/sql/q.sql') }}") == "select 1"
    assert go("{{ fileURI('sql/q.sql') }}") == "kestra:///company/team/_files/sql/q.sql"
    assert go("{{ read(fileURI('sql/q.sql')) }}") == "select 1"
    assert go("{{ read(uri) }}") == "stored"
    with pytest.raises(TemplateError, match=r"read\('nope.sql'\): namespace 'company.team' has no"):
        go("{{ read('nope.sql') }}")


def test_error_logs_lists_the_error_lines() -> None:
    """``errorLogs()`` gives the execution's ERROR lines with their task and message."""
    from executor.model import Level, LogLine

    line = LogLine(datetime.now(UTC), "e1", "t1", "r1", 1, "stderr", Level.ERROR, "boom")
    renderer = Renderer(functions=run_functions(None, lambda: [line]))
    assert render("{{ errorLogs()[0].message }} {{ errorLogs()[0].taskId }}", renderer) == (
        "boom t1"
    )
    assert TemplateCall({}).namespace is None


def validate(text: str) -> list[str]:
    with pytest.raises(FlowValidationError) as info:
        load_flow_text(textwrap.dedent(text), Path("f.yaml"))
    return info.value.problems


def test_validate_reports_unknown_functions_and_filters_with_line_and_task() -> None:
    """Every template compiles at validation: an unknown name is located and named."""
    found = validate("""
        id: x
        namespace: n
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: a
                type: io.kestra.plugin.scripts.shell.Commands
                commands:
                  - echo {{ inputs.x | nope }}
                  - echo {{ now() | dateAdd(1, 'DAYS') }} {{ read('f') }} {{ kv('k') }}
            errors:
              - id: b
                type: io.kestra.plugin.scripts.python.Script
                script: |
                  print(1)
                  print("{{ bogus() }}")
    """)
    assert found == [
        "f.yaml:11:13: task 'a': unknown filter 'nope' in {{ inputs.x | nope }}",
        "f.yaml:18: task 'b': unknown function 'bogus' in {{ bogus() }}",
    ]


def test_validate_reports_a_template_syntax_error() -> None:
    """An unclosed expression is a validation problem naming the task."""
    found = validate("""
        id: x
        namespace: n
        tasks:
          - id: log
            type: io.kestra.plugin.core.log.Log
            message: "{{ inputs.x "
    """)
    assert len(found) == 1 and "task 'log'" in found[0] and "never closed" in found[0]
