"""Fixtures shared by the security suites."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def host_canary() -> Iterator[Path]:
    """A host directory that no sandbox may see (see `test_isolation.assert_isolated`)."""
    path = Path(tempfile.mkdtemp(prefix="corral-canary-"))
    yield path
    path.rmdir()
