"""Secrets from SECRET_* variables and a YAML file, and masking them everywhere."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from executor.errors import TemplateError, UsageError
from executor.flow.secrets import Secrets


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def test_env_variables_are_base64_decoded() -> None:
    """``SECRET_DB_PASSWORD`` holds base64; ``get('DB_PASSWORD')`` returns the plain value."""
    secrets = Secrets.from_env({"SECRET_DB_PASSWORD": b64("hunter2!"), "PATH": "/bin"}, None)
    assert secrets.get("DB_PASSWORD") == "hunter2!"
    assert secrets.names == ["DB_PASSWORD"]


def test_wrapped_or_unpadded_base64_is_accepted() -> None:
    """Output of ``base64`` wrapped at 76 columns, or stripped of its padding, still decodes."""
    long_value = "x" * 100
    wrapped = base64.encodebytes(long_value.encode()).decode()  # has newlines
    secrets = Secrets.from_env(
        {"SECRET_LONG": wrapped, "SECRET_SHORT": b64("ab").rstrip("=")}, None
    )
    assert (secrets.get("LONG"), secrets.get("SHORT")) == (long_value, "ab")


def test_yaml_file_holds_plain_values(tmp_path: Path) -> None:
    """A secrets file maps names to plain values; numbers and booleans become text."""
    path = tmp_path / "secrets.yaml"
    path.write_text("API_KEY: plain-key\nPORT: 5432\nDEBUG: true\n")
    secrets = Secrets.from_env({}, path)
    assert (secrets.get("API_KEY"), secrets.get("PORT"), secrets.get("DEBUG")) == (
        "plain-key",
        "5432",
        "true",
    )


def test_environment_wins_over_file_and_both_values_are_masked(tmp_path: Path) -> None:
    """For a name in both places the variable wins; the shadowed file value is still masked."""
    path = tmp_path / "secrets.yaml"
    path.write_text("TOKEN: from-file\n")
    secrets = Secrets.from_env({"SECRET_TOKEN": b64("from-env")}, path)
    assert secrets.get("TOKEN") == "from-env"
    assert secrets.mask("from-file / from-env") == "****** / ******"


def test_missing_secret_says_how_to_define_it(tmp_path: Path) -> None:
    """An unknown name raises a TemplateError naming the variable and the file to use."""
    path = tmp_path / "secrets.yaml"
    path.write_text("OTHER: x\n")
    with pytest.raises(TemplateError) as caught:
        Secrets.from_env({}, path).get("API_KEY")
    assert caught.value.message == (
        f"secret 'API_KEY' is not defined; set SECRET_API_KEY (base64) or add it to {path}"
    )


def test_missing_secret_without_file_mentions_a_secrets_file() -> None:
    """Without a secrets file the message still offers both ways."""
    with pytest.raises(TemplateError, match=r"set SECRET_X \(base64\) or add it to a secrets file"):
        Secrets().get("X")


def test_undecodable_variable_fails_only_when_used() -> None:
    """A SECRET_ variable that is not base64 breaks only its own secret, and is masked raw."""
    secrets = Secrets.from_env({"SECRET_BAD": "not base64!", "SECRET_OK": b64("fine")}, None)
    assert secrets.get("OK") == "fine"
    with pytest.raises(TemplateError, match="SECRET_BAD is not valid base64"):
        secrets.get("BAD")
    assert secrets.mask("echo not base64!") == "echo ******"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("- a\n- b\n", "must be a mapping"),
        ("KEY: {nested: 1}\n", "must be a plain value, got dict"),
        ("KEY:\n", "must be a plain value, got empty"),
        ("KEY: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_secrets_file_is_a_usage_error(tmp_path: Path, content: str, fragment: str) -> None:
    """A secrets file that is not a flat mapping of plain values is refused with the reason."""
    path = tmp_path / "secrets.yaml"
    path.write_text(content)
    with pytest.raises(UsageError, match=fragment):
        Secrets.from_env({}, path)


def test_missing_secrets_file_is_a_usage_error(tmp_path: Path) -> None:
    """Naming a secrets file that does not exist is refused, not silently ignored."""
    with pytest.raises(UsageError, match="cannot read secrets file"):
        Secrets.from_env({}, tmp_path / "absent.yaml")


def test_empty_secrets_file_gives_no_secrets(tmp_path: Path) -> None:
    """An empty file is an empty mapping."""
    path = tmp_path / "secrets.yaml"
    path.write_text("")
    assert Secrets.from_env({}, path).names == []


def test_mask_replaces_longest_values_first() -> None:
    """A value that contains another is masked whole, not left half visible."""
    secrets = Secrets({"SHORT": "abc", "LONG": "abcdef"})
    assert secrets.mask("x abcdef y abc z") == "x ****** y ****** z"


def test_mask_skips_values_too_short_to_mask() -> None:
    """Values under three characters are not masked: they would blank ordinary text."""
    secrets = Secrets({"PIN": "42", "WORD": "pass"})
    assert secrets.mask("42 passengers") == "42 ******engers"


def test_mask_escapes_regex_characters() -> None:
    """A value full of regex syntax is matched literally."""
    secrets = Secrets({"P": "a.b*c(d)"})
    assert secrets.mask("x a.b*c(d) aXbbc(d)") == "x ****** aXbbc(d)"


def test_multiline_secret_is_masked_line_by_line() -> None:
    """Each line of a multi-line secret (a private key) is masked on its own, as logs are lines."""
    key = "-----BEGIN KEY-----\nMIIEabcdefgh\nZZZ123456789\n-----END KEY-----"
    secrets = Secrets({"KEY": key})
    assert secrets.mask("line: ZZZ123456789") == "line: ******"
    assert secrets.mask(f"dump:\n{key}\n") == "dump:\n******\n"


def test_remembered_values_are_masked() -> None:
    """A credential registered with ``remember`` is masked like a loaded secret."""
    secrets = Secrets()
    assert secrets.mask("token=s3cr3t") == "token=s3cr3t"
    secrets.remember("s3cr3t")
    assert secrets.mask("token=s3cr3t") == "token=******"


def test_mask_value_walks_containers() -> None:
    """``mask_value`` masks strings in dict keys and values, lists and tuples, not numbers."""
    secrets = Secrets({"T": "topsecret"})
    value = {"topsecret": ["a topsecret", 3, ("topsecret",)], "n": None}
    assert secrets.mask_value(value) == {"******": ["a ******", 3, ("******",)], "n": None}


def test_repr_never_shows_values() -> None:
    """The repr, which can end up in a traceback, lists names only."""
    text = repr(Secrets({"DB_PASSWORD": "hunter2!"}))
    assert "DB_PASSWORD" in text
    assert "hunter2!" not in text
