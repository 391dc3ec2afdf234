"""The other script languages' ``Commands``/``Script``: node, R, Julia, Ruby, Go, PowerShell, ...

Each is Kestra's ``AbstractExecScript`` with the language's default image; a ``Script`` writes
its ``script`` to a file with the language's extension and runs it as Kestra's plugin does
(``node FILE``, ``Rscript FILE``, ``go run FILE``, ...). Like every script task here, it is one
exec in the WorkingDirectory's container for its image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import model_validator

from executor.flow.tasks_exec import ExecScript, ScriptFile, needs_one_body


@dataclass(frozen=True)
class Language:
    """What Kestra's plugin for one language does.

    Attributes:
        package: the segment of the type names (``io.kestra.plugin.scripts.<package>``).
        image: Kestra's default ``containerImage``.
        extension: the extension the script file gets.
        command: how a Script runs its file, ``{path}`` standing for it.
        interpreter: the default interpreter (``None``: ``/bin/sh -c``).
        fail_fast: what stops at the first failure (``None``: ``set -e``).
        in_workspace: the script file sits in the workspace, as in Kestra (node finds the
            workspace's ``node_modules`` from there, Go runs only files of its module);
            PowerShell's sits beside the exec's records (no ``sh`` trap removes it there).
    """

    package: str
    image: str
    extension: str
    command: str
    interpreter: tuple[str, ...] | None = None
    fail_fast: str | None = None
    in_workspace: bool = True


LANGUAGES: dict[str, Language] = {
    lang.package: lang
    for lang in (
        Language("node", "node", ".js", "node {path}"),
        Language("r", "r-base", ".R", "Rscript {path}"),
        Language("julia", "julia", ".jl", "julia {path}"),
        Language("ruby", "ruby", ".rb", "ruby {path}"),
        Language("go", "golang", ".go", "go run {path}"),
        Language(
            "powershell",
            "ghcr.io/kestra-io/powershell:latest",
            ".ps1",
            "& {path}",
            interpreter=("pwsh", "-NoProfile", "-NonInteractive", "-Command"),
            fail_fast="$ErrorActionPreference = 'Stop'",
            in_workspace=False,
        ),
        Language("perl", "perl", ".pl", "perl {path}"),
        Language("php", "php", ".php", "php {path}"),
        Language("lua", "nickblah/lua", ".lua", "lua {path}"),
        Language("deno", "denoland/deno", ".ts", "deno run {path}"),
        Language("bun", "oven/bun", ".ts", "bun run {path}"),
        Language("jbang", "jbangdev/jbang-action", ".java", "jbang {path}"),
    )
}

_PREFIX = "io.kestra.plugin.scripts."
LANGUAGE_COMMANDS_TYPES = tuple(f"{_PREFIX}{name}.Commands" for name in LANGUAGES)
LANGUAGE_SCRIPT_TYPES = tuple(f"{_PREFIX}{name}.Script" for name in LANGUAGES if name != "jbang")
JBANG_SCRIPT_TYPES = (f"{_PREFIX}jbang.Script",)
LANGUAGE_TYPES = LANGUAGE_COMMANDS_TYPES + LANGUAGE_SCRIPT_TYPES + JBANG_SCRIPT_TYPES


class LanguageTask(ExecScript):
    """What a language's Commands and Script share: its default image and interpreter."""

    interpreter: list[str] | str | None = None  # type: ignore[assignment]

    @property
    def language(self) -> Language:
        return LANGUAGES[self.type.removeprefix(_PREFIX).split(".", 1)[0]]

    @property
    def command_line(self) -> list[str]:
        if self.interpreter is None:
            return list(self.language.interpreter or ("/bin/sh", "-c"))
        return super().command_line

    @property
    def default_image(self) -> str | None:
        return self.language.image

    @property
    def fail_fast_lines(self) -> list[str]:
        if not self.fail_fast:
            return []
        return [self.language.fail_fast or "set -e"]

    def make_dir_line(self, path: str) -> str:
        if self.language.package == "powershell":
            return f"New-Item -ItemType Directory -Force -Path '{path}' | Out-Null"
        return super().make_dir_line(path)

    def remake_dir_line(self, path: str) -> str:
        if self.language.package == "powershell":
            return (
                f"Remove-Item -Recurse -Force -ErrorAction SilentlyContinue '{path}'; "
                + self.make_dir_line(path)
            )
        return super().remake_dir_line(path)


class LanguageCommandsTask(LanguageTask):
    """``io.kestra.plugin.scripts.<language>.Commands``: commands in the language's image."""

    type: Literal[LANGUAGE_COMMANDS_TYPES]  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _body(self) -> LanguageCommandsTask:
        needs_one_body(self, is_script=False)
        return self


class LanguageScriptTask(LanguageTask):
    """``io.kestra.plugin.scripts.<language>.Script``: ``script`` written to a file, then run."""

    type: Literal[LANGUAGE_SCRIPT_TYPES]  # type: ignore[valid-type]
    script: str | None = None

    @model_validator(mode="after")
    def _body(self) -> LanguageScriptTask:
        needs_one_body(self, is_script=True)
        return self

    @property
    def script_file(self) -> ScriptFile | None:
        lang = self.language
        return ScriptFile(
            extension=lang.extension, command=lang.command, in_workspace=lang.in_workspace
        )


class JBangScriptTask(LanguageTask):
    """``io.kestra.plugin.scripts.jbang.Script``: Java (or ``extension``: .kt, .jsh, ...)."""

    type: Literal[JBANG_SCRIPT_TYPES]  # type: ignore[valid-type]
    script: str | None = None
    extension: str = ".java"
    quiet: bool = True

    @model_validator(mode="after")
    def _body(self) -> JBangScriptTask:
        needs_one_body(self, is_script=True)
        return self

    @property
    def script_file(self) -> ScriptFile | None:
        quiet = "--quiet " if self.quiet else ""
        return ScriptFile(
            extension=self.extension, command=f"jbang {quiet}{{path}}", in_workspace=True
        )
