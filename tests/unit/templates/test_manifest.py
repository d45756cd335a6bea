"""Template manifests: loading, listing, and every way a manifest can be wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.templates import (
    TemplateCorrupt,
    TemplateManifest,
    TemplateNotFound,
    list_templates,
    load_template,
    read_manifest,
)
from corral.templates.manifest import write_manifest
from corral.templates.recipe import StartCommand

LOWER = "aaaaaaaaaaaaaaaaaaaaaaaa"
UPPER = "bbbbbbbbbbbbbbbbbbbbbbbb"


def _make(templates_dir: Path, name: str, layers: list[str], **extra: object) -> None:
    templates_dir.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        (templates_dir / "layers" / layer).mkdir(parents=True, exist_ok=True)
    raw: dict[str, object] = {
        "name": name,
        "layers": layers,
        "user": "user",
        "workdir": "/home/user",
        "env": {},
    }
    raw.update(extra)
    (templates_dir / f"{name}.json").write_text(json.dumps(raw))


def test_load_template_gives_absolute_layers_bottom_first(templates_dir: Path) -> None:
    _make(templates_dir, "base", [LOWER, UPPER], env={"A": "1"}, workdir="/w", user="u")
    ref = load_template(templates_dir, "base")
    assert ref.template_id == "base"
    assert ref.alias == "base"
    assert ref.layers == (
        str(templates_dir / "layers" / LOWER),
        str(templates_dir / "layers" / UPPER),
    )
    assert all(Path(layer).is_absolute() for layer in ref.layers)
    assert (ref.default_user, ref.default_workdir) == ("u", "/w")
    assert read_manifest(templates_dir, "base").env == {"A": "1"}


def test_relative_templates_dir_still_gives_absolute_paths(
    templates_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _make(templates_dir, "base", [LOWER])
    monkeypatch.chdir(templates_dir.parent)
    ref = load_template(Path(templates_dir.name), "base")
    assert ref.layers == (str(templates_dir / "layers" / LOWER),)


@pytest.mark.parametrize("name", ["missing", "../base", "a/b", "", "UPPER", "x" * 80])
def test_unknown_or_invalid_names_are_not_found(templates_dir: Path, name: str) -> None:
    _make(templates_dir, "base", [LOWER])
    with pytest.raises(TemplateNotFound) as info:
        load_template(templates_dir, name)
    assert info.value.name == name


def test_missing_templates_dir_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(TemplateNotFound):
        load_template(tmp_path / "nowhere", "base")
    assert list_templates(tmp_path / "nowhere") == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "malformed manifest"),
        ("[]", "malformed manifest"),
        ('{"name": "base"}', "malformed manifest"),
        ('{"name": "base", "layers": "aaaa"}', "malformed manifest"),
        ('{"name": "base", "layers": ["../../etc"]}', "malformed manifest"),
        ('{"name": "base", "layers": [], "env": {}}', "no layers"),
        (f'{{"name": "base", "layers": ["{LOWER}"], "env": []}}', "malformed manifest"),
        (f'{{"name": "other", "layers": ["{LOWER}"]}}', "manifest names 'other'"),
    ],
)
def test_corrupt_manifests(templates_dir: Path, content: str, message: str) -> None:
    (templates_dir / "layers" / LOWER).mkdir(parents=True)
    (templates_dir / "base.json").write_text(content)
    with pytest.raises(TemplateCorrupt, match=message):
        load_template(templates_dir, "base")


def test_missing_layer_is_corrupt(templates_dir: Path) -> None:
    _make(templates_dir, "base", [LOWER, UPPER])
    (templates_dir / "layers" / UPPER).rmdir()
    with pytest.raises(TemplateCorrupt, match=UPPER):
        load_template(templates_dir, "base")
    # The manifest alone still reads (listing does not check layers).
    assert read_manifest(templates_dir, "base").layers == (LOWER, UPPER)


def test_list_templates_skips_broken_and_foreign_files(templates_dir: Path) -> None:
    _make(templates_dir, "zeta", [LOWER])
    _make(templates_dir, "alpha", [UPPER])
    (templates_dir / "broken.json").write_text("{")
    (templates_dir / "Not_A_Name.json").write_text("{}")
    (templates_dir / "layers" / f"{LOWER}.json").write_text("{}")
    assert [m.name for m in list_templates(templates_dir)] == ["alpha", "zeta"]


def test_write_then_read_round_trips(templates_dir: Path) -> None:
    templates_dir.mkdir()
    manifest = TemplateManifest(
        name="t1", layers=(LOWER,), user="u", workdir="/x", env={"K": "V"}, created_at="now"
    )
    path = write_manifest(templates_dir, manifest)
    assert path == templates_dir / "t1.json"
    assert read_manifest(templates_dir, "t1") == manifest
    assert sorted(p.name for p in templates_dir.iterdir()) == ["t1.json"]  # no temp files


def test_start_command_round_trips_and_reaches_the_runtime(templates_dir: Path) -> None:
    templates_dir.mkdir()
    (templates_dir / "layers" / LOWER).mkdir(parents=True)
    manifest = TemplateManifest(
        name="t2",
        layers=(LOWER,),
        env={"K": "V"},
        start=StartCommand("exec srv", 49999),
    )
    write_manifest(templates_dir, manifest)
    assert read_manifest(templates_dir, "t2") == manifest
    ref = manifest.to_ref(templates_dir)
    assert (ref.start_command, ref.ready_port, dict(ref.env)) == ("exec srv", 49999, {"K": "V"})
    assert TemplateManifest(name="t3", layers=(LOWER,)).to_ref(templates_dir).start_command is None
