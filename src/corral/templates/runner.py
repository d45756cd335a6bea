"""The `StepRunner` protocol: what executes one build step on disk.

The builder owns the layer store, caching and commits; a runner only turns one step into
files in a directory it is given. `NamespaceStepRunner` is the real one; tests use fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from corral.templates.recipe import DebootstrapBase, RunStep

__all__ = ["SOURCE_DATE_EPOCH", "LineSink", "StepOutcome", "StepRunner"]

# Every step runs with this SOURCE_DATE_EPOCH (2024-01-01T00:00:00Z) so that tools which
# honour it (dpkg, python's compileall, gzip, ...) write the same timestamps on every build.
SOURCE_DATE_EPOCH = 1704067200

LineSink = Callable[[str], None]


@dataclass(frozen=True)
class StepOutcome:
    """What a successful step reports: the packages installed afterwards (name → version)."""

    packages: Mapping[str, str] = field(default_factory=dict)


class StepRunner(Protocol):
    """Executes build steps. Failures raise `BuildError`; nothing is left mounted either way."""

    def bootstrap(
        self, base: DebootstrapBase, rootfs: Path, *, mirror: str, on_line: LineSink
    ) -> StepOutcome:
        """Create a complete rootfs for `base` in the empty directory `rootfs`."""
        ...

    def run(
        self,
        step: RunStep,
        *,
        lowers: Sequence[Path],
        upper: Path,
        scratch: Path,
        on_line: LineSink,
    ) -> StepOutcome:
        """Run `step` over the overlay of `lowers` (bottom first), writing changes to `upper`.

        `upper` is an empty directory; `scratch` is an empty directory on the same
        filesystem for the runner's own use (overlay work dir, mount point, ...).
        """
        ...
