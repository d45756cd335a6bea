"""Code that sets a request's `env_vars` in a kernel and restores them afterwards, per language.

`env_vars` of one `/execute` apply to that execution only (§8). The server runs `set_code`
as a silent execution just before the user's code and `restore_code` just after it (also
after an interrupt), in the same kernel; both produce no output. The set step saves the
previous values inside the kernel, the restore step puts them back or removes variables
that did not exist. Names and values were checked by `check_env_vars` first.

* ipython: `os.environ`, previous values kept in `corral.interpreter.python_kernel.env`;
* deno: `Deno.env.set/delete`, kept in `globalThis[Symbol.for("corral.savedEnv")]`;
* bash: `export`/`unset`, kept as an `unset` + `declare -p` script in `$__corral_env_restore`;
* ir (IRkernel): `Sys.setenv`/`Sys.unsetenv`, kept in `.corral_saved_env` (global env).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

__all__ = ["InvalidEnvVarsError", "check_env_vars", "restore_code", "set_code"]

_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PYTHON_ENV_MODULE = "corral.interpreter.python_kernel.env"
_DENO_SAVED = 'Symbol.for("corral.savedEnv")'


class InvalidEnvVarsError(ValueError):
    """`env_vars` that cannot be set (the message says which entry and why)."""


def check_env_vars(env_vars: object, kernel: str) -> dict[str, str]:
    """`env_vars` of a request as a dict, or `InvalidEnvVarsError` saying what is wrong."""
    if env_vars is None:
        return {}
    if not isinstance(env_vars, dict):
        raise InvalidEnvVarsError("env_vars must be an object mapping names to string values")
    checked: dict[str, str] = {}
    for name, value in env_vars.items():
        if not isinstance(value, str):
            raise InvalidEnvVarsError(f"env_vars[{name!r}] must be a string")
        if not name or "=" in name or "\0" in name:
            raise InvalidEnvVarsError(f"env var name {name!r} is empty or contains '=' or NUL")
        if "\0" in value:
            raise InvalidEnvVarsError(f"env_vars[{name!r}] contains a NUL character")
        if kernel == "bash" and not _SHELL_NAME.match(name):
            raise InvalidEnvVarsError(f"env var name {name!r} is not a valid shell variable name")
        checked[name] = value
    return checked


def set_code(kernel: str, env_vars: Mapping[str, str]) -> str:
    """Code that saves the current values of `env_vars`' names and sets the new ones."""
    if kernel == "ipython":
        return f"__import__({_PYTHON_ENV_MODULE!r}, fromlist=['apply']).apply({dict(env_vars)!r})"
    if kernel == "deno":
        return (
            "void (() => { const saved = {}; "
            f"for (const [name, value] of Object.entries({json.dumps(dict(env_vars))})) "
            "{ saved[name] = Deno.env.get(name) ?? null; Deno.env.set(name, value); } "
            f"globalThis[{_DENO_SAVED}] = saved; }})();"
        )
    if kernel == "bash":
        names = " ".join(env_vars)
        exports = " ".join(f"{name}={_bash_quote(value)}" for name, value in env_vars.items())
        return (
            f'__corral_env_restore="unset {names}; $(declare -p {names} 2>/dev/null)"; '
            f"export {exports}"
        )
    if kernel == "ir":
        names = ", ".join(_r_string(name) for name in env_vars)
        values = ", ".join(f"{_r_string(n)} = {_r_string(v)}" for n, v in env_vars.items())
        return (
            f".corral_saved_env <- Sys.getenv(c({names}), unset = NA, names = TRUE); "
            f"invisible(Sys.setenv({values}))"
        )
    raise ValueError(f"no env_vars support for kernel {kernel!r}")


def restore_code(kernel: str) -> str:
    """Code that undoes the last `set_code` of that kernel."""
    if kernel == "ipython":
        return f"__import__({_PYTHON_ENV_MODULE!r}, fromlist=['restore']).restore()"
    if kernel == "deno":
        return (
            "void (() => { "
            f"const saved = globalThis[{_DENO_SAVED}] ?? {{}}; "
            "for (const [name, value] of Object.entries(saved)) "
            "{ if (value === null) Deno.env.delete(name); else Deno.env.set(name, value); } "
            f"delete globalThis[{_DENO_SAVED}]; }})();"
        )
    if kernel == "bash":
        return 'eval "$__corral_env_restore"; unset __corral_env_restore'
    if kernel == "ir":
        return (
            "local({ saved <- .corral_saved_env; kept <- saved[!is.na(saved)]; "
            "if (length(kept)) do.call(Sys.setenv, as.list(kept)); "
            "if (any(is.na(saved))) Sys.unsetenv(names(saved)[is.na(saved)]) }); "
            "rm(.corral_saved_env)"
        )
    raise ValueError(f"no env_vars support for kernel {kernel!r}")


def _bash_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _r_string(value: str) -> str:
    escaped = []
    for char in value:
        if char in ('"', "\\"):
            escaped.append("\\" + char)
        elif char == "\n":
            escaped.append("\\n")
        elif char == "\t":
            escaped.append("\\t")
        elif char == "\r":
            escaped.append("\\r")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\x{ord(char):02x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'
