"""The real runner: RUN steps over the built `base` layers in a private templates dir.

Needs root and the built `base` template (whose layers are only ever read, as lower layers).
Checks the properties the runner promises: changes land in the new layer as overlay
whiteouts and opaque markers, and nothing stays mounted or running, even when a step fails.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from corral.model import TemplateRef
from corral.templates import (
    BuildError,
    LayerStore,
    NamespaceStepRunner,
    TemplateManifest,
    build_template,
    parse_recipe,
)
from corral.templates.manifest import write_manifest

pytestmark = [
    pytest.mark.uses_built_base,
    pytest.mark.skipif(os.geteuid() != 0, reason="RUN steps need root"),
]

MARK = "317.25"  # an unusual sleep argument: finds processes a step left behind


@pytest.fixture
def stack(tmp_path: Path, built_base: TemplateRef) -> Path:
    """A templates dir whose `base` shares the built base layers through symlinks."""
    templates_dir = tmp_path / "templates"
    (templates_dir / "layers").mkdir(parents=True)
    ids = []
    for layer in built_base.layers:
        (templates_dir / "layers" / Path(layer).name).symlink_to(layer)
        ids.append(Path(layer).name)
    write_manifest(templates_dir, TemplateManifest(name="base", layers=tuple(ids)))
    return templates_dir


def _our_mounts(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as handle:
        return [line for line in handle if str(path) in line]


def _stragglers() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if MARK.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_run_step_makes_an_overlay_layer(stack: Path) -> None:
    recipe = parse_recipe(
        "FROM base\n"
        "ENV GREETING=hello\n"
        'RUN echo "$GREETING $SOURCE_DATE_EPOCH" > /greeting \\\n'
        " && test -r /proc/self/status && test -c /dev/null && test -d /dev/pts \\\n"
        " && rm /etc/hostname \\\n"
        " && rm -rf /etc/sudoers.d && mkdir /etc/sudoers.d \\\n"
        f" && (sleep {MARK} &) && echo step-output\n"
    )
    lines: list[str] = []

    class Collect:
        def step_started(self, step: object) -> None: ...
        def step_output(self, line: str) -> None:
            lines.append(line)

        def step_finished(self, step: object, *, cached: bool, seconds: float) -> None: ...

    result = build_template(
        "child", recipe, templates_dir=stack, runner=NamespaceStepRunner(), reporter=Collect()
    )
    assert "step-output" in lines
    layer = LayerStore(stack).path(result.manifest.layers[-1])
    assert (layer / "greeting").read_text() == "hello 1704067200\n"
    hostname = os.lstat(layer / "etc" / "hostname")
    assert stat.S_ISCHR(hostname.st_mode) and hostname.st_rdev == 0  # a whiteout
    opaque = layer / "etc" / "sudoers.d"
    assert os.getxattr(opaque, "trusted.overlay.opaque") == b"y"
    assert os.getxattr(opaque, "user.overlay.opaque") == b"y"
    assert not (layer / "proc" / "self").exists()  # /proc was a mount, not copied
    assert not (layer / "dev" / "pts").exists()
    info = LayerStore(stack).info(result.manifest.layers[-1])
    assert info is not None and "python3" in info.packages
    assert _our_mounts(stack) == []
    assert _stragglers() == []
    assert not list((stack / ".build").iterdir())


def test_failing_step_leaves_nothing(stack: Path) -> None:
    text = f"FROM base\nRUN echo partial > /partial; (sleep {MARK} &); echo about-to-fail; exit 7\n"
    with pytest.raises(BuildError) as info:
        build_template(
            "child", parse_recipe(text), templates_dir=stack, runner=NamespaceStepRunner()
        )
    assert info.value.exit_status == 7
    assert "about-to-fail" in info.value.log_tail
    assert [p.name for p in (stack / "layers").iterdir() if not p.is_symlink()] == []
    assert not (stack / "child.json").exists()
    assert _our_mounts(stack) == []
    assert _stragglers() == []
    assert not list((stack / ".build").iterdir())
