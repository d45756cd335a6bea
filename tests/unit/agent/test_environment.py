"""Environment composition and working-directory resolution (protocol doc §5.3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.agent.environment import DEFAULT_PATH, compose_environment, resolve_workdir
from corral.agent.errors import InvalidWorkdir
from corral.agent.users import User


def _user(home: Path) -> User:
    return User("u", 1000, 1000, str(home), "/bin/sh", (1000,))


def test_compose_order(tmp_path: Path) -> None:
    env = compose_environment(
        _user(tmp_path), {"A": "sandbox", "B": "sandbox", "PATH": "/s"}, {"B": "request"}
    )
    assert env == {
        "PATH": "/s",
        "HOME": str(tmp_path),
        "USER": "u",
        "LOGNAME": "u",
        "A": "sandbox",
        "B": "request",
    }
    assert compose_environment(_user(tmp_path), {}, {})["PATH"] == DEFAULT_PATH


def test_resolve_requested(tmp_path: Path) -> None:
    (tmp_path / "sub" / "dir").mkdir(parents=True)
    user = _user(tmp_path)
    assert resolve_workdir("~", user, "/") == str(tmp_path)
    assert resolve_workdir("~/sub", user, "/") == str(tmp_path / "sub")
    assert resolve_workdir("sub/dir", user, "/") == str(tmp_path / "sub" / "dir")
    assert resolve_workdir("sub/../sub/./dir/", user, "/") == str(tmp_path / "sub" / "dir")
    assert resolve_workdir(str(tmp_path / "sub"), user, "/") == str(tmp_path / "sub")


def test_missing_requested(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    user = _user(tmp_path)
    with pytest.raises(InvalidWorkdir, match=r"^cwd '/no/such' does not exist$"):
        resolve_workdir("/no/such", user, "/")
    with pytest.raises(InvalidWorkdir) as info:
        resolve_workdir("missing", user, "/")
    assert info.value.path == str(tmp_path / "missing")
    with pytest.raises(InvalidWorkdir):
        resolve_workdir("file", user, "/")  # not a directory


def test_defaults(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    user = _user(tmp_path)
    assert resolve_workdir(None, user, str(workdir)) == str(workdir)
    assert resolve_workdir("", user, str(workdir)) == str(workdir)
    assert resolve_workdir(None, user, str(tmp_path / "gone")) == str(tmp_path)
    assert resolve_workdir(None, _user(tmp_path / "nohome"), "/nowhere") == "/"
