"""Fixtures of the template tests: a fake step runner and the already-built `base` template.

`uses_built_base` marks tests that read the `base` template built by `scripts/setup.sh`
(`corral template build base`); they never build it themselves. Without it they are skipped,
except under CI, where a missing template is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from corral.model import TemplateRef
from corral.templates import (
    DEFAULT_TEMPLATES_DIR,
    BuildError,
    DebootstrapBase,
    RunStep,
    StepOutcome,
    TemplateError,
    load_template,
)
from corral.templates.runner import LineSink


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "uses_built_base: reads the already-built `base` template (never rebuilds it)",
    )


class FakeRunner:
    """Writes marker files instead of running debootstrap/chroot; records every call.

    A RUN command containing `fail` writes a partial file and then fails; one containing
    `interrupt` raises KeyboardInterrupt half-way, like a builder killed mid-step.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lowers_seen: list[list[Path]] = []

    def bootstrap(
        self, base: DebootstrapBase, rootfs: Path, *, mirror: str, on_line: LineSink
    ) -> StepOutcome:
        self.calls.append(f"bootstrap {base.suite}")
        (rootfs / "etc").mkdir()
        (rootfs / "etc" / "debian_version").write_text(f"{base.suite}\n")
        on_line(f"I: fake debootstrap from {mirror}")
        return StepOutcome(packages={"bash": "5.2.15-2+b7"})

    def run(
        self,
        step: RunStep,
        *,
        lowers: Sequence[Path],
        upper: Path,
        scratch: Path,
        on_line: LineSink,
    ) -> StepOutcome:
        self.calls.append(f"run {step.command}")
        self.lowers_seen.append(list(lowers))
        (upper / f"step-{len(self.calls)}").write_text(step.command)
        if "interrupt" in step.command:
            raise KeyboardInterrupt
        if "fail" in step.command:
            raise BuildError("fake failure", step=step.summary(), exit_status=3, log_tail=("x",))
        on_line("ran")
        return StepOutcome()


@pytest.fixture
def fake_runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def templates_dir(tmp_path: Path) -> Path:
    return tmp_path / "templates"


def _default_templates_dir() -> Path:
    return Path(os.environ.get("CORRAL_TEMPLATES_DIR", DEFAULT_TEMPLATES_DIR))


@pytest.fixture(scope="session")
def built_base() -> TemplateRef:
    """The `base` template as built on this machine (by `scripts/setup.sh`)."""
    try:
        return load_template(_default_templates_dir(), "base")
    except TemplateError as exc:
        message = f"`base` is not built ({exc}): run `sudo scripts/setup.sh`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
