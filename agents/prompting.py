"""Prompt templates: package data files with declared placeholders, overridable by path.

A prompt file is plain text::

    # placeholders: question, history, budget_note
    === system ===
    You answer questions by searching ...
    === user ===
    Question: {question}
    ...

Lines starting with ``#`` before the first section are a header; ``placeholders`` lists
every ``{name}`` the sections use (literal braces are written ``{{`` and ``}}``). Loading
checks that the sections use exactly the declared names, and rendering checks that every
declared value is given, so a typo in a user's prompt fails at load time with the name.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from raggym_env.runcard import hash_text

__all__ = ["PromptError", "PromptTemplate", "available_prompts", "load_prompt"]

_SECTIONS = ("system", "user")


class PromptError(ValueError):
    """A prompt file is malformed, or rendering it lacks a declared value."""


@dataclass(frozen=True)
class PromptTemplate:
    """A loaded prompt: a system and a user section with declared ``{placeholders}``.

    Attributes:
        name: the packaged name (``"react"``) or the file path it came from.
        system: the system message template ("" for none).
        user: the user message template.
        placeholders: the declared names, in declaration order.
        source: the full file text (its hash goes into run cards).
    """

    name: str
    system: str
    user: str
    placeholders: tuple[str, ...]
    source: str

    @property
    def sha256(self) -> str:
        """Hash of the prompt file's text, for run cards."""
        return hash_text(self.source)

    def render(self, **values: object) -> list[dict[str, str]]:
        """Fill the placeholders and return chat messages (system first when non-empty)."""
        missing = [p for p in self.placeholders if p not in values]
        if missing:
            raise PromptError(f"prompt {self.name!r}: no value for placeholder(s) {missing}")
        unknown = sorted(set(values) - set(self.placeholders))
        if unknown:
            raise PromptError(
                f"prompt {self.name!r}: values {unknown} match no declared placeholder "
                f"(declared: {list(self.placeholders)})"
            )
        text = {k: str(v) for k, v in values.items()}
        messages = []
        if self.system.strip():
            messages.append({"role": "system", "content": self.system.format_map(text)})
        messages.append({"role": "user", "content": self.user.format_map(text)})
        return messages

    @classmethod
    def parse(cls, source: str, name: str) -> PromptTemplate:
        """Build a template from a prompt file's text; raises :class:`PromptError` if malformed."""
        declared: list[str] | None = None
        sections: dict[str, list[str]] = {}
        current: str | None = None
        for number, line in enumerate(source.splitlines(), 1):
            stripped = line.strip()
            if stripped.startswith("===") and stripped.endswith("==="):
                current = stripped.strip("=").strip().lower()
                if current not in _SECTIONS:
                    raise PromptError(
                        f"prompt {name!r} line {number}: unknown section {current!r}; "
                        f"expected one of {list(_SECTIONS)}"
                    )
                if current in sections:
                    raise PromptError(f"prompt {name!r} line {number}: section {current!r} twice")
                sections[current] = []
            elif current is None:
                if stripped.startswith("#") and stripped[1:].strip().startswith("placeholders:"):
                    names = stripped[1:].strip()[len("placeholders:") :]
                    declared = [n.strip() for n in names.split(",") if n.strip()]
                elif stripped and not stripped.startswith("#"):
                    raise PromptError(
                        f"prompt {name!r} line {number}: text before the first '=== user ===' "
                        "or '=== system ===' section"
                    )
            else:
                sections[current].append(line)
        if "user" not in sections:
            raise PromptError(f"prompt {name!r}: missing the '=== user ===' section")
        if declared is None:
            raise PromptError(f"prompt {name!r}: missing the '# placeholders: a, b' header line")
        system = "\n".join(sections.get("system", [])).strip("\n")
        user = "\n".join(sections["user"]).strip("\n")
        used: set[str] = set()
        for section_name, text in (("system", system), ("user", user)):
            try:
                fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
            except ValueError as exc:
                raise PromptError(f"prompt {name!r} section {section_name!r}: {exc}") from None
            for field_name in fields:
                if not field_name.isidentifier():
                    raise PromptError(
                        f"prompt {name!r} section {section_name!r}: placeholder "
                        f"{{{field_name}}} must be a plain name (write literal braces as "
                        "{{ and }})"
                    )
                used.add(field_name)
        if used != set(declared):
            raise PromptError(
                f"prompt {name!r}: placeholders used {sorted(used)} differ from those "
                f"declared {sorted(declared)}"
            )
        return cls(name, system, user, tuple(declared), source)


def available_prompts() -> list[str]:
    """Names of the prompts shipped with the package."""
    folder = resources.files("raggym.agents") / "prompts"
    return sorted(p.name[: -len(".txt")] for p in folder.iterdir() if p.name.endswith(".txt"))


def load_prompt(prompt: str | Path | PromptTemplate) -> PromptTemplate:
    """Load a packaged prompt by name (``"react"``) or a user's prompt file by path."""
    if isinstance(prompt, PromptTemplate):
        return prompt
    path = Path(prompt)
    if isinstance(prompt, Path) or path.suffix or "/" in str(prompt):
        if not path.is_file():
            raise FileNotFoundError(f"prompt file {str(path)!r} does not exist")
        return PromptTemplate.parse(path.read_text(encoding="utf-8"), str(path))
    resource = resources.files("raggym.agents") / "prompts" / f"{prompt}.txt"
    if not resource.is_file():
        raise PromptError(
            f"no packaged prompt named {prompt!r}; available: {available_prompts()} "
            "(or pass a file path)"
        )
    return PromptTemplate.parse(resource.read_text(encoding="utf-8"), str(prompt))
