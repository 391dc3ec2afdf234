"""Secrets for ``{{ secret('NAME') }}``, and masking them out of everything we print or keep.

Two sources, as in Kestra OSS plus one of our own:

* environment variables ``SECRET_<NAME>`` whose value is base64-encoded (Kestra's convention);
* an optional YAML file mapping ``NAME: plain value``.

When a name is in both, the environment wins. Every loaded value is masked, also a value that
was shadowed or could not be decoded, and each line of a multi-line value on its own (logs are
read line by line). Values shorter than three characters are never masked: they would blank
out ordinary text.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from executor.errors import TemplateError, UsageError
from executor.masking import Masker
from executor.settings import SECRET_PREFIX

ENV_PREFIX = SECRET_PREFIX


class Secrets:
    """Named secret values, and a masker that hides every one of them.

    Args:
        values: secret name -> plain value.
        source_file: the secrets file the values came from, named in error messages.
        undecodable: name -> reason, for ``SECRET_<NAME>`` variables that are not valid base64;
            asking for one of them raises, the rest keep working.
    """

    def __init__(
        self,
        values: Mapping[str, str] | None = None,
        *,
        source_file: Path | None = None,
        undecodable: Mapping[str, str] | None = None,
    ) -> None:
        self._values: dict[str, str] = dict(values or {})
        self._source_file = source_file
        self._undecodable: dict[str, str] = dict(undecodable or {})
        self._masker = Masker(self._values.values())

    @classmethod
    def from_env(cls, env: Mapping[str, str], secrets_file: Path | None) -> Secrets:
        """Load secrets from ``SECRET_<NAME>`` variables (base64) and an optional YAML file.

        Args:
            env: the environment to read, usually ``os.environ``.
            secrets_file: a YAML mapping of ``NAME: plain value``, or ``None``.

        Returns:
            The secrets, the environment winning over the file for a name in both.

        Raises:
            UsageError: the secrets file is missing, unreadable, not YAML, or not a flat
                mapping of names to scalar values.
        """
        values: dict[str, str] = {}
        shadowed: list[str] = []
        if secrets_file is not None:
            values.update(_read_secrets_file(secrets_file))
        undecodable: dict[str, str] = {}
        raw_undecodable: list[str] = []
        for key, raw in env.items():
            if not key.startswith(ENV_PREFIX) or len(key) == len(ENV_PREFIX):
                continue
            name = key[len(ENV_PREFIX) :]
            try:
                decoded = _decode_base64(raw)
            except ValueError as exc:
                undecodable[name] = f"{key} is not valid base64 ({exc})"
                raw_undecodable.append(raw)
                if name in values:
                    shadowed.append(values.pop(name))
                continue
            if name in values:
                shadowed.append(values[name])
            values[name] = decoded
        secrets = cls(values, source_file=secrets_file, undecodable=undecodable)
        # A value we cannot use may still be sensitive: hide it anyway.
        secrets.remember(*shadowed, *raw_undecodable)
        return secrets

    @property
    def names(self) -> list[str]:
        """The names that can be asked for, sorted."""
        return sorted(self._values)

    def get(self, name: str) -> str:
        """Return the plain value of a secret; the value stays masked from now on.

        Args:
            name: the secret's name as written in ``secret('NAME')``.

        Returns:
            The decoded value.

        Raises:
            TemplateError: no secret of that name, or its variable is not valid base64.
        """
        if name in self._undecodable:
            raise TemplateError(f"secret {name!r} cannot be used: {self._undecodable[name]}")
        try:
            value = self._values[name]
        except KeyError:
            where = str(self._source_file) if self._source_file else "a secrets file"
            raise TemplateError(
                f"secret {name!r} is not defined; "
                f"set {ENV_PREFIX}{name} (base64) or add it to {where}"
            ) from None
        self.remember(value)
        return value

    def remember(self, *values: str) -> None:
        """Mask these values too from now on (for credentials that were not loaded here).

        Args:
            values: plain values; each line of a multi-line value is also masked on its own.
        """
        self._masker.remember(*values)

    def mask(self, text: str) -> str:
        """Replace every secret value in ``text`` with ``******``, longest values first."""
        return self._masker.mask(text)

    def mask_all(self, texts: list[str]) -> list[str]:
        """:meth:`mask` over many texts; the same list when there is nothing to mask."""
        return self._masker.mask_all(texts)

    def mask_value(self, obj: Any) -> Any:
        """Mask secret values in every string inside ``obj`` (dict keys and values, lists)."""
        return self._masker.mask_value(obj)

    def __repr__(self) -> str:
        # Never show values: a repr ends up in tracebacks and logs.
        return f"Secrets(names={self.names!r})"


def _decode_base64(raw: str) -> str:
    # `base64` wraps its output at 76 columns; a pasted value may also lack its padding.
    compact = "".join(raw.split())
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from None


def _read_secrets_file(path: Path) -> dict[str, str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read secrets file {path}: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UsageError(f"secrets file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"secrets file {path} must be a mapping of NAME: value")
    values: dict[str, str] = {}
    for name, value in data.items():
        if not isinstance(name, str) or not name:
            raise UsageError(f"secrets file {path}: secret names must be strings, got {name!r}")
        if isinstance(value, bool):
            values[name] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            values[name] = str(value)
        else:
            kind = "empty" if value is None else type(value).__name__
            raise UsageError(
                f"secrets file {path}: secret {name!r} must be a plain value, got {kind}"
            )
    return values
