"""Plain data shared by every server layer: ids, specs, limits, states. No I/O here.

Nothing in this package imports anything else from `corral`.
"""

from corral.model.ids import new_access_token, new_sandbox_id, valid_sandbox_id
from corral.model.limits import LIMIT_KEYS, LimitOverrides, parse_limit_overrides
from corral.model.network import EgressPolicy, SandboxNetwork, policy_from_json, policy_to_json
from corral.model.sandbox import (
    Limits,
    SandboxRecord,
    SandboxSpec,
    SandboxState,
    TemplateRef,
)

__all__ = [
    "EgressPolicy",
    "LIMIT_KEYS",
    "LimitOverrides",
    "Limits",
    "SandboxNetwork",
    "SandboxRecord",
    "SandboxSpec",
    "SandboxState",
    "TemplateRef",
    "new_access_token",
    "new_sandbox_id",
    "parse_limit_overrides",
    "policy_from_json",
    "policy_to_json",
    "valid_sandbox_id",
]
