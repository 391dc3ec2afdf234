"""The ``::{...}::`` stdout protocol: parsing lines and merging outputs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from executor.run.protocol import (
    Metric,
    ProtocolError,
    ProtocolLogLine,
    ProtocolMessage,
    merge_outputs,
    parse_line,
)


def test_outputs_line_is_parsed() -> None:
    """A line of outputs gives them back with their JSON types."""
    line = '::{"outputs":{"test":"value","int":2,"bool":true,"float":3.65,"list":[1,2]}}::'
    assert parse_line(line) == ProtocolMessage(
        outputs={"test": "value", "int": 2, "bool": True, "float": 3.65, "list": [1, 2]}
    )


def test_metrics_are_parsed_with_tags_as_strings() -> None:
    """Counters and timers come back as Metric values; tag values become strings."""
    line = (
        '::{"metrics":[{"name":"count","type":"counter","value":1,'
        '"tags":{"tag1":"i","n":2,"ok":true}},'
        '{"name":"time","type":"timer","value":2.5}]}::'
    )
    message = parse_line(line)
    assert message is not None
    assert message.metrics == [
        Metric("count", "counter", 1.0, {"tag1": "i", "n": "2", "ok": "true"}),
        Metric("time", "timer", 2.5, {}),
    ]


def test_logs_are_parsed_and_levels_normalised() -> None:
    """Log levels are upper-cased and Python's WARNING/CRITICAL map to Kestra's WARN/ERROR."""
    line = (
        '::{"logs":[{"level":"info","message":"hello"},{"level":"WARNING","message":"w"},'
        '{"level":"CRITICAL","message":"c"},{"message":"no level"}]}::'
    )
    message = parse_line(line)
    assert message is not None
    assert message.logs == [
        ProtocolLogLine("INFO", "hello"),
        ProtocolLogLine("WARN", "w"),
        ProtocolLogLine("ERROR", "c"),
        ProtocolLogLine("INFO", "no level"),
    ]


def test_all_keys_in_one_line() -> None:
    """One line may carry outputs, metrics and logs together."""
    line = json.dumps(
        {
            "outputs": {"a": 1},
            "metrics": [{"name": "m", "type": "counter", "value": 3}],
            "logs": [{"level": "DEBUG", "message": "d"}],
        }
    )
    assert parse_line(f"::{line}::") == ProtocolMessage(
        {"a": 1}, [Metric("m", "counter", 3.0, {})], [ProtocolLogLine("DEBUG", "d")]
    )


@pytest.mark.parametrize("ending", ["\n", "\r\n", "  \t\n", ""])
def test_trailing_whitespace_and_line_endings_are_ignored(ending: str) -> None:
    """A protocol line is recognised with any line ending or trailing blanks."""
    assert parse_line('::{"outputs":{"a":1}}::' + ending) == ProtocolMessage(outputs={"a": 1})


def test_empty_object_is_an_empty_message() -> None:
    """``::{}::`` is valid and carries nothing."""
    assert parse_line("::{}::") == ProtocolMessage()


@pytest.mark.parametrize(
    "line",
    [
        "plain output",
        "",
        '{"outputs":{"a":1}}',
        ' ::{"outputs":{"a":1}}::',
        '::{"outputs":{"a":1}}:: trailing text',
        "::not json::",
        ":: {} ::",
    ],
)
def test_other_lines_are_not_protocol_lines(line: str) -> None:
    """Only a whole line ``::{...}::`` is a protocol line; everything else is plain output."""
    assert parse_line(line) is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('::{"outputs": }::', "not valid JSON"),
        ("::{nope}::", "not valid JSON"),
        ('::{"output":{"a":1}}::', "unknown key(s) 'output'"),
        ('::{"outputs":[1]}::', "'outputs' must be an object, got a list"),
        ('::{"metrics":{}}::', "'metrics' must be a list"),
        ('::{"metrics":[{"name":"m","type":"gauge","value":1}]}::', "metrics[0].type"),
        ('::{"metrics":[{"name":"","type":"counter","value":1}]}::', "metrics[0].name"),
        ('::{"metrics":[{"name":"m","type":"counter","value":"1"}]}::', "metrics[0].value"),
        ('::{"metrics":[{"name":"m","type":"counter","value":true}]}::', "metrics[0].value"),
        ('::{"metrics":[{"name":"m","type":"counter","value":NaN}]}::', "finite number"),
        (
            '::{"metrics":[{"name":"m","type":"counter","value":1,"tags":{"t":[1]}}]}::',
            "metrics[0].tags.t",
        ),
        ('::{"metrics":[7]}::', "metrics[0] must be an object"),
        ('::{"logs":[{"level":"LOUD","message":"x"}]}::', "logs[0].level must be one of"),
        ('::{"logs":[{"level":"INFO"}]}::', "logs[0].message must be a string, got null"),
        ('::{"logs":"text"}::', "'logs' must be a list"),
    ],
)
def test_malformed_protocol_lines_raise_with_a_reason(line: str, reason: str) -> None:
    """A line shaped like the protocol but unusable raises ProtocolError saying why."""
    with pytest.raises(ProtocolError) as caught:
        parse_line(line)
    assert reason in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_deeply_nested_line_is_refused_without_recursing() -> None:
    """Outputs nested 5,000 deep raise ProtocolError (saying how deep), not RecursionError."""
    line = '::{"outputs":{"a":' + "[" * 5000 + "]" * 5000 + "}}::"
    with pytest.raises(ProtocolError, match="nested 5002 levels deep; at most 100"):
        parse_line(line)


def test_nesting_at_the_limit_is_accepted_and_brackets_in_strings_do_not_count() -> None:
    """100 levels in all parse; brackets inside strings, escaped quotes included, are text."""
    inner = "[" * 98 + "]" * 98
    message = parse_line('::{"outputs":{"a":' + inner + ',"s":"\\"[[[[{{\\\\"}}::')
    assert message is not None
    assert message.outputs["s"] == '"[[[[{{\\'
    with pytest.raises(ProtocolError, match="nested 101 levels"):
        parse_line('::{"outputs":{"a":[' + inner + "]}}::")


@pytest.mark.parametrize(
    "line",
    [
        '::{"outputs":{"a":"\\ud800"}}::',
        '::{"outputs":{"\\udfff":1}}::',
        '::{"outputs":{"a":{"b":["ok","x\\udc80y"]}}}::',
        '::{"logs":[{"level":"INFO","message":"\\ud83d"}]}::',
        '::{"metrics":[{"name":"m\\ud800","type":"counter","value":1}]}::',
    ],
)
def test_lone_surrogates_anywhere_are_refused(line: str) -> None:
    """A lone surrogate escape in any key or string is valid JSON but not text: refused."""
    with pytest.raises(ProtocolError, match=r"lone surrogate \(\\ud[89a-f]"):
        parse_line(line)


def test_a_surrogate_pair_is_one_character() -> None:
    """A well-formed pair of surrogate escapes is a character outside the BMP, accepted."""
    assert parse_line('::{"outputs":{"e":"\\ud83d\\ude00"}}::') == ProtocolMessage(
        outputs={"e": "\U0001f600"}
    )


def test_null_sections_count_as_empty() -> None:
    """``null`` for a section (a shell variable that was empty) means nothing was sent."""
    assert parse_line('::{"outputs":null,"metrics":null,"logs":null}::') == ProtocolMessage()


def test_merge_outputs_is_deep_and_new_values_win() -> None:
    """Nested objects merge key by key; scalars and lists of the newer line replace older ones."""
    into: dict[str, Any] = {"a": 1, "nested": {"x": 1, "y": {"deep": 1}}, "list": [1]}
    merge_outputs(into, {"a": 2, "nested": {"y": {"other": 2}, "z": 3}, "list": [2]})
    assert into == {"a": 2, "nested": {"x": 1, "y": {"deep": 1, "other": 2}, "z": 3}, "list": [2]}


def test_merge_outputs_replaces_a_scalar_with_an_object_and_back() -> None:
    """A key that changes type takes the new value whole."""
    into: dict[str, Any] = {"a": 1, "b": {"x": 1}}
    merge_outputs(into, {"a": {"x": 1}, "b": "flat"})
    assert into == {"a": {"x": 1}, "b": "flat"}


def test_merge_outputs_does_not_alias_the_new_values() -> None:
    """Changing the merged message afterwards does not change the gathered outputs."""
    new: dict[str, Any] = {"obj": {"list": [1]}}
    into: dict[str, Any] = {}
    merge_outputs(into, new)
    new["obj"]["list"].append(2)
    assert into == {"obj": {"list": [1]}}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_any_json_outputs_round_trip(outputs: dict[str, Any]) -> None:
    """Whatever JSON object a script sends as outputs comes back equal."""
    message = parse_line("::" + json.dumps({"outputs": outputs}) + "::")
    assert message is not None
    assert message.outputs == outputs
