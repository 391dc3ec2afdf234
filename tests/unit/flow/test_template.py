"""Pebble templates rendered by the sandboxed, Pebble-compatible Jinja environment."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from executor.errors import TemplateError
from executor.flow.secrets import Secrets
from executor.flow.template import Renderer, truthy

WHERE = "flow.yaml:12 task 'extract'"
NOW = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def context() -> dict[str, Any]:
    return {
        "inputs": {
            "n": 5,
            "name": "World",
            "empty": "",
            "nothing": None,
            "flag": True,
            "items": ["a", "b", "c"],
            "map": {"x": 1, "y": 2},
            "values": "kept",
        },
        "vars": {"greeting": "hello"},
        "outputs": {
            "extract": {
                "vars": {"rows": 42, "status": "ok"},
                "outputFiles": {"report.csv": "kestra:///ns/f/report.csv"},
            },
            "ret": {"value": "returned"},
        },
        "execution": {"id": "exec1", "startDate": "2024-03-04T05:06:07.123Z"},
        "flow": {"id": "etl", "namespace": "company.team"},
    }


@pytest.fixture
def renderer() -> Renderer:
    return Renderer(Secrets({"DB_PASSWORD": "hunter2!", "TOKEN": "abc123"}), clock=lambda: NOW)


def render(renderer: Renderer, template: str) -> str:
    return renderer.render(template, context(), where=WHERE)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # variables and lookups
        ("{{ inputs.name }}", "World"),
        ("{{ vars.greeting }} {{ flow.namespace }}", "hello company.team"),
        ("{{ outputs.extract.vars.rows }}", "42"),
        ("{{ outputs.extract.outputFiles['report.csv'] }}", "kestra:///ns/f/report.csv"),
        ("{{ outputs['extract'].vars['status'] }}", "ok"),
        ("{{ inputs.items[1] }} {{ inputs.items.2 }}", "b c"),
        ("{{ inputs.values }}", "kept"),  # a map key wins over dict.values()
        # null coalescing
        ("{{ inputs.nope ?? 'fallback' }}", "fallback"),
        ("{{ inputs.nothing ?? 'fallback' }}", "fallback"),
        ("{{ inputs.name ?? 'fallback' }}", "World"),
        ("{{ outputs.missing.vars.rows ?? 'deep' }}", "deep"),
        ("{{ inputs.nope ?? inputs.nothing ?? 'third' }}", "third"),
        ("{{ inputs.name ?? 'x' | upper }}", "WORLD"),  # `??` binds tighter than a filter
        ("{{ inputs.n ?? 1 + 1 }} {{ 'a' ~ inputs.nope ?? 'b' }}", "6 ab"),  # and than + or ~
        ("{{ inputs.nothing ??? 'x' }}|", "|"),  # `???` only replaces undefined, not null
        ("{{ inputs.nope ??? 'x' }}", "x"),
        ("{{ 'a ?? b' }}", "a ?? b"),
        # ternary
        ("{{ inputs.n > 3 ? 'big' : 'small' }}", "big"),
        ("{{ inputs.n > 9 ? 'big' : 'small' }}", "small"),
        ("{{ inputs.n > 3 ? (inputs.n < 10 ? 'mid' : 'huge') : 'small' }}", "mid"),
        ("{{ inputs.n > 3 ? inputs.n < 10 ? 'mid' : 'huge' : 'small' }}", "mid"),
        ("{{ inputs.n > 9 ? 'big' : inputs.n > 4 ? 'medium' : 'small' }}", "medium"),
        ("{{ inputs.flag ? 'a ? b : c' : 'd' }}", "a ? b : c"),
        ("{{ 'x ? y : z' }}", "x ? y : z"),
        ('{{ "it\'s ? ok" }}', "it's ? ok"),
        ("{{ inputs.nope ?? false ? 'yes' : 'no' }}", "no"),
        ("{{ {'k': inputs.flag ? 1 : 2} }}", '{"k":1}'),
        ("{{ [inputs.flag ? 'y' : 'n', 'z'] | join(',') }}", "y,z"),
        # literals and printing
        ("{{ true }} {{ false }} [{{ null }}] [{{ none }}]", "true false [] []"),
        ("{{ inputs.flag }}", "true"),
        ("[{{ inputs.nothing }}]", "[]"),
        ("{{ inputs.map }} {{ inputs.items }}", '{"x":1,"y":2} ["a","b","c"]'),
        ("{{ {'a': {'b': 1}} }}", '{"a":{"b":1}}'),
        ("{{ '}}' }} {{ '{%' }} {{ '#}' }}", "}} {% #}"),
        # operators with Pebble's precedence
        ("{{ 'a' ~ 'b' | upper }}", "AB"),
        ("{{ '12' | number + 1 }}", "13"),
        ("{{ not false and false }}", "false"),
        ("{{ inputs.n equals 5 }} {{ inputs.n == 4 }} {{ inputs.n != 4 }}", "true false true"),
        ("{{ inputs.items contains 'b' }} {{ 'abc' contains 'z' }}", "true false"),
        ("{{ inputs.map contains 'x' }} {{ inputs.items contains ['a', 'c'] }}", "true true"),
        ("{{ 'a' in inputs.items }} {{ 'z' not in inputs.items }}", "true true"),
        ("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 % 3 }} {{ -inputs.n }}", "7 9 1 -5"),
        ("{{ 'n=' ~ inputs.n ~ ' ' ~ true }}", "n=5 true"),
        ("{{ 0..3 }}", "[0,1,2,3]"),
        # tests
        ("{{ inputs.n is odd }} {{ inputs.n is even }}", "true false"),
        ("{{ inputs.nothing is null }} {{ inputs.n is not null }}", "true true"),
        ("{{ inputs.nope is defined }} {{ inputs.n is defined }}", "false true"),
        (
            "{{ inputs.empty is empty }} {{ inputs.map is map }} {{ inputs.items is iterable }}",
            "true true true",
        ),
        # filters
        ("{{ inputs.nope | default('d') }}", "d"),
        ("{{ inputs.nothing | default('d') }}", "d"),
        ("{{ inputs.empty | default('d') }}", "d"),
        ("{{ inputs.name | default('d') }}", "World"),
        ("{{ outputs.x.vars.y | default('deep') }}", "deep"),
        ("{{ inputs.name | upper }} {{ inputs.name | lower }}", "WORLD world"),
        ("[{{ '  padded  ' | trim }}]", "[padded]"),
        ("{{ inputs.map | json }}", '{"x":1,"y":2}'),
        ("{{ inputs.items | toJson }}", '["a","b","c"]'),
        ("{{ 'é \"q\"' | toJson }} {{ null | json }} {{ true | json }}", '"é \\"q\\"" null true'),
        (
            "{{ inputs.items | length }} {{ inputs.name | length }} {{ inputs.map | length }}",
            "3 5 2",
        ),
        ("{{ inputs.items | join('-') }} {{ [true, null, 1] | join(',') }}", "a-b-c true,,1"),
        ("{{ 'aaa' | replace('a', 'b') }}", "bbb"),
        ("{{ 'I like %this%' | replace({'%this%': inputs.name}) }}", "I like World"),
        ("{{ 'a1b22' | replace({'(\\\\d+)': '<$1>'}, regexp=true) }}", "a<1>b<22>"),
        ("{{ 'a,b,,' | split(',') }} {{ 'a,b,c' | split(',', 2) }}", '["a","b"] ["a","b,c"]'),
        ("{{ (-3) | abs }}", "3"),
        ("{{ inputs.map | keys }} {{ inputs.items | keys }}", '["x","y"] [0,1,2]'),
        ("{{ inputs.map | values }}", "[1,2]"),
        ("{{ inputs.items | first }} {{ inputs.items | last }} {{ 'xyz' | first }}", "a c x"),
        ("{{ 'Héllo  Wörld_2 !' | slugify }}", "hello-world-2"),
        ("{{ '12' | number }} {{ '1.5' | number }} {{ '7' | number('FLOAT') }}", "12 1.5 7.0"),
        ("{{ 'hello' | slice(1, 3) }} {{ inputs.items | slice(1) }}", 'el ["b","c"]'),
        ("{{ [1] | merge([2]) }} {{ {'a': 1} | merge({'b': 2}) }}", '[1,2] {"a":1,"b":2}'),
        ("{{ 'hello world' | capitalize }} {{ 'abcdefgh' | abbreviate(6) }}", "Hello world abc..."),
        ("{{ 'hi' | base64encode }} {{ 'aGk=' | base64decode }}", "aGk= hi"),
        ("{{ 'a/b/c' | substringAfterLast('/') }} {{ 'a/b/c' | substringBefore('/') }}", "c a"),
        ("{{ 'report.csv' | endsWith('.csv') }} {{ [3, 1, 2] | rsort }}", "true [3,2,1]"),
        ("{{ '{\"a\": [1, 2]}' | fromJson | keys }} {{ fromJson('{\"b\": 2}').b }}", '["a"] 2'),
        # dates
        ("{{ execution.startDate | date('yyyy-MM-dd') }}", "2024-03-04"),
        (
            "{{ execution.startDate | date(\"yyyy-MM-dd'T'HH:mm:ss.SSS\") }}",
            "2024-03-04T05:06:07.123",
        ),
        ("{{ execution.startDate | date('dd/MM/yy HH:mm') }}", "04/03/24 05:06"),
        (
            "{{ execution.startDate | date('EEE d MMM yyyy, EEEE MMMM') }}",
            "Mon 4 Mar 2024, Monday March",
        ),
        ("{{ execution.startDate | date('hh:mm a XXX Z') }}", "05:06 AM Z +0000"),
        ("{{ execution.startDate | date('HH:mm XXX', timeZone='Europe/Paris') }}", "06:06 +01:00"),
        ("{{ execution.startDate | date(\"yyyyMMdd'T'HH''mm\") }}", "20240304T05'06"),
        ("{{ execution.startDate | date }}", "2024-03-04T05:06:07.123000Z"),
        ("{{ execution.startDate | date('iso_sec') }}", "2024-03-04T05:06:07Z"),
        ("{{ '03/04/2024' | date('yyyy-MM-dd', existingFormat='MM/dd/yyyy') }}", "2024-03-04"),
        ("{{ 0 | date('yyyy-MM-dd HH:mm:ss') }}", "1970-01-01 00:00:00"),
        ("{{ now() | date('yyyy') }} {{ now() }}", "2024 2024-05-06T07:08:09.123456Z"),
        # tags
        ("{% if inputs.n > 3 %}big{% else %}small{% endif %}", "big"),
        ("{% if inputs.n > 9 %}a{% elseif inputs.n > 4 %}b{% else %}c{% endif %}", "b"),
        ("{% if inputs.nope ?? true %}yes{% endif %}", "yes"),
        ("{% for i in inputs.items %}{{ loop.index }}{{ i }}{% endfor %}", "0a1b2c"),
        ("{% for i in 1..3 %}{{ i }}{% if not loop.last %},{% endif %}{% endfor %}", "1,2,3"),
        ("{% for i in range(2, 4) %}{{ i }}{% endfor %}", "234"),
        ("{% for e in inputs.map %}{{ e.key }}={{ e.value }};{% endfor %}", "x=1;y=2;"),
        ("{% for i in [] %}x{% else %}empty{% endfor %}", "empty"),
        ("{% set total = inputs.n * 2 %}{{ total }}", "10"),
        ("{% set label = inputs.flag ? 'on' : 'off' %}{{ label }}", "on"),
        ("{% verbatim %}{{ not rendered }}{% endverbatim %}", "{{ not rendered }}"),
        ("{% raw %}{{ x ?? y }}{% endraw %}", "{{ x ?? y }}"),
        ("{# a comment {{ x }} #}kept", "kept"),
        ("a \n {#- trimmed -#} \n b{{ '!' }}", "ab!"),
        ("x\r\n{{ inputs.n }}\r\ny\rz", "x\r\n5\r\ny\rz"),
        ("{%- verbatim %} {{ a }}\r\n {%- endverbatim -%}  !", " {{ a }}!"),
        ("{% macro hi(who) %}hi {{ who }}{% endmacro %}{{ hi(inputs.name) }}", "hi World"),
        # whitespace
        ("a\n  {{- inputs.n -}}  \nb", "a5b"),
        ("{%- if true -%}\n  yes\n{%- endif %}", "yes"),
        ("line {{ inputs.n }}\n", "line 5\n"),
        ("{% if true %}\nx{% endif %}", "\nx"),  # Kestra turns Pebble's newLineTrimming off
        # functions
        ("{{ secret('DB_PASSWORD') }}", "hunter2!"),
        ("{{ max(1, 7, 3) }} {{ min([4, 2]) }}", "7 2"),
    ],
)
def test_renders_like_pebble(renderer: Renderer, template: str, expected: str) -> None:
    """Each Pebble construct renders to the text Kestra would produce."""
    assert render(renderer, template) == expected


def test_unary_operators_bind_tighter_than_filters(renderer: Renderer) -> None:
    """Pebble reads ``-3 | abs`` as ``(-3) | abs`` (unary 500, filter 100), unlike Jinja."""
    assert render(renderer, "{{ -3 | abs }} {{ not false | upper }}") == "3 TRUE"


def test_text_without_expressions_is_returned_unchanged(renderer: Renderer) -> None:
    """A string with no ``{{`` or ``{%`` takes the fast path, even with Jinja-hostile text."""
    text = "echo ${#arr[@]} {# not a comment }} %}"
    assert renderer.render(text, {}, where=WHERE) is text


@given(st.text(alphabet=st.characters(blacklist_characters="{%"), max_size=40))
def test_any_plain_text_survives(text: str) -> None:
    """Text around an expression is kept byte for byte, whatever it holds."""
    result = Renderer().render(f"{text}{{{{ 1 }}}}{text}", {}, where=WHERE)
    assert result == f"{text}1{text}"


@given(
    st.text(
        alphabet=st.characters(blacklist_characters="'\\", blacklist_categories=["Cs"]), max_size=40
    )
)
def test_string_literals_are_never_rewritten(text: str) -> None:
    """Operators inside a quoted string (``?``, ``:``, ``??``, ``|``, braces) stay untouched."""
    assert Renderer().render(f"{{{{ '{text}' }}}}", {}, where=WHERE) == text


def test_undefined_name_is_an_error_naming_path_and_expression(renderer: Renderer) -> None:
    """An undefined input fails with its dotted path, the expression and the location."""
    with pytest.raises(TemplateError) as caught:
        render(renderer, "value: {{ inputs.nope }}")
    message = str(caught.value)
    assert "undefined name 'inputs.nope' in {{ inputs.nope }}" in message
    assert WHERE in message


def test_undefined_deep_path_names_the_missing_link(renderer: Renderer) -> None:
    """A missing task output names the full path and the first link that is missing."""
    with pytest.raises(
        TemplateError,
        match=r"undefined name 'outputs\.x\.vars\.y' "
        r"\('outputs\.x' is not defined\)",
    ):
        render(renderer, "{{ outputs.x.vars.y }}")


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{{ nope }}", "undefined name 'nope' in {{ nope }}"),
        ("{{ inputs.items[7] }}", "undefined name 'inputs.items[7]'"),
        (
            "{{ outputs.extract.outputFiles['other.csv'] }}",
            "undefined name \"outputs.extract.outputFiles['other.csv']\"",
        ),
        ("{{ inputs.nope | upper }}", "undefined name 'inputs.nope'"),
        ("{{ inputs.nope ? 'a' : 'b' }}", "undefined name 'inputs.nope'"),
        ("{% if inputs.nope %}x{% endif %}", "in {% if inputs.nope %}"),
        ("{% for x in inputs.nope %}{% endfor %}", "undefined name 'inputs.nope'"),
    ],
)
def test_undefined_is_never_rendered_as_empty(
    renderer: Renderer, template: str, fragment: str
) -> None:
    """Using an undefined value anywhere but ``??``, ``default`` or ``is defined`` fails."""
    with pytest.raises(TemplateError) as caught:
        render(renderer, template)
    assert fragment in str(caught.value)


def test_error_in_a_loop_names_the_inner_expression(renderer: Renderer) -> None:
    """The failing expression is the one being evaluated, not the first one of the template."""
    template = "{{ inputs.n }}\n{% for i in inputs.items %}\n{{ i.missing }}\n{% endfor %}"
    with pytest.raises(TemplateError) as caught:
        render(renderer, template)
    assert "in {{ i.missing }} (line 3)" in str(caught.value)


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{{ inputs.n + }}", "syntax error in {{ inputs.n + }}: expected a value"),
        ("{{ a ? b }}", "expected ':'"),
        ("{{ 'unclosed }}", "never closed"),
        ("{{ inputs.n", "'{{' is never closed"),
        ("{{ 1 }}{# comment", "never closed by '#}'"),
        ("{{ }}", "empty expression"),
        ("{{ a & b }}", "unexpected character '&'"),
        ("{{ x | nosuchfilter }}", "No filter named 'nosuchfilter' in {{ x | nosuchfilter }}"),
        ("{% if true %}x", "syntax error"),
        ("{% for x %}{% endfor %}", "expected '{% for item in items %}'"),
        ("{% verbatim %}x", "never closed"),
    ],
)
def test_syntax_errors_are_template_errors(
    renderer: Renderer, template: str, fragment: str
) -> None:
    """A template that cannot be parsed fails with the location and what is wrong."""
    with pytest.raises(TemplateError) as caught:
        render(renderer, template)
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(WHERE)


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ inputs.__class__.__mro__ }}",
        "{{ inputs.items.__len__ }}",
        "{{ now.__globals__ }}",
        "{{ inputs.name.__class__.__base__.__subclasses__() }}",
        "{{ (inputs.nope ?? inputs).__class__ }}",
    ],
)
def test_sandbox_refuses_python_internals(renderer: Renderer, template: str) -> None:
    """Reaching Python internals through attributes is refused as a TemplateError."""
    with pytest.raises(TemplateError) as caught:
        render(renderer, template)
    assert WHERE in str(caught.value)


def test_unsafe_access_is_not_swallowed_by_coalescing(renderer: Renderer) -> None:
    """``??`` gives no way around the sandbox: the unsafe access fails, it is not 'undefined'."""
    with pytest.raises(TemplateError, match="not allowed"):
        render(renderer, "{{ inputs.__class__ ?? 'x' }}")


def test_missing_secret_is_an_error_saying_how_to_define_it(renderer: Renderer) -> None:
    """``secret('X')`` for an unknown name explains both ways to provide it."""
    with pytest.raises(TemplateError) as caught:
        render(renderer, "{{ secret('API_KEY') }}")
    message = str(caught.value)
    assert "secret 'API_KEY' is not defined; set SECRET_API_KEY (base64)" in message
    assert "in {{ secret('API_KEY') }}" in message
    assert message.startswith(WHERE)


def test_error_messages_never_quote_a_secret(renderer: Renderer) -> None:
    """An error that would quote a secret's value (a failed conversion) shows it masked."""
    with pytest.raises(TemplateError) as caught:
        render(renderer, "{{ secret('TOKEN') | number }}")
    assert "abc123" not in str(caught.value)
    assert "******" in str(caught.value)
    assert caught.value.__cause__ is None


def test_renderer_without_secrets_refuses_secret() -> None:
    """A renderer built without secrets still fails clearly on ``secret()``."""
    with pytest.raises(TemplateError, match="secret 'X' is not defined"):
        Renderer().render("{{ secret('X') }}", {}, where=WHERE)


def test_date_filter_accepts_datetime_and_date_objects(renderer: Renderer) -> None:
    """``date`` formats aware and naive datetimes and plain dates, not only strings."""
    paris = timezone(timedelta(hours=2))
    ctx = {
        "aware": datetime(2024, 7, 1, 23, 30, tzinfo=paris),
        "naive": datetime(2024, 7, 1, 23, 30),
        "day": date(2024, 7, 1),
    }
    template = (
        "{{ aware | date('yyyy-MM-dd HH:mm XXX') }}|"
        "{{ aware | date('yyyy-MM-dd HH:mm', timeZone='UTC') }}|"
        "{{ naive | date('HH:mm XXX') }}|{{ day | date('dd.MM.yyyy') }}"
    )
    assert renderer.render(template, ctx, where=WHERE) == (
        "2024-07-01 23:30 +02:00|2024-07-01 21:30|23:30 Z|01.07.2024"
    )


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{{ 'not a date' | date('yyyy') }}", "is not an ISO-8601 date"),
        ("{{ execution.startDate | date('yyyy-qq') }}", "unsupported letter 'q'"),
        ("{{ execution.startDate | date('yyyy', timeZone='Mars/Olympus') }}", "unknown time zone"),
    ],
)
def test_date_filter_errors_are_template_errors(
    renderer: Renderer, template: str, fragment: str
) -> None:
    """A date that cannot be read or a pattern that cannot be written fails clearly."""
    with pytest.raises(TemplateError, match=fragment):
        render(renderer, template)


def test_runtime_type_errors_are_template_errors(renderer: Renderer) -> None:
    """A failing operation (adding text to a number) is reported, not raised as TypeError."""
    with pytest.raises(TemplateError, match=r"TypeError: .* in \{\{ inputs.n \+ 'a' \}\}"):
        render(renderer, "{{ inputs.n + 'a' }}")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ false }}", False),
        ("{{ true }}", True),
        ("{{ inputs.n > 3 }}", True),
        ("  {{ inputs.n < 3 }}\n", False),
        ("{{ inputs.n }}", 5),
        ("{{ inputs.items }}", ["a", "b", "c"]),
        ("{{ inputs.nothing }}", None),
        ("{{ inputs.nope ?? 'd' }}", "d"),
        ("{{ inputs.n > 3 ? 'yes' : 'no' }}", "yes"),
        ("n={{ inputs.n }}", "n=5"),
        ("{{ inputs.n }}{{ inputs.n }}", "55"),
        ("{% if true %}x{% endif %}", "x"),
    ],
)
def test_evaluate_returns_python_values(renderer: Renderer, template: str, expected: Any) -> None:
    """A lone ``{{ expr }}`` evaluates to its value; anything else renders to a string."""
    assert renderer.evaluate(template, context(), where=WHERE) == expected


