"""Builds a template from a recipe: plan layer ids, reuse cached layers, run the rest.

For each step the builder derives the layer id from the step text and its parent's id. A
layer already on disk is reused (unless `force`); otherwise the runner fills a staging area,
and the builder commits it atomically (see `corral.templates.layers`). The template manifest
is written last, so a failed build leaves the previous manifest of the template untouched.
Builds of one templates dir are serialized by a lock file.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from corral.templates.errors import BuildError, TemplateCorrupt, TemplateError
from corral.templates.layers import LayerInfo, LayerStore, layer_id, tree_size
from corral.templates.manifest import (
    TemplateManifest,
    read_manifest,
    utc_timestamp,
    write_manifest,
)
from corral.templates.mirror import host_debian_mirror
from corral.templates.package_copy import copy_package, package_digest
from corral.templates.recipe import (
    CopyStep,
    DebootstrapBase,
    Recipe,
    RunStep,
    valid_template_name,
)
from corral.templates.runner import SOURCE_DATE_EPOCH, StepOutcome, StepRunner
from corral.templates.whiteouts import mirror_opaque_markers

__all__ = [
    "BuildReporter",
    "BuildResult",
    "PlannedStep",
    "SilentReporter",
    "build_lock",
    "build_template",
    "plan_steps",
]

# Bump when the builder changes what a debootstrap layer contains (e.g. its clean-up).
_BOOTSTRAP_FORMAT = "bootstrap-v2"


@dataclass(frozen=True)
class PlannedStep:
    """One step of a build, with the id of the layer it makes."""

    index: int
    total: int
    layer_id: str
    parent_id: str | None
    summary: str
    step: DebootstrapBase | RunStep | CopyStep


@dataclass(frozen=True)
class BuildResult:
    """A finished build: the manifest written and which layers were built or reused."""

    manifest: TemplateManifest
    built: tuple[str, ...]
    cached: tuple[str, ...]
    seconds: float
    size_bytes: int


class BuildReporter(Protocol):
    """Receives progress; the CLI shows it, tests ignore or record it."""

    def step_started(self, step: PlannedStep) -> None: ...

    def step_output(self, line: str) -> None: ...

    def step_finished(self, step: PlannedStep, *, cached: bool, seconds: float) -> None: ...


class SilentReporter:
    """A reporter that discards everything."""

    def step_started(self, step: PlannedStep) -> None:
        pass

    def step_output(self, line: str) -> None:
        pass

    def step_finished(self, step: PlannedStep, *, cached: bool, seconds: float) -> None:
        pass


def _step_text(step: DebootstrapBase | RunStep | CopyStep) -> str:
    if isinstance(step, DebootstrapBase):
        return f"{step.canonical()}\nSOURCE_DATE_EPOCH={SOURCE_DATE_EPOCH}\n{_BOOTSTRAP_FORMAT}"
    if isinstance(step, CopyStep):
        return f"{step.canonical()}\nsha256={package_digest(step.package)}"
    return step.canonical()


def plan_steps(recipe: Recipe, parent_layers: tuple[str, ...] = ()) -> list[PlannedStep]:
    """The steps of `recipe` with their layer ids, on top of `parent_layers` (bottom first)."""
    steps: list[DebootstrapBase | RunStep | CopyStep] = []
    if isinstance(recipe.base, DebootstrapBase):
        steps.append(recipe.base)
    steps.extend(recipe.steps)
    parent = parent_layers[-1] if parent_layers else None
    planned: list[PlannedStep] = []
    for index, step in enumerate(steps, start=1):
        this = layer_id(parent, _step_text(step))
        planned.append(
            PlannedStep(
                index=index,
                total=len(steps),
                layer_id=this,
                parent_id=parent,
                summary=step.summary(),
                step=step,
            )
        )
        parent = this
    return planned


@contextmanager
def build_lock(templates_dir: Path) -> Iterator[None]:
    """Hold the exclusive build lock of `templates_dir` (blocks while another build runs)."""
    templates_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(templates_dir / ".build.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def build_template(
    name: str,
    recipe: Recipe,
    *,
    templates_dir: Path,
    runner: StepRunner,
    reporter: BuildReporter | None = None,
    force: bool = False,
    mirror: str | None = None,
) -> BuildResult:
    """Build template `name` from `recipe` into `templates_dir` and write its manifest.

    `force` rebuilds this recipe's own layers even if cached (never those of a `FROM`
    template). `mirror` overrides the Debian mirror otherwise read from the host's apt.
    Raises `BuildError`, or `TemplateNotFound`/`TemplateCorrupt` for a bad `FROM` template.
    """
    if not valid_template_name(name):
        raise BuildError(f"invalid template name {name!r}")
    report = reporter or SilentReporter()
    started = time.monotonic()
    templates_dir = templates_dir.absolute()
    store = LayerStore(templates_dir)
    with build_lock(templates_dir):
        store.sweep_staging()
        parent_layers, defaults = _resolve_base(templates_dir, store, recipe)
        layers = list(parent_layers)
        built: list[str] = []
        cached: list[str] = []
        for planned in plan_steps(recipe, parent_layers):
            report.step_started(planned)
            step_started = time.monotonic()
            if store.has(planned.layer_id) and not force:
                cached.append(planned.layer_id)
                is_cached = True
            else:
                try:
                    _build_layer(store, runner, planned, layers, mirror, report)
                except OSError as exc:
                    raise BuildError(f"{planned.summary}: {exc}", step=planned.summary) from exc
                built.append(planned.layer_id)
                is_cached = False
            layers.append(planned.layer_id)
            report.step_finished(planned, cached=is_cached, seconds=time.monotonic() - step_started)
        manifest = _updated_manifest(
            templates_dir,
            TemplateManifest(
                name=name,
                layers=tuple(layers),
                user=recipe.user or defaults.user,
                workdir=recipe.workdir or defaults.workdir,
                env={**defaults.env, **dict(recipe.env)},
                limits=recipe.limits.over(defaults.limits),
                start=recipe.start or defaults.start,
                created_at=utc_timestamp(time.time()),
            ),
            rebuilt=bool(built),
        )
    size = sum(info.size_bytes for info in map(store.info, layers) if info is not None)
    return BuildResult(
        manifest=manifest,
        built=tuple(built),
        cached=tuple(cached),
        seconds=time.monotonic() - started,
        size_bytes=size,
    )


def _updated_manifest(
    templates_dir: Path, manifest: TemplateManifest, *, rebuilt: bool
) -> TemplateManifest:
    """Write `manifest`, unless an identical one (but for `created_at`) is already there."""
    try:
        current = read_manifest(templates_dir, manifest.name)
    except TemplateError:
        current = None
    if current is not None and not rebuilt:
        unchanged = replace(manifest, created_at=current.created_at)
        if unchanged == current:
            return current
    write_manifest(templates_dir, manifest)
    return manifest


def _resolve_base(
    templates_dir: Path, store: LayerStore, recipe: Recipe
) -> tuple[tuple[str, ...], TemplateManifest]:
    """The layers and defaults a recipe starts from: none, or those of its FROM template."""
    if isinstance(recipe.base, DebootstrapBase):
        return (), TemplateManifest(name="", layers=())
    base = read_manifest(templates_dir, recipe.base.name)
    missing = [layer for layer in base.layers if not store.has(layer)]
    if missing:
        raise TemplateCorrupt(f"template {base.name!r}: missing layers {', '.join(missing)}")
    return base.layers, base


def _build_layer(
    store: LayerStore,
    runner: StepRunner,
    planned: PlannedStep,
    lowers: list[str],
    mirror: str | None,
    report: BuildReporter,
) -> None:
    started = time.monotonic()
    with store.staging() as area:
        outcome: StepOutcome
        if isinstance(planned.step, DebootstrapBase):
            mirror_url = mirror or host_debian_mirror(planned.step.suite)
            report.step_output(f"I: Debian mirror {mirror_url}")
            outcome = runner.bootstrap(
                planned.step, area.rootfs, mirror=mirror_url, on_line=report.step_output
            )
        elif isinstance(planned.step, CopyStep):
            copy_package(planned.step.package, area.rootfs, planned.step.destination)
            outcome = StepOutcome()
        else:
            scratch = area.path / "scratch"
            scratch.mkdir()
            outcome = runner.run(
                planned.step,
                lowers=[store.path(layer) for layer in lowers],
                upper=area.rootfs,
                scratch=scratch,
                on_line=report.step_output,
            )
            mirror_opaque_markers(area.rootfs)
        info = LayerInfo(
            layer_id=planned.layer_id,
            parent=planned.parent_id,
            step=_step_text(planned.step),
            created_at=time.time(),
            build_seconds=time.monotonic() - started,
            size_bytes=tree_size(area.rootfs),
            packages=outcome.packages,
        )
        store.commit(area, info)
