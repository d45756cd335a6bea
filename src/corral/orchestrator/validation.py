"""Bounds checks of client-supplied values; each failure names the offending field."""

from __future__ import annotations

from collections.abc import Mapping

from corral.orchestrator.errors import InvalidArgument
from corral.orchestrator.settings import OrchestratorSettings

__all__ = ["check_env_vars", "check_metadata", "check_timeout"]


def check_timeout(field_name: str, seconds: float, settings: OrchestratorSettings) -> float:
    """`seconds` if it lies in [min_timeout, max_timeout]; otherwise `InvalidArgument`."""
    if not settings.min_timeout <= seconds <= settings.max_timeout:
        raise InvalidArgument(
            f"'{field_name}' must be between {settings.min_timeout:g} and "
            f"{settings.max_timeout} seconds, got {seconds:g}"
        )
    return seconds


def check_metadata(values: Mapping[str, str], settings: OrchestratorSettings) -> None:
    _check_map("metadata", values, settings)


def check_env_vars(values: Mapping[str, str], settings: OrchestratorSettings) -> None:
    _check_map("envVars", values, settings)
    for key, value in values.items():
        if not key or "=" in key or "\0" in key:
            raise InvalidArgument(f"'envVars' key {key!r} is not a valid variable name")
        if "\0" in value:
            raise InvalidArgument(f"'envVars' value of {key!r} contains a NUL byte")


def _check_map(field_name: str, values: Mapping[str, str], settings: OrchestratorSettings) -> None:
    if len(values) > settings.max_map_entries:
        raise InvalidArgument(
            f"'{field_name}' has {len(values)} entries; at most {settings.max_map_entries} allowed"
        )
    total = 0
    for key, value in values.items():
        key_size = len(key.encode("utf-8", "surrogatepass"))
        value_size = len(value.encode("utf-8", "surrogatepass"))
        if key_size > settings.max_key_bytes:
            raise InvalidArgument(
                f"'{field_name}' key {key[:32]!r}... is longer than {settings.max_key_bytes} bytes"
            )
        if value_size > settings.max_value_bytes:
            raise InvalidArgument(
                f"'{field_name}' value of {key!r} is longer than {settings.max_value_bytes} bytes"
            )
        total += key_size + value_size
    if total > settings.max_map_bytes:
        raise InvalidArgument(f"'{field_name}' is larger than {settings.max_map_bytes} bytes")
