"""`language` normalisation of /execute and /contexts (protocol §8.1)."""

from __future__ import annotations

import pytest

from corral.interpreter.languages import (
    UnsupportedLanguageError,
    language_named,
    normalize_language,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "python"),
        ("", "python"),
        ("  ", "python"),
        ("Python", "python"),
        (" JS ", "javascript"),
        ("ts", "typescript"),
        ("TypeScript", "typescript"),
        ("javascript", "javascript"),
        ("R", "r"),
        ("bash", "bash"),
    ],
)
def test_normalisation(value: str | None, expected: str) -> None:
    assert normalize_language(value) == expected


def test_unsupported_language_names_the_available_ones() -> None:
    with pytest.raises(UnsupportedLanguageError) as caught:
        normalize_language(" Java ")
    message = str(caught.value)
    assert "'java'" in message
    for name in ("python", "javascript", "typescript", "bash", "r"):
        assert name in message


def test_typescript_shares_the_default_javascript_context_and_deno() -> None:
    typescript = language_named("ts")
    assert typescript.name == "typescript"
    assert typescript.default_context == "javascript"
    assert typescript.kernel == language_named("js").kernel == "deno"
