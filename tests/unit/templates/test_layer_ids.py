"""Layer ids: derived from the step text and the parent id only, so rebuilds hit the cache."""

from __future__ import annotations

from corral.templates import layer_id, parse_recipe, plan_steps
from corral.templates.layers import valid_layer_id

RECIPE = """\
FROM debootstrap bookworm minbase
INCLUDE curl
RUN echo one
RUN echo two
"""


def test_layer_id_is_pinned() -> None:
    # A change of the id scheme invalidates every cached layer everywhere: make it deliberate.
    assert layer_id(None, "RUN true") == "f9c08ffa76f8bc02d1ceeaf2"
    assert layer_id("f9c08ffa76f8bc02d1ceeaf2", "RUN true") != layer_id(None, "RUN true")
    assert valid_layer_id(layer_id(None, "x"))


def test_same_recipe_same_ids() -> None:
    first = [step.layer_id for step in plan_steps(parse_recipe(RECIPE))]
    again = [step.layer_id for step in plan_steps(parse_recipe(RECIPE))]
    assert first == again
    assert len(set(first)) == 3


def test_comments_blank_lines_and_include_order_do_not_matter() -> None:
    reordered = (
        "# a comment\n\nFROM debootstrap bookworm minbase\nINCLUDE curl curl\n\n"
        "RUN echo one\n# between\nRUN echo two\n"
    )
    assert [s.layer_id for s in plan_steps(parse_recipe(reordered))] == [
        s.layer_id for s in plan_steps(parse_recipe(RECIPE))
    ]


def test_a_changed_step_changes_itself_and_everything_above() -> None:
    original = plan_steps(parse_recipe(RECIPE))
    changed = plan_steps(parse_recipe(RECIPE.replace("echo one", "echo ONE")))
    assert changed[0].layer_id == original[0].layer_id
    assert changed[1].layer_id != original[1].layer_id
    assert changed[2].layer_id != original[2].layer_id


def test_env_is_part_of_later_steps() -> None:
    with_env = plan_steps(parse_recipe(RECIPE.replace("RUN echo two", "ENV X=1\nRUN echo two")))
    original = plan_steps(parse_recipe(RECIPE))
    assert with_env[1].layer_id == original[1].layer_id
    assert with_env[2].layer_id != original[2].layer_id


def test_include_list_changes_the_bottom_layer() -> None:
    original = plan_steps(parse_recipe(RECIPE))
    more = plan_steps(parse_recipe(RECIPE.replace("INCLUDE curl", "INCLUDE curl git")))
    assert more[0].layer_id != original[0].layer_id


def test_steps_chain_on_the_parent_template() -> None:
    recipe = parse_recipe("FROM base\nRUN echo one\n")
    on_a = plan_steps(recipe, ("aaaaaaaaaaaaaaaaaaaaaaaa",))
    on_b = plan_steps(recipe, ("bbbbbbbbbbbbbbbbbbbbbbbb",))
    assert on_a[0].parent_id == "aaaaaaaaaaaaaaaaaaaaaaaa"
    assert on_a[0].layer_id != on_b[0].layer_id
    assert (on_a[0].index, on_a[0].total) == (1, 1)
