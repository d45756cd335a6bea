"""Finding the Debian mirror of the host's apt configuration (both source formats)."""

from __future__ import annotations

from pathlib import Path

from corral.templates.mirror import (
    DEFAULT_MIRROR,
    debian_mirror_for,
    host_debian_mirror,
    parse_deb822_sources,
    parse_one_line_sources,
)

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
"""


def test_deb822() -> None:
    sources = parse_deb822_sources(DEB822)
    assert len(sources) == 2
    assert sources[0].suites == ("bookworm", "bookworm-updates")
    assert debian_mirror_for("bookworm", sources) == "http://deb.debian.org/debian"
    assert debian_mirror_for("trixie", sources) is None


def test_deb822_disabled_and_source_only_stanzas_are_skipped() -> None:
    text = (
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\n"
        "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n"
        "Types: deb deb-src\nURIs:\n http://on.example/debian/\nSuites: bookworm\n"
    )
    assert debian_mirror_for("bookworm", parse_deb822_sources(text)) == "http://on.example/debian"


def test_one_line_format_with_options_and_comments() -> None:
    text = (
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main contrib\n"
        "deb http://security.example/debian-security bookworm-security main\n"
    )
    sources = parse_one_line_sources(text)
    assert [s.types for s in sources] == [("deb-src",), ("deb",), ("deb",)]
    assert sources[1].components == ("main", "contrib")
    assert debian_mirror_for("bookworm", sources) == "http://mirror.example/debian"


def test_suite_match_is_exact() -> None:
    sources = parse_one_line_sources("deb http://security.example/debian bookworm-security main\n")
    assert debian_mirror_for("bookworm", sources) is None


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_host_files_in_apt_order(tmp_path: Path) -> None:
    _write(tmp_path, "etc/apt/sources.list.d/b.sources", DEB822)
    _write(
        tmp_path, "etc/apt/sources.list.d/a.list", "deb http://first.example/debian bookworm main\n"
    )
    _write(
        tmp_path,
        "etc/apt/sources.list.d/c.list.disabled",
        "deb http://no.example/debian bookworm main\n",
    )
    assert host_debian_mirror("bookworm", tmp_path) == "http://first.example/debian"
    _write(tmp_path, "etc/apt/sources.list", "deb http://main.example/debian bookworm main\n")
    assert host_debian_mirror("bookworm", tmp_path) == "http://main.example/debian"


def test_host_of_another_release_falls_back_to_its_debian_archive(tmp_path: Path) -> None:
    _write(tmp_path, "etc/apt/sources.list", "deb http://m.example/debian trixie main\n")
    assert host_debian_mirror("bookworm", tmp_path) == "http://m.example/debian"


def test_no_configuration_gives_the_default(tmp_path: Path) -> None:
    assert host_debian_mirror("bookworm", tmp_path) == DEFAULT_MIRROR
