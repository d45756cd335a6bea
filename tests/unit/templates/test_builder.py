"""The builder with a fake runner: caching, atomic commits, failures that leave nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.templates import (
    BuildError,
    BuildResult,
    LayerInfo,
    LayerStore,
    PlannedStep,
    TemplateNotFound,
    build_template,
    load_template,
    parse_recipe,
    plan_steps,
    read_manifest,
)

from .conftest import FakeRunner

MIRROR = "http://mirror.invalid/debian"
RECIPE = parse_recipe(
    "FROM debootstrap bookworm minbase\nINCLUDE curl\nENV A=1\nRUN one\nRUN two\nUSER user\n"
)


class RecordingReporter:
    def __init__(self) -> None:
        self.events: list[str] = []

    def step_started(self, step: PlannedStep) -> None:
        self.events.append(f"start {step.index}/{step.total}")

    def step_output(self, line: str) -> None:
        self.events.append(f"line {line}")

    def step_finished(self, step: PlannedStep, *, cached: bool, seconds: float) -> None:
        self.events.append(f"done {step.index} {'cached' if cached else 'built'}")


def _build(
    templates_dir: Path,
    runner: FakeRunner,
    text: str | None = None,
    *,
    force: bool = False,
    reporter: RecordingReporter | None = None,
) -> BuildResult:
    recipe = RECIPE if text is None else parse_recipe(text)
    return build_template(
        "t",
        recipe,
        templates_dir=templates_dir,
        runner=runner,
        mirror=MIRROR,
        force=force,
        reporter=reporter,
    )


def _staging_leftovers(templates_dir: Path) -> list[Path]:
    staging = templates_dir / ".build"
    return list(staging.iterdir()) if staging.is_dir() else []


def test_first_build_makes_every_layer(templates_dir: Path, fake_runner: FakeRunner) -> None:
    reporter = RecordingReporter()
    result = _build(templates_dir, fake_runner, reporter=reporter)
    assert fake_runner.calls == ["bootstrap bookworm", "run one", "run two"]
    assert result.cached == ()
    assert result.built == result.manifest.layers
    assert reporter.events == [
        "start 1/3",
        f"line I: Debian mirror {MIRROR}",
        f"line I: fake debootstrap from {MIRROR}",
        "done 1 built",
        "start 2/3",
        "line ran",
        "done 2 built",
        "start 3/3",
        "line ran",
        "done 3 built",
    ]
    ref = load_template(templates_dir, "t")
    assert [Path(p).name for p in ref.layers] == [s.layer_id for s in plan_steps(RECIPE)]
    manifest = read_manifest(templates_dir, "t")
    assert manifest.env == {"A": "1"} and manifest.user == "user"
    # Each RUN step saw the layers below it, bottom first.
    store = LayerStore(templates_dir)
    assert fake_runner.lowers_seen == [
        [store.path(manifest.layers[0])],
        [store.path(manifest.layers[0]), store.path(manifest.layers[1])],
    ]
    info = store.info(manifest.layers[0])
    assert isinstance(info, LayerInfo)
    assert info.parent is None and info.packages == {"bash": "5.2.15-2+b7"}
    assert "SOURCE_DATE_EPOCH=" in info.step
    assert store.info(manifest.layers[2]).parent == manifest.layers[1]  # type: ignore[union-attr]
    assert _staging_leftovers(templates_dir) == []


def test_rebuild_reuses_cached_layers(templates_dir: Path, fake_runner: FakeRunner) -> None:
    first = _build(templates_dir, fake_runner)
    inode = (templates_dir / "t.json").stat().st_ino
    again = FakeRunner()
    second = _build(templates_dir, again)
    assert (templates_dir / "t.json").stat().st_ino == inode
    assert again.calls == []
    assert second.cached == first.manifest.layers
    assert second.manifest == first.manifest  # not rewritten: same created_at
    # Changing the last step rebuilds only that step.
    third = FakeRunner()
    _build(
        templates_dir,
        third,
        "FROM debootstrap bookworm minbase\nINCLUDE curl\nENV A=1\nRUN one\nRUN three\n",
    )
    assert third.calls == ["run three"]


def test_failed_step_commits_nothing_and_keeps_the_old_manifest(
    templates_dir: Path, fake_runner: FakeRunner
) -> None:
    good = _build(templates_dir, fake_runner)
    failing = "FROM debootstrap bookworm minbase\nINCLUDE curl\nENV A=1\nRUN one\nRUN fail\n"
    with pytest.raises(BuildError) as info:
        _build(templates_dir, FakeRunner(), failing)
    assert info.value.exit_status == 3
    failed_id = plan_steps(parse_recipe(failing))[-1].layer_id
    store = LayerStore(templates_dir)
    assert not store.has(failed_id)
    assert not (templates_dir / "layers" / f"{failed_id}.json").exists()
    assert _staging_leftovers(templates_dir) == []
    assert read_manifest(templates_dir, "t").layers == good.manifest.layers


def test_interrupted_step_leaves_no_half_layer(
    templates_dir: Path, fake_runner: FakeRunner
) -> None:
    text = "FROM debootstrap bookworm minbase\nRUN interrupt\n"
    with pytest.raises(KeyboardInterrupt):
        _build(templates_dir, fake_runner, text)
    planned = plan_steps(parse_recipe(text))
    store = LayerStore(templates_dir)
    assert store.has(planned[0].layer_id)  # the finished step below stays cached
    assert not store.has(planned[1].layer_id)
    assert _staging_leftovers(templates_dir) == []
    with pytest.raises(TemplateNotFound):
        load_template(templates_dir, "t")


def test_crash_leftovers_are_never_layers_and_get_swept(
    templates_dir: Path, fake_runner: FakeRunner
) -> None:
    # What a builder killed with SIGKILL mid-step leaves: a staging dir with a partial rootfs.
    planned = plan_steps(RECIPE)
    leftover = templates_dir / ".build" / "deadbeefdeadbeef" / "rootfs"
    (leftover / "etc").mkdir(parents=True)
    (leftover / "etc" / "half-written").write_text("x")
    store = LayerStore(templates_dir)
    assert not any(store.has(step.layer_id) for step in planned)
    _build(templates_dir, fake_runner)
    assert fake_runner.calls[0] == "bootstrap bookworm"
    assert _staging_leftovers(templates_dir) == []


def test_commit_is_a_rename_of_a_complete_dir(templates_dir: Path) -> None:
    store = LayerStore(templates_dir)
    layer = "0123456789abcdef01234567"
    info = LayerInfo(layer, None, "RUN x", created_at=1.0, build_seconds=0.5, size_bytes=4096)
    with store.staging() as area:
        (area.rootfs / "file").write_text("complete")
        assert not store.has(layer)
        path = store.commit(area, info)
        assert not area.rootfs.exists()
    assert path == templates_dir / "layers" / layer
    assert (path / "file").read_text() == "complete"
    assert store.info(layer) == info
    assert json.loads((templates_dir / "layers" / f"{layer}.json").read_text())["id"] == layer
    assert _staging_leftovers(templates_dir) == []


def test_force_rebuilds_and_keeps_the_replaced_layer_aside(
    templates_dir: Path, fake_runner: FakeRunner
) -> None:
    first = _build(templates_dir, fake_runner)
    bottom = LayerStore(templates_dir).path(first.manifest.layers[0])
    (bottom / "marker-of-old-copy").write_text("old")
    forced = FakeRunner()
    result = _build(templates_dir, forced, force=True)
    assert forced.calls == ["bootstrap bookworm", "run one", "run two"]
    assert result.manifest.layers == first.manifest.layers
    assert not (bottom / "marker-of-old-copy").exists()
    replaced = list((templates_dir / "layers" / ".replaced").iterdir())
    assert len(replaced) == 3
    assert any((old / "marker-of-old-copy").exists() for old in replaced)
    assert LayerStore(templates_dir).prune(set(result.manifest.layers))
    assert not (templates_dir / "layers" / ".replaced").exists()
    assert load_template(templates_dir, "t").layers


def test_prune_keeps_only_referenced_layers(templates_dir: Path, fake_runner: FakeRunner) -> None:
    _build(templates_dir, fake_runner)
    kept = _build(
        templates_dir, FakeRunner(), "FROM debootstrap bookworm minbase\nINCLUDE curl\nRUN other\n"
    )
    store = LayerStore(templates_dir)
    removed = store.prune(set(kept.manifest.layers))
    assert {p.name.removesuffix(".json") for p in removed} == {
        s.layer_id for s in plan_steps(RECIPE)[1:]
    }
    assert all(store.has(layer) for layer in kept.manifest.layers)


def test_from_template_builds_on_its_layers_and_defaults(
    templates_dir: Path, fake_runner: FakeRunner
) -> None:
    base = _build(templates_dir, fake_runner)
    child = build_template(
        "child",
        parse_recipe("FROM t\nENV B=2\nRUN extra\nWORKDIR /srv\n"),
        templates_dir=templates_dir,
        runner=fake_runner,
    )
    assert child.manifest.layers[:3] == base.manifest.layers
    assert len(child.manifest.layers) == 4
    assert child.manifest.env == {"A": "1", "B": "2"}
    assert (child.manifest.user, child.manifest.workdir) == ("user", "/srv")
    assert fake_runner.calls[-1] == "run extra"


def test_from_missing_template(templates_dir: Path, fake_runner: FakeRunner) -> None:
    with pytest.raises(TemplateNotFound):
        build_template(
            "child", parse_recipe("FROM nope\n"), templates_dir=templates_dir, runner=fake_runner
        )


def test_invalid_template_name(templates_dir: Path, fake_runner: FakeRunner) -> None:
    with pytest.raises(BuildError, match="invalid template name"):
        build_template("../x", RECIPE, templates_dir=templates_dir, runner=fake_runner)
