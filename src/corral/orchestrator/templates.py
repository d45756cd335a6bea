"""What the orchestrator needs of the template store: name -> `TemplateRef`."""

from __future__ import annotations

from typing import Protocol

from corral.model import TemplateRef

__all__ = ["TemplateCatalog"]


class TemplateCatalog(Protocol):
    """Resolves a template name, alias or id to a built template."""

    def load(self, name: str) -> TemplateRef:
        """The template called `name`; raises `corral.orchestrator.TemplateNotFound`."""
