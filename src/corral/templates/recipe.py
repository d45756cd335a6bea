"""Recipes: the small Dockerfile-like text a template is built from.

A recipe is a sequence of directives, one per logical line (a line ending in ``\\``
continues on the next; ``#`` starts a comment line)::

    FROM debootstrap bookworm minbase   # first layer: a fresh Debian rootfs
    INCLUDE bash python3 curl           # extra packages for debootstrap (repeatable)
    FROM base                           # ...or: start from the layers of a built template
    ENV KEY=VALUE                       # env of later RUN steps and of the template
    RUN shell command                   # one new layer: /bin/sh -c in a chroot, as root
    COPY corral.interpreter /opt/lib    # one new layer: a package of corral's own source,
                                        # importable with PYTHONPATH=/opt/lib
    USER user                           # the template's default user (metadata only)
    WORKDIR /home/user                  # the template's default workdir (metadata only)
    LIMITS cpu=1 memory=512 disk=2048   # default resource limits of its sandboxes (any of
                                        # cpu, memory MiB, disk MiB, pids, nofile; metadata)
    START shell command                 # run by each sandbox's agent at boot, as USER in
                                        # WORKDIR with the sandbox's env (metadata)
    READY 49999                         # create returns once this port accepts (metadata)

Unlike a Dockerfile, USER, WORKDIR, LIMITS, START and READY only set the sandbox defaults (a
later LIMITS line overrides the keys it names; a template `FROM` another inherits its limits
and start command): RUN always runs as root in `/`. Parsing is pure; nothing here touches
the disk except `shipped_recipe`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from corral.model import LimitOverrides, parse_limit_overrides
from corral.templates.errors import RecipeError, RecipeNotFound

__all__ = [
    "CopyStep",
    "DebootstrapBase",
    "Recipe",
    "StartCommand",
    "RunStep",
    "TemplateBase",
    "parse_recipe",
    "shipped_recipe",
    "shipped_recipe_names",
    "valid_template_name",
]

_TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_SUITE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]{0,99}$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_VARIANTS = frozenset({"minbase", "buildd"})
_RECIPE_SUFFIX = ".recipe"
_CORRAL_PACKAGE = re.compile(r"^corral(\.[a-z_][a-z0-9_]*)+$")


def valid_template_name(name: str) -> bool:
    """Whether `name` can name a template (safe as a file name and an E2B template id)."""
    return bool(_TEMPLATE_NAME.match(name))


@dataclass(frozen=True)
class DebootstrapBase:
    """`FROM debootstrap SUITE VARIANT` plus its INCLUDE list (sorted, unique)."""

    suite: str
    variant: str
    include: tuple[str, ...] = ()

    def summary(self) -> str:
        return f"FROM debootstrap {self.suite} {self.variant} (+{len(self.include)} packages)"

    def canonical(self) -> str:
        """The text a layer id is derived from: everything that shapes the layer."""
        return f"FROM debootstrap {self.suite} {self.variant}\nINCLUDE {' '.join(self.include)}"


@dataclass(frozen=True)
class TemplateBase:
    """`FROM NAME`: start from the layers (and defaults) of an already built template."""

    name: str


@dataclass(frozen=True)
class RunStep:
    """`RUN command`, with the ENV pairs in force at that point (declaration order)."""

    command: str
    env: tuple[tuple[str, str], ...] = ()
    line: int = 0

    def summary(self) -> str:
        flat = " ".join(self.command.replace("\\\n", " ").split())
        return f"RUN {flat[:48]}…" if len(flat) > 48 else f"RUN {flat}"

    def canonical(self) -> str:
        """The text a layer id is derived from (the line number is not part of it)."""
        env = "".join(f"ENV {key}={value}\n" for key, value in self.env)
        return f"{env}RUN {self.command}"


@dataclass(frozen=True)
class CopyStep:
    """`COPY PACKAGE DIR`: one of corral's own packages (with its parents' `__init__.py`)
    copied under DIR, so that `PYTHONPATH=DIR` imports it. The layer id covers the files'
    content (the builder reads them); the recipe only names them."""

    package: str
    destination: str
    line: int = 0

    def summary(self) -> str:
        return f"COPY {self.package} {self.destination}"

    def canonical(self) -> str:
        """The directive; the builder adds the digest of the package's files."""
        return f"COPY {self.package} {self.destination}"


