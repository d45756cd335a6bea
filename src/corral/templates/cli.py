"""`corral template ...`: build and list templates, with rich progress output."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from corral.templates.builder import BuildResult, PlannedStep, build_template
from corral.templates.errors import BuildError, TemplateError
from corral.templates.layers import LayerStore
from corral.templates.manifest import list_templates
from corral.templates.namespace_runner import NamespaceStepRunner
from corral.templates.recipe import Recipe, parse_recipe, shipped_recipe

__all__ = ["template"]

DEFAULT_TEMPLATES_DIR = "/var/lib/corral/templates"

templates_dir_option = click.option(
    "--templates-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_TEMPLATES_DIR,
    envvar="CORRAL_TEMPLATES_DIR",
    show_default=True,
    show_envvar=True,
    help="Where templates (manifests and layers) are stored.",
)


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class RichBuildReporter:
    """Shows one spinner line per step with its elapsed time and the step's latest output.

    With `verbose` (or when the output is not a terminal and `verbose` is set) every output
    line is printed dimmed; otherwise only the latest one is shown next to the spinner.
    """

    def __init__(self, console: Console, *, verbose: bool) -> None:
        self.console = console
        self.verbose = verbose
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[last]}"),
            console=console,
            transient=True,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> RichBuildReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def step_started(self, step: PlannedStep) -> None:
        self.task = self.progress.add_task(
            f"[{step.index}/{step.total}] {escape(step.summary)}", last=""
        )

    def step_output(self, line: str) -> None:
        if self.verbose:
            self.console.print(line, style="dim", markup=False, highlight=False)
        if self.task is not None:
            self.progress.update(self.task, last=escape(line.strip()[:60]))

    def step_finished(self, step: PlannedStep, *, cached: bool, seconds: float) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None
        outcome = "[cyan]cached[/]" if cached else f"[green]built[/] in {seconds:.2f} s"
        self.console.print(
            f"[green]✓[/] [{step.index}/{step.total}] {escape(step.summary)} {outcome}",
            highlight=False,
        )


def _load_recipe(name: str, recipe_file: Path | None) -> Recipe:
    if recipe_file is None:
        return shipped_recipe(name)
    try:
        text = recipe_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot read {recipe_file}: {exc.strerror}") from exc
    return parse_recipe(text, source=str(recipe_file))


@click.group()
def template() -> None:
    """Build and inspect sandbox templates."""


@template.command()
@click.argument("name")
@templates_dir_option
@click.option("--force", is_flag=True, help="Rebuild the recipe's layers even if cached.")
@click.option(
    "--recipe",
    "recipe_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Build from this recipe file instead of the shipped recipe NAME.",
)
@click.option("--mirror", help="Debian mirror URL (default: the one the host's apt uses).")
@click.option("-v", "--verbose", is_flag=True, help="Print every line the steps print.")
def build(
    name: str,
    templates_dir: Path,
    force: bool,
    recipe_file: Path | None,
    mirror: str | None,
    verbose: bool,
) -> None:
    """Build template NAME (reusing cached layers) into the templates dir."""
    console = Console(highlight=False)
    try:
        recipe = _load_recipe(name, recipe_file)
    except TemplateError as exc:
        raise click.ClickException(str(exc)) from exc
    if os.geteuid() != 0:
        raise click.ClickException("building a template needs root (debootstrap, mounts)")
    console.print(f"Building template [bold]{escape(name)}[/] into {escape(str(templates_dir))}")
    try:
        with RichBuildReporter(console, verbose=verbose) as reporter:
            result = build_template(
                name,
                recipe,
                templates_dir=templates_dir,
                runner=NamespaceStepRunner(),
                reporter=reporter,
                force=force,
                mirror=mirror,
            )
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]: finished layers are kept, the unfinished one is not")
        raise SystemExit(130) from None
    except BuildError as exc:
        for line in exc.log_tail:
            console.print(line, style="dim", markup=False, highlight=False)
        raise click.ClickException(str(exc)) from exc
    except TemplateError as exc:
        raise click.ClickException(str(exc)) from exc
    _print_result(console, result)


def _print_result(console: Console, result: BuildResult) -> None:
    layers = len(result.manifest.layers)
    console.print(
        f"[bold green]Template {escape(result.manifest.name)} ready[/]: {layers} layers "
        f"({len(result.built)} built, {len(result.cached)} cached), "
        f"{_human_size(result.size_bytes)}, {result.seconds:.1f} s",
        highlight=False,
    )


@template.command(name="list")
@templates_dir_option
def list_(templates_dir: Path) -> None:
    """List the built templates."""
    store = LayerStore(templates_dir)
    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "LAYERS", "SIZE", "USER", "WORKDIR", "CREATED"):
        table.add_column(column)
    for manifest in list_templates(templates_dir):
        infos = [store.info(layer) for layer in manifest.layers]
        size = sum(info.size_bytes for info in infos if info is not None)
        table.add_row(
            manifest.name,
            str(len(manifest.layers)),
            _human_size(size),
            manifest.user,
            manifest.workdir,
            manifest.created_at,
        )
    Console(highlight=False).print(table)


@template.command()
@templates_dir_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def prune(templates_dir: Path, yes: bool) -> None:
    """Delete layers no template uses and layers replaced by --force builds.

    Only safe while no sandbox is running: a running sandbox may use a replaced layer.
    """
    keep = {layer for manifest in list_templates(templates_dir) for layer in manifest.layers}
    if not yes:
        click.confirm("Delete unused layers? No sandbox may be running", abort=True)
    for path in LayerStore(templates_dir).prune(keep):
        click.echo(f"removed {path}")
