"""Recipe parsing: directives, continuation lines, errors that name their line."""

from __future__ import annotations

import pytest

from corral.templates import (
    CopyStep,
    DebootstrapBase,
    RecipeError,
    RecipeNotFound,
    RunStep,
    StartCommand,
    TemplateBase,
    parse_recipe,
    shipped_recipe,
    shipped_recipe_names,
)

BASE_PACKAGES = {
    "bash",
    "coreutils",
    "python3",
    "curl",
    "ca-certificates",
    "ncurses-bin",
    "attr",
    "sudo",
    "procps",
    "git",
}


def test_shipped_base_recipe_has_what_the_sdk_expects() -> None:
    recipe = shipped_recipe("base")
    assert isinstance(recipe.base, DebootstrapBase)
    assert (recipe.base.suite, recipe.base.variant) == ("bookworm", "minbase")
    assert set(recipe.base.include) >= BASE_PACKAGES
    assert list(recipe.base.include) == sorted(set(recipe.base.include))
    assert recipe.user == "user"
    assert recipe.workdir == "/home/user"
    commands = "\n".join(step.command for step in recipe.steps)
    for needle in ("--uid 1000", "--gid 1000", "/etc/sudoers.d/user", "0440", "/etc/hosts"):
        assert needle in commands
    assert "base" in shipped_recipe_names()


def test_directives_continuations_and_comments() -> None:
    recipe = parse_recipe(
        "# leading comment\n"
        "\n"
        "FROM debootstrap bookworm minbase\n"
        "INCLUDE curl bash\n"
        "INCLUDE bash git\n"
        "ENV A=1\n"
        "RUN echo one \\\n"
        "  && echo two\n"
        "ENV B=x=y\n"
        "ENV A=2\n"
        "RUN true\n"
        "USER alice\n"
        "WORKDIR /srv\n"
    )
    assert recipe.base == DebootstrapBase("bookworm", "minbase", ("bash", "curl", "git"))
    assert recipe.steps == (
        RunStep(command="echo one \\\n  && echo two", env=(("A", "1"),), line=7),
        RunStep(command="true", env=(("B", "x=y"), ("A", "2")), line=11),
    )
    assert recipe.user == "alice"
    assert recipe.workdir == "/srv"
    assert dict(recipe.env) == {"A": "2", "B": "x=y"}


def test_from_template() -> None:
    recipe = parse_recipe("FROM base\nRUN apt-get update\n")
    assert recipe.base == TemplateBase("base")
    assert recipe.user is None and recipe.workdir is None
    assert [step.command for step in recipe.steps] == ["apt-get update"]


def test_summary_is_one_short_line() -> None:
    step = RunStep(command="a \\\n  " + "b" * 100)
    assert "\n" not in step.summary() and "\\" not in step.summary()
    assert len(step.summary()) < 60


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 0, "needs a FROM"),
        ("# only a comment\n", 0, "needs a FROM"),
        ("RUN true\n", 1, "first directive must be FROM"),
        ("FROM base\nFROM base\n", 2, "only one FROM"),
        ("FROM debootstrap bookworm\n", 1, "expected 'FROM debootstrap"),
        ("FROM debootstrap bookworm full\n", 1, "variant must be one of"),
        ("FROM debootstrap Bookworm minbase\n", 1, "invalid suite"),
        ("FROM ../etc\n", 1, "invalid template name"),
        ("FROM base\nINCLUDE curl\n", 2, "INCLUDE only follows"),
        ("FROM debootstrap bookworm minbase\nRUN x\nINCLUDE curl\n", 3, "before the first RUN"),
        ("FROM debootstrap bookworm minbase\nINCLUDE Curl;rm\n", 2, "invalid package name"),
        ("FROM debootstrap bookworm minbase\nINCLUDE\n", 2, "at least one package"),
        ("FROM base\n\nENV novalue\n", 3, "ENV KEY=VALUE"),
        ("FROM base\nENV 1A=b\n", 2, "ENV KEY=VALUE"),
        ("FROM base\nRUN\n", 2, "RUN needs a command"),
        ("FROM base\nUSER Root!\n", 2, "invalid user"),
        ("FROM base\nWORKDIR relative\n", 2, "absolute path"),
        ("FROM base\nADD a b\n", 2, "unknown directive"),
        ("FROM base\nCOPY a b\n", 2, "one of corral's packages"),
        ("FROM base\nCOPY corral.x\n", 2, "expected 'COPY corral.PACKAGE"),
        ("FROM base\nCOPY corral.x lib\n", 2, "absolute path"),
        ("FROM base\nCOPY corral.x /a/../b\n", 2, "absolute path"),
        ("FROM base\nSTART\n", 2, "START needs a shell command"),
        ("FROM base\nSTART a\nSTART b\n", 3, "only one START"),
        ("FROM base\nSTART a\nREADY http\n", 3, "READY needs a TCP port"),
        ("FROM base\nSTART a\nREADY 65536\n", 3, "READY needs a TCP port"),
        ("FROM base\nREADY 8080\n", 0, "READY needs a START"),
    ],
)
def test_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(RecipeError) as info:
        parse_recipe(text, source="test.recipe")
    assert info.value.line == line
    assert message in str(info.value)
    assert str(info.value).startswith("test.recipe")


@pytest.mark.parametrize("name", ["no-such-recipe", "../base", "Base", ""])
def test_unknown_shipped_recipe(name: str) -> None:
    with pytest.raises(RecipeNotFound):
        shipped_recipe(name)


def test_copy_start_and_ready() -> None:
    recipe = parse_recipe(
        "FROM base\nRUN true\nCOPY corral.interpreter /opt/lib\n"
        "START exec server --port 49999\nREADY 49999\n"
    )
    assert recipe.steps[1] == CopyStep("corral.interpreter", "/opt/lib", line=3)
    assert recipe.start == StartCommand("exec server --port 49999", 49999)
    assert parse_recipe("FROM base\nSTART sleep 9\n").start == StartCommand("sleep 9", 0)
    assert parse_recipe("FROM base\n").start is None


def test_shipped_code_interpreter_recipe_serves_port_49999() -> None:
    recipe = shipped_recipe("code-interpreter-v1")
    assert recipe.base == TemplateBase("base")
    assert recipe.start is not None and recipe.start.ready_port == 49999
    assert "corral.interpreter" in recipe.start.command
    assert CopyStep("corral.interpreter", "/opt/corral/lib", line=0).package in {
        step.package for step in recipe.steps if isinstance(step, CopyStep)
    }
