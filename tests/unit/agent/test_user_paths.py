"""`make_directories`: the mkdir -p that `/files` uploads and the MakeDir/Move RPCs share.

(`resolve_user_path` is tested through both of its edges: `test_files_rules.py` and
`test_filesystem_helpers.py`.)
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.agent.user_paths import make_directories
from corral.agent.users import User

ME = User(
    name="me", uid=os.getuid(), gid=os.getgid(), home="/", shell="/bin/sh", groups=(os.getgid(),)
)


@pytest.fixture
def strict_umask() -> Iterator[None]:
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("strict_umask")
def test_missing_parents_are_0755_whatever_the_umask(tmp_path: Path) -> None:
    make_directories(str(tmp_path / "a/b/c"), ME)
    for path in (tmp_path / "a", tmp_path / "a/b", tmp_path / "a/b/c"):
        info = path.lstat()
        assert stat.S_ISDIR(info.st_mode)
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (
            0o755,
            ME.uid,
            ME.gid,
        )


def test_existing_directories_are_left_as_they_are(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir(mode=0o700)
    make_directories(str(tmp_path / "a"), ME)
    make_directories(str(tmp_path / "a/b"), ME)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert (tmp_path / "a/b").is_dir()


@pytest.mark.parametrize("wanted", ["file", "file/sub/deeper"])
def test_a_file_in_the_way_is_not_a_directory(tmp_path: Path, wanted: str) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError) as raised:
        make_directories(str(tmp_path / wanted), ME)
    assert str(raised.value.filename).startswith(str(tmp_path / "file"))
    assert (tmp_path / "file").read_text() == "x"
