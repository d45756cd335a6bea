"""`UserDatabase`: hand-parsed passwd/group, supplementary groups, owner names, changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corral.agent.errors import UnknownUser
from corral.agent.users import User, UserDatabase


def _etc(tmp_path: Path, passwd: str, group: str = "") -> Path:
    (tmp_path / "passwd").write_text(passwd)
    (tmp_path / "group").write_text(group)
    return tmp_path


def test_lookup_with_supplementary_groups(tmp_path: Path) -> None:
    etc = _etc(
        tmp_path,
        "# comment\nroot:x:0:0:root:/root:/bin/bash\n\n"
        "user:x:1000:1000:User,,,:/home/user:/bin/sh\n"
        "broken-line\nbad:x:notanumber:1:::\n+nis\n",
        "root:x:0:\nuser:x:1000:\nsudo:x:27:user\ndocker:x:999:other, user\nuser2:x:5:\n",
    )
    users = UserDatabase(str(etc))
    assert users.lookup("user") == User(
        "user", 1000, 1000, "/home/user", "/bin/sh", (1000, 27, 999)
    )
    assert users.lookup("root").groups == (0,)
    for missing in ("bad", "broken-line", "+nis", "nobody-here", ""):
        with pytest.raises(UnknownUser):
            users.lookup(missing)


def test_unknown_user_message(tmp_path: Path) -> None:
    users = UserDatabase(str(_etc(tmp_path, "root:x:0:0::/root:/bin/sh\n")))
    with pytest.raises(UnknownUser, match=r"^invalid username: 'ghost'$"):
        users.lookup("ghost")


def test_first_entry_wins(tmp_path: Path) -> None:
    users = UserDatabase(str(_etc(tmp_path, "a:x:1:1::/one:/bin/sh\na:x:2:2::/two:/bin/sh\n")))
    assert users.lookup("a").uid == 1


def test_changes_are_seen(tmp_path: Path) -> None:
    etc = _etc(tmp_path, "root:x:0:0::/root:/bin/sh\n")
    users = UserDatabase(str(etc))
    with pytest.raises(UnknownUser):
        users.lookup("late")
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/sh\nlate:x:7:7::/late:/bin/sh\n")
    assert users.lookup("late").home == "/late"


def test_root_exists_even_without_passwd(tmp_path: Path) -> None:
    users = UserDatabase(str(tmp_path / "missing"))
    assert users.lookup("root") == User("root", 0, 0, "/root", "/bin/sh", (0,))
    with pytest.raises(UnknownUser):
        users.lookup("user")


def test_owner_names_fall_back_to_numbers_and_see_changes(tmp_path: Path) -> None:
    (tmp_path / "passwd").write_text(
        "root:x:0:0::/root:/bin/sh\n#c:x:5:5\nuser:x:1000:1000::/h:/s\n"
    )
    (tmp_path / "group").write_text("root:x:0:\nstaff:x:50:user\n")
    users = UserDatabase(str(tmp_path))
    users.refresh()
    assert [users.user_name(0), users.user_name(1000), users.user_name(5)] == ["root", "user", "5"]
    assert [users.group_name(50), users.group_name(1000)] == ["staff", "1000"]
    with open(tmp_path / "passwd", "a") as handle:
        handle.write("other:x:5:5::/o:/s\n")
    users.refresh()
    assert users.user_name(5) == "other"


def test_host_database_matches_pwd_module() -> None:
    import grp
    import pwd

    users = UserDatabase()
    for name in ("root", "nobody"):
        entry = pwd.getpwnam(name)
        user = users.lookup(name)
        assert (user.uid, user.gid, user.home, user.shell) == (
            entry.pw_uid,
            entry.pw_gid,
            entry.pw_dir,
            entry.pw_shell,
        )
        assert set(user.groups) == set(os.getgrouplist(name, entry.pw_gid))
        assert all(isinstance(grp.getgrgid(g).gr_name, str) for g in user.groups)
