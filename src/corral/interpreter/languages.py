"""The languages the interpreter serves and how a request's `language` value is read (§8).

Every language runs in a Jupyter kernel whose spec ships in `kernels/<kernel>/kernel.json`.
TypeScript is served by the same Deno kernel as JavaScript, and `language="typescript"`
without a context runs in the default *javascript* context (one Deno kernel for both), so
code of either language sees the same variables. A context created explicitly with
`language="typescript"` gets a Deno kernel of its own and reports `typescript`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "Language",
    "UnsupportedLanguageError",
    "language_named",
    "normalize_language",
]


@dataclass(frozen=True)
class Language:
    """One language a context can have."""

    name: str
    """What a context reports as its `language`."""
    kernel: str
    """Directory under `kernels/` holding the kernel spec."""
    default_context: str
    """The language whose default context runs code sent with only this `language`."""


LANGUAGES: dict[str, Language] = {
    language.name: language
    for language in (
        Language("python", kernel="ipython", default_context="python"),
        Language("javascript", kernel="deno", default_context="javascript"),
        Language("typescript", kernel="deno", default_context="javascript"),
        Language("bash", kernel="bash", default_context="bash"),
        Language("r", kernel="ir", default_context="r"),
    )
}

DEFAULT_LANGUAGE = "python"

_ALIASES = {"js": "javascript", "ts": "typescript"}


class UnsupportedLanguageError(ValueError):
    """A request named a language no kernel serves here."""

    def __init__(self, requested: str) -> None:
        available = ", ".join(LANGUAGES)
        super().__init__(f"Unsupported language {requested!r}. Available languages: {available}.")
        self.requested = requested


def normalize_language(value: str | None) -> str:
    """Lower-case and trim; `js`/`ts` aliases; empty or missing means python (§8)."""
    name = (value or "").strip().lower()
    name = _ALIASES.get(name, name) or DEFAULT_LANGUAGE
    if name not in LANGUAGES:
        raise UnsupportedLanguageError(name)
    return name


def language_named(value: str | None) -> Language:
    """The `Language` a request's `language` value stands for."""
    return LANGUAGES[normalize_language(value)]