def test_evaluate_reports_undefined_names(renderer: Renderer) -> None:
    """``evaluate`` fails on an undefined result instead of returning something falsy."""
    with pytest.raises(TemplateError) as caught:
        renderer.evaluate("{{ inputs.enabled }}", context(), where=WHERE)
    assert str(caught.value) == (
        f"{WHERE}: undefined name 'inputs.enabled' in {{{{ inputs.enabled }}}}"
    )


def test_evaluate_reports_syntax_errors(renderer: Renderer) -> None:
    """``evaluate`` reports a bad expression with its location."""
    with pytest.raises(TemplateError, match=r"syntax error in \{\{ inputs\.n > \}\}"):
        renderer.evaluate("{{ inputs.n > }}", context(), where=WHERE)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (False, False),
        (True, True),
        (None, False),
        (0, False),
        (1, True),
        ("", False),
        ("false", False),
        ("FALSE", False),
        (" False\n", False),
        ("0", False),
        ("null", False),
        ("NULL", False),
        ("true", True),
        ("no", True),
        ("1", True),
        ([], False),
        (["x"], True),
    ],
)
def test_truthy(value: Any, expected: bool) -> None:
    """``truthy`` follows Kestra's runIf: false, 0, empty and null strings are false."""
    assert truthy(value) is expected


