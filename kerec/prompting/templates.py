"""Prompt templates: versioned YAML files in ``prompts/`` turned into langchain-core chat templates.

Each file holds ``name``, ``version`` (a positive integer, bumped whenever the wording changes, so results
can name the prompt they came from), ``description``, ``input_variables`` and ``messages`` (a list of
``{role, content}`` with roles ``system``, ``user`` or ``assistant``). Contents are f-string templates:
``{variable}`` is filled in, a literal brace is written ``{{`` or ``}}``. The declared ``input_variables``
must be exactly the variables the messages use, so a typo in either fails at load time, naming the file.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from langchain_core.prompts import ChatPromptTemplate

from kerec.paths import asset_dir
from kerec.prompting.errors import PromptError

_SUFFIX = ".yaml"
_KEYS = frozenset({"name", "version", "description", "input_variables", "messages"})
_ROLES = ("system", "user", "assistant")
# langchain-core names message types differently from the chat-template roles every LLM backend takes.
_ROLE_OF_TYPE = {"system": "system", "human": "user", "ai": "assistant"}

Message = dict[str, str]


@dataclass(frozen=True)
class Prompt:
    """A loaded template: ``messages(**inputs)`` renders it into a chat message list."""

    name: str
    version: int
    description: str
    input_variables: tuple[str, ...]
    template: ChatPromptTemplate
    path: Path

    def messages(self, **inputs: str | int) -> list[Message]:
        """The rendered chat, ``[{"role": "system"|"user"|"assistant", "content": str}, …]``.

        Every declared input must be given, and nothing else: a missing or unknown name raises
        :class:`PromptError` (an unknown one would otherwise be dropped silently).
        """
        missing = sorted(set(self.input_variables) - inputs.keys())
        extra = sorted(inputs.keys() - set(self.input_variables))
        if missing or extra:
            problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"unexpected {', '.join(extra)}"] if extra else [])
            raise PromptError(f"prompt {self.name!r} v{self.version}: {'; '.join(problems)} "
                              f"(it takes exactly: {', '.join(self.input_variables)})")
        for key, value in inputs.items():
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise PromptError(f"prompt {self.name!r}: input {key!r} must be a string, "
                                  f"got {type(value).__name__}")
        rendered = self.template.format_messages(**inputs)
        return [{"role": _ROLE_OF_TYPE[m.type], "content": str(m.content)} for m in rendered]


def prompts_dir() -> Path:
    """The packaged ``prompts/`` folder."""
    return asset_dir("prompts")


def available_prompts(directory: str | Path | None = None) -> list[str]:
    """Names of the templates in ``directory`` (default: the packaged ``prompts/``), sorted."""
    folder = Path(directory) if directory is not None else prompts_dir()
    return sorted(p.stem for p in folder.glob(f"*{_SUFFIX}"))


def load_prompt(name: str, directory: str | Path | None = None) -> Prompt:
    """Load ``<directory>/<name>.yaml`` (default folder: the packaged ``prompts/``).

    Raises :class:`PromptError` for an unknown name (listing the available ones) and for a malformed
    file (naming it and what is wrong).
    """
    folder = Path(directory) if directory is not None else prompts_dir()
    path = folder / f"{name}{_SUFFIX}"
    if "/" in name or "\\" in name or not path.is_file():
        available = available_prompts(folder)
        raise PromptError(f"unknown prompt {name!r} in {folder}; available: {', '.join(available) or 'none'}")
    return _parse(path, _read_yaml(path))


def _read_yaml(path: Path) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PromptError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict):
        raise PromptError(f"{path}: expected a mapping with keys {', '.join(sorted(_KEYS))}")
    return data


def _parse(path: Path, data: Mapping[str, Any]) -> Prompt:
    missing, extra = sorted(_KEYS - data.keys()), sorted(data.keys() - _KEYS)
    if missing or extra:
        raise PromptError(f"{path}: missing keys {missing}, unknown keys {extra}; "
                          f"expected exactly {', '.join(sorted(_KEYS))}")
    if data["name"] != path.stem:
        raise PromptError(f"{path}: name {data['name']!r} differs from the file name {path.stem!r}")
    version = data["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PromptError(f"{path}: version must be a positive integer, got {version!r}")
    variables = data["input_variables"]
    if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables):
        raise PromptError(f"{path}: input_variables must be a list of names")
    template = _template(path, data["messages"])
    used = set(template.input_variables)
    if used != set(variables) or len(variables) != len(set(variables)):
        raise PromptError(f"{path}: input_variables {sorted(variables)} do not match the variables the "
                          f"messages use {sorted(used)}")
    return Prompt(name=data["name"], version=version, description=str(data["description"]).strip(),
                  input_variables=tuple(variables), template=template, path=path)


def _template(path: Path, messages: Any) -> ChatPromptTemplate:
    if not isinstance(messages, list) or not messages:
        raise PromptError(f"{path}: messages must be a non-empty list of {{role, content}}")
    pairs: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise PromptError(f"{path}: messages[{i}] must have exactly the keys role and content")
        role, content = message["role"], message["content"]
        if role not in _ROLES or not isinstance(content, str) or not content.strip():
            raise PromptError(f"{path}: messages[{i}] needs a role in {', '.join(_ROLES)} and non-empty text")
        pairs.append((role, content))
    try:
        return ChatPromptTemplate.from_messages(pairs, template_format="f-string")
    except (ValueError, KeyError) as exc:  # langchain-core reports unbalanced braces as ValueError
        raise PromptError(f"{path}: bad template text ({exc}); write literal braces as {{{{ and }}}}") from exc
