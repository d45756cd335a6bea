"""Which Debian mirror the host's apt uses, so debootstrap fetches from the same place.

Reads `/etc/apt/sources.list`, `/etc/apt/sources.list.d/*.list` (one-line format) and
`/etc/apt/sources.list.d/*.sources` (deb822), in apt's order, and picks the first enabled
`deb` source that lists the wanted suite exactly (so `bookworm-security` never matches
`bookworm`). Parsing is pure; `host_debian_mirror` is the only function that reads files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_MIRROR",
    "AptSource",
    "debian_mirror_for",
    "host_apt_sources",
    "host_debian_mirror",
    "parse_deb822_sources",
    "parse_one_line_sources",
]

DEFAULT_MIRROR = "http://deb.debian.org/debian"
_SCHEMES = ("http://", "https://", "file:/")


@dataclass(frozen=True)
class AptSource:
    """One `deb` (or `deb-src`) source: a URI and the suites/components it serves."""

    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...] = ()
    enabled: bool = True


def parse_one_line_sources(text: str) -> list[AptSource]:
    """Parse `sources.list` lines: `deb [opt=val ...] URI SUITE [COMPONENT...]`."""
    sources: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        rest = rest.strip()
        if rest.startswith("["):
            closing = rest.find("]")
            if closing < 0:
                continue
            rest = rest[closing + 1 :].strip()
        words = rest.split()
        if kind not in ("deb", "deb-src") or len(words) < 2:
            continue
        sources.append(
            AptSource(
                types=(kind,),
                uris=(words[0],),
                suites=(words[1],),
                components=tuple(words[2:]),
            )
        )
    return sources


def parse_deb822_sources(text: str) -> list[AptSource]:
    """Parse a deb822 `.sources` file (stanzas of `Field: value` separated by blank lines)."""
    sources: list[AptSource] = []
    for stanza in _deb822_stanzas(text):
        fields = {key.lower(): value for key, value in stanza.items()}
        if "types" not in fields or "uris" not in fields or "suites" not in fields:
            continue
        sources.append(
            AptSource(
                types=tuple(fields["types"].split()),
                uris=tuple(fields["uris"].split()),
                suites=tuple(fields["suites"].split()),
                components=tuple(fields.get("components", "").split()),
                enabled=fields.get("enabled", "yes").strip().lower() not in ("no", "false", "0"),
            )
        )
    return sources


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last_key: str | None = None
    for raw in [*text.splitlines(), ""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, last_key = {}, None
        elif raw[0] in " \t" and last_key is not None:
            current[last_key] += " " + raw.strip()
        elif ":" in raw:
            key, _, value = raw.partition(":")
            last_key = key.strip()
            current[last_key] = value.strip()
    return stanzas


def debian_mirror_for(suite: str, sources: list[AptSource]) -> str | None:
    """The first enabled binary source URI that serves `suite` exactly, without a trailing /."""
    for source in sources:
        if not source.enabled or "deb" not in source.types or suite not in source.suites:
            continue
        for uri in source.uris:
            if uri.startswith(_SCHEMES):
                return uri.rstrip("/")
    return None


def host_apt_sources(root: Path = Path("/")) -> list[AptSource]:
    """Every apt source configured under `root`/etc/apt, in the order apt reads them."""
    apt = root / "etc" / "apt"
    sources: list[AptSource] = []
    main_list = apt / "sources.list"
    if main_list.is_file():
        sources.extend(parse_one_line_sources(main_list.read_text(errors="replace")))
    parts = apt / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".list" and path.is_file():
                sources.extend(parse_one_line_sources(path.read_text(errors="replace")))
            elif path.suffix == ".sources" and path.is_file():
                sources.extend(parse_deb822_sources(path.read_text(errors="replace")))
    return sources


def host_debian_mirror(suite: str, root: Path = Path("/")) -> str:
    """The host's mirror for `suite`, else the first mirror of any Debian suite, else default.

    The fallback to another suite's mirror covers hosts of a different Debian release: the
    same archive serves every suite.
    """
    sources = host_apt_sources(root)
    found = debian_mirror_for(suite, sources)
    if found is not None:
        return found
    for source in sources:
        if not source.enabled or "deb" not in source.types:
            continue
        for uri in source.uris:
            if uri.startswith(_SCHEMES) and uri.rstrip("/").endswith("/debian"):
                return uri.rstrip("/")
    return DEFAULT_MIRROR
