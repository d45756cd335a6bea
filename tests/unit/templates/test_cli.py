"""`corral template ...` through click's test runner (no real builds)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

import corral.templates
from corral.cli import main

LAYER = "cccccccccccccccccccccccc"


def test_list_shows_templates_with_sizes(tmp_path: Path) -> None:
    (tmp_path / "layers" / LAYER).mkdir(parents=True)
    (tmp_path / "layers" / f"{LAYER}.json").write_text(
        json.dumps({"id": LAYER, "parent": None, "step": "x", "created_at": 0,
                    "size_bytes": 3 * 1024 * 1024})
    )  # fmt: skip
    (tmp_path / "base.json").write_text(
        json.dumps({"name": "base", "layers": [LAYER], "created_at": "2025-01-01T00:00:00Z"})
    )
    result = CliRunner().invoke(main, ["template", "list", "--templates-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "base" in result.output and "3.0 MiB" in result.output
    assert "2025-01-01T00:00:00Z" in result.output


def test_templates_dir_from_environment(tmp_path: Path) -> None:
    (tmp_path / "layers" / LAYER).mkdir(parents=True)
    (tmp_path / "envtpl.json").write_text(json.dumps({"name": "envtpl", "layers": [LAYER]}))
    result = CliRunner().invoke(
        main, ["template", "list"], env={"CORRAL_TEMPLATES_DIR": str(tmp_path)}
    )
    assert result.exit_code == 0 and "envtpl" in result.output


def test_build_unknown_recipe_fails_clearly(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["template", "build", "no-such", "--templates-dir", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "no recipe named 'no-such'" in result.output
    assert not (tmp_path / "no-such.json").exists()


def test_build_malformed_recipe_names_the_line(tmp_path: Path) -> None:
    recipe = tmp_path / "bad.recipe"
    recipe.write_text("FROM base\nRUN true\nADD a b\n")
    result = CliRunner().invoke(
        main,
        ["template", "build", "bad", "--recipe", str(recipe), "--templates-dir", str(tmp_path)],
    )
    assert result.exit_code == 1
    assert "bad.recipe:3: unknown directive 'ADD'" in result.output


def test_exported_names() -> None:
    exported = corral.templates.__all__
    assert len(set(exported)) == len(exported)
    for name in exported:
        assert hasattr(corral.templates, name), name
