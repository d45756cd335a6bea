"""Errors of the template layer (see the hierarchy in `corral.templates`)."""

from __future__ import annotations

__all__ = [
    "BuildError",
    "RecipeError",
    "RecipeNotFound",
    "TemplateCorrupt",
    "TemplateError",
    "TemplateNotFound",
]


class TemplateError(Exception):
    """Base of template errors. `str(exc)` is safe to show to clients."""


class TemplateNotFound(TemplateError):
    """No built template has that name (or the name is not a valid template name)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"template {name!r} not found")
        self.name = name


class TemplateCorrupt(TemplateError):
    """A template manifest exists but is unreadable or names a layer that is missing."""


class RecipeError(TemplateError):
    """A recipe is malformed; `line` is the 1-based line of the fault (0 if not one line)."""

    def __init__(self, message: str, *, line: int = 0, source: str = "<recipe>") -> None:
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {message}")
        self.line = line
        self.source = source


class RecipeNotFound(RecipeError):
    """No recipe of that name ships with corral."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no recipe named {name!r}", source=name)
        self.name = name


class BuildError(TemplateError):
    """A build step failed. No layer of the failed step was committed.

    `exit_status` is the step's exit status (None if it could not be started) and
    `log_tail` its last lines of output, for the operator (not for API clients).
    """

    def __init__(
        self,
        message: str,
        *,
        step: str = "",
        exit_status: int | None = None,
        log_tail: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.step = step
        self.exit_status = exit_status
        self.log_tail = log_tail