@dataclass(frozen=True)
class StartCommand:
    """`START` and `READY`: what each sandbox's agent runs at boot, and the TCP port that
    must accept connections (on the sandbox's loopback) before create returns (0: none)."""

    command: str
    ready_port: int = 0


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe. `user`/`workdir` are None when the recipe leaves them unset."""

    base: DebootstrapBase | TemplateBase
    steps: tuple[RunStep | CopyStep, ...]
    user: str | None = None
    workdir: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    limits: LimitOverrides = LimitOverrides()
    start: StartCommand | None = None


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join continuation lines; drop blank and comment lines. Returns (first line no, text)."""
    result: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not pending:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = number
        if line.endswith("\\"):
            pending.append(line)
            continue
        pending.append(line)
        result.append((start, "\n".join(pending).strip()))
        pending = []
    if pending:
        result.append((start, "\n".join(pending).strip().rstrip("\\").rstrip()))
    return result


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.base: DebootstrapBase | TemplateBase | None = None
        self.include: list[str] = []
        self.steps: list[RunStep | CopyStep] = []
        self.env: dict[str, str] = {}
        self.user: str | None = None
        self.workdir: str | None = None
        self.limits = LimitOverrides()
        self.start_command: str | None = None
        self.ready_port = 0

    def error(self, message: str, line: int) -> RecipeError:
        return RecipeError(message, line=line, source=self.source)

    def directive(self, number: int, text: str) -> None:
        match = re.match(r"(\S+)\s*(.*)", text, re.DOTALL)
        assert match is not None  # logical lines are never blank
        keyword, rest = match.group(1), match.group(2).strip()
        handler = {
            "FROM": self.from_,
            "INCLUDE": self.include_,
            "ENV": self.env_,
            "RUN": self.run,
            "USER": self.user_,
            "WORKDIR": self.workdir_,
            "LIMITS": self.limits_,
            "COPY": self.copy,
            "START": self.start,
            "READY": self.ready,
        }.get(keyword.upper())
        if handler is None:
            raise self.error(f"unknown directive {keyword!r}", number)
        if self.base is None and keyword.upper() != "FROM":
            raise self.error("the first directive must be FROM", number)
        handler(number, rest)

    def from_(self, number: int, rest: str) -> None:
        if self.base is not None:
            raise self.error("only one FROM is allowed", number)
        words = rest.split()
        if len(words) == 3 and words[0] == "debootstrap":
            suite, variant = words[1], words[2]
            if not _SUITE.match(suite):
                raise self.error(f"invalid suite {suite!r}", number)
            if variant not in _VARIANTS:
                raise self.error(
                    f"variant must be one of {', '.join(sorted(_VARIANTS))}, not {variant!r}",
                    number,
                )
            self.base = DebootstrapBase(suite=suite, variant=variant)
        elif len(words) == 1 and words[0] != "debootstrap":
            if not valid_template_name(words[0]):
                raise self.error(f"invalid template name {words[0]!r}", number)
            self.base = TemplateBase(name=words[0])
        else:
            raise self.error("expected 'FROM debootstrap SUITE VARIANT' or 'FROM TEMPLATE'", number)

    def include_(self, number: int, rest: str) -> None:
        if not isinstance(self.base, DebootstrapBase):
            raise self.error("INCLUDE only follows 'FROM debootstrap'", number)
        if self.steps:
            raise self.error("INCLUDE must come before the first RUN", number)
        packages = rest.replace("\\", " ").split()
        if not packages:
            raise self.error("INCLUDE needs at least one package", number)
        for package in packages:
            if not _PACKAGE.match(package):
                raise self.error(f"invalid package name {package!r}", number)
        self.include.extend(packages)

    def env_(self, number: int, rest: str) -> None:
        key, sep, value = rest.partition("=")
        if not sep or not _ENV_KEY.match(key):
            raise self.error("expected 'ENV KEY=VALUE'", number)
        if "\n" in value or "\0" in value:
            raise self.error("ENV values are one line", number)
        self.env.pop(key, None)
        self.env[key] = value

    def run(self, number: int, rest: str) -> None:
        if not rest:
            raise self.error("RUN needs a command", number)
        if "\0" in rest:
            raise self.error("RUN command contains a NUL byte", number)
        self.steps.append(RunStep(command=rest, env=tuple(self.env.items()), line=number))

    def copy(self, number: int, rest: str) -> None:
        words = rest.split()
        if len(words) != 2:
            raise self.error("expected 'COPY corral.PACKAGE /ABSOLUTE/DIR'", number)
        package, destination = words
        if not _CORRAL_PACKAGE.match(package):
            raise self.error(f"COPY copies one of corral's packages, not {package!r}", number)
        if not destination.startswith("/") or ".." in destination.split("/"):
            raise self.error("the COPY destination must be an absolute path without '..'", number)
        self.steps.append(CopyStep(package=package, destination=destination, line=number))

    def start(self, number: int, rest: str) -> None:
        if not rest or "\0" in rest:
            raise self.error("START needs a shell command", number)
        if self.start_command is not None:
            raise self.error("only one START is allowed", number)
        self.start_command = rest

    def ready(self, number: int, rest: str) -> None:
        if not rest.isdigit() or not 0 < int(rest) < 65536:
            raise self.error(f"READY needs a TCP port (1-65535), not {rest!r}", number)
        self.ready_port = int(rest)

    def user_(self, number: int, rest: str) -> None:
        if not _USER.match(rest):
            raise self.error(f"invalid user name {rest!r}", number)
        self.user = rest

    def workdir_(self, number: int, rest: str) -> None:
        if not rest.startswith("/") or "\n" in rest or "\0" in rest:
            raise self.error("WORKDIR must be an absolute path", number)
        self.workdir = rest

    def limits_(self, number: int, rest: str) -> None:
        try:
            limits = parse_limit_overrides(rest)
        except ValueError as exc:
            raise self.error(f"LIMITS: {exc}", number) from exc
        if not any(True for _ in limits.items()):
            raise self.error("LIMITS needs at least one key=value", number)
        self.limits = limits.over(self.limits)

    def finish(self) -> Recipe:
        if self.base is None:
            raise RecipeError("a recipe needs a FROM line", source=self.source)
        base = self.base
        if self.ready_port and self.start_command is None:
            raise RecipeError("READY needs a START command", source=self.source)
        if isinstance(base, DebootstrapBase):
            base = DebootstrapBase(
                suite=base.suite, variant=base.variant, include=tuple(sorted(set(self.include)))
            )
        return Recipe(
            base=base,
            steps=tuple(self.steps),
            user=self.user,
            workdir=self.workdir,
            env=tuple(self.env.items()),
            limits=self.limits,
            start=(
                None
                if self.start_command is None
                else StartCommand(self.start_command, self.ready_port)
            ),
        )


def parse_recipe(text: str, *, source: str = "<recipe>") -> Recipe:
    """Parse recipe text; raise `RecipeError` naming the first faulty line."""
    parser = _Parser(source)
    for number, line in _logical_lines(text):
        parser.directive(number, line)
    return parser.finish()


def shipped_recipe_names() -> list[str]:
    """Names of the recipes that ship with corral (`corral/templates/recipes/*.recipe`)."""
    folder = resources.files("corral.templates") / "recipes"
    return sorted(
        entry.name[: -len(_RECIPE_SUFFIX)]
        for entry in folder.iterdir()
        if entry.name.endswith(_RECIPE_SUFFIX)
    )


def shipped_recipe(name: str) -> Recipe:
    """The parsed recipe `name` shipped with corral; `RecipeNotFound` if there is none."""
    if not valid_template_name(name):
        raise RecipeNotFound(name)
    entry = resources.files("corral.templates") / "recipes" / f"{name}{_RECIPE_SUFFIX}"
    try:
        text = entry.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RecipeNotFound(name) from exc
    return parse_recipe(text, source=f"{name}{_RECIPE_SUFFIX}")
