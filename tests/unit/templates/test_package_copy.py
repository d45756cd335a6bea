"""`COPY corral.PACKAGE DIR`: which files land in the layer, and the digest of the layer id."""

from __future__ import annotations

import stat
from pathlib import Path, PurePosixPath

import pytest

from corral.templates import BuildError, CopyStep, Recipe, TemplateBase, plan_steps
from corral.templates.package_copy import copy_package, package_digest, package_files


def test_files_are_the_package_and_its_parents_init() -> None:
    names = [str(relative) for relative, _ in package_files("corral.model")]
    assert names[0] == "corral/__init__.py"
    assert "corral/model/__init__.py" in names and "corral/model/limits.py" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    assert not [name for name in names if name.startswith("corral/agent")]


def test_copy_writes_importable_root_owned_files(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    copy_package("corral.model", rootfs, "/opt/lib")
    copied = rootfs / "opt/lib/corral/model/limits.py"
    assert (
        copied.read_bytes()
        == Path(__import__("corral.model.limits").__file__)
        .parent.joinpath("model/limits.py")
        .read_bytes()
    )
    for path in (rootfs / "opt", rootfs / "opt/lib/corral", rootfs / "opt/lib/corral/model"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert stat.S_IMODE(copied.stat().st_mode) == 0o644
    assert (rootfs / "opt/lib/corral/__init__.py").is_file()


def test_digest_follows_the_content(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (tmp_path / "corral_fake_init.py").write_text("")
    module = package / "a.py"
    module.write_text("x = 1\n")

    def fake_files(name: str) -> list[tuple[PurePosixPath, Path]]:
        return [(PurePosixPath("corral/pkg/a.py"), module)]

    monkeypatch.setattr("corral.templates.package_copy.package_files", fake_files)
    before = package_digest("corral.pkg")
    module.write_text("x = 2\n")
    assert package_digest("corral.pkg") != before


def test_layer_id_changes_with_the_package_content(monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = Recipe(base=TemplateBase("base"), steps=(CopyStep("corral.model", "/opt/lib"),))
    first = plan_steps(recipe, ("a" * 24,))[0].layer_id
    monkeypatch.setattr("corral.templates.builder.package_digest", lambda package: "other")
    assert plan_steps(recipe, ("a" * 24,))[0].layer_id != first


def test_unknown_package_is_a_build_error() -> None:
    with pytest.raises(BuildError, match="not a package"):
        package_files("corral.no_such_package")