def test_render_value_renders_keys_values_and_lists(renderer: Renderer) -> None:
    """``render_value`` walks dicts (keys too) and lists, leaving non-strings alone."""
    value = {
        "{{ inputs.name }}.txt": ["{{ inputs.n }}", 3, {"k": "{{ vars.greeting }}"}],
        "flag": True,
        "none": None,
    }
    assert renderer.render_value(value, context(), where=WHERE) == {
        "World.txt": ["5", 3, {"k": "hello"}],
        "flag": True,
        "none": None,
    }


def test_compiled_templates_are_reused_with_fresh_contexts(renderer: Renderer) -> None:
    """The same template renders against each new context, never a cached result."""
    template = "{{ inputs.n }} {{ inputs.nope ?? 'd' }}"
    first = renderer.render(template, {"inputs": {"n": 1}}, where=WHERE)
    second = renderer.render(template, {"inputs": {"n": 2, "nope": "set"}}, where=WHERE)
    assert (first, second) == ("1 d", "2 set")


def test_now_uses_the_injected_clock_and_time_zone(renderer: Renderer) -> None:
    """``now()`` returns an ISO timestamp from the clock, optionally in another zone."""
    assert render(renderer, "{{ now(timeZone='Asia/Tokyo') }}") == (
        "2024-05-06T16:08:09.123456+09:00"
    )


def test_run_only_functions_fail_clearly(renderer: Renderer) -> None:
    """Kestra functions that need the run's stores say so when rendered without them."""
    with pytest.raises(TemplateError, match=r"kv\(\) is only available while a flow runs"):
        render(renderer, "{{ kv('key') }}")


def test_kv_function_reads_the_flows_namespace_by_default(tmp_path: Path) -> None:
    """kv('k') looks in flow.namespace; namespace= and errorOnMissing=false are honoured."""
    from executor.errors import TemplateError
    from executor.flow.template import Renderer
    from executor.run.template_functions import run_functions
    from executor.services import local_services
    from executor.settings import Settings

    stores = local_services(Settings(home=tmp_path))
    stores.kv.put("company.team", "limit", "NUMBER", 3)
    stores.kv.put("other", "limit", "NUMBER", 9)
    renderer = Renderer(functions=run_functions(stores, list))
    context = {"flow": {"namespace": "company.team"}}
    assert renderer.render("{{ kv('limit') + 1 }}", context, where="t") == "4"
    assert renderer.render("{{ kv('limit', namespace='other') }}", context, where="t") == "9"
    assert renderer.render("{{ kv('x', errorOnMissing=false) ?? 'none' }}", context, where="t") == (
        "none"
    )
    with pytest.raises(TemplateError, match=r"no value for key 'x' in namespace 'company\.team'"):
        renderer.render("{{ kv('x') }}", context, where="t")
