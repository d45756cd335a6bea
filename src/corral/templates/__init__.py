"""Templates: recipes built into cached, content-addressed, read-only rootfs layers.

A template is an ordered stack of layers (bottom first) plus a JSON manifest
`<templates_dir>/<name>.json`; layer `<id>` lives in `<templates_dir>/layers/<id>/`.
The runtime mounts the layers as overlay lower layers (`load_template` → `TemplateRef`).

Error hierarchy::

    TemplateError            base of everything this package raises
    ├── TemplateNotFound     no built template of that name (or an invalid name)
    ├── TemplateCorrupt      a manifest is unreadable or names a missing layer
    ├── RecipeError          a recipe is malformed (names the line)
    │   └── RecipeNotFound   no shipped recipe of that name
    └── BuildError           a build step failed (nothing of that step was committed)
"""

from corral.templates.builder import (
    BuildReporter,
    BuildResult,
    PlannedStep,
    SilentReporter,
    build_template,
    plan_steps,
)
from corral.templates.errors import (
    BuildError,
    RecipeError,
    RecipeNotFound,
    TemplateCorrupt,
    TemplateError,
    TemplateNotFound,
)
from corral.templates.layers import LayerInfo, LayerStore, layer_id
from corral.templates.manifest import (
    TemplateManifest,
    list_templates,
    load_template,
    read_manifest,
)
from corral.templates.namespace_runner import NamespaceStepRunner
from corral.templates.recipe import (
    CopyStep,
    DebootstrapBase,
    Recipe,
    RunStep,
    StartCommand,
    TemplateBase,
    parse_recipe,
    shipped_recipe,
    shipped_recipe_names,
)
from corral.templates.runner import StepOutcome, StepRunner

DEFAULT_TEMPLATES_DIR = "/var/lib/corral/templates"

__all__ = [
    "DEFAULT_TEMPLATES_DIR",
    "BuildError",
    "BuildReporter",
    "BuildResult",
    "CopyStep",
    "DebootstrapBase",
    "LayerInfo",
    "LayerStore",
    "NamespaceStepRunner",
    "PlannedStep",
    "Recipe",
    "RecipeError",
    "RecipeNotFound",
    "RunStep",
    "SilentReporter",
    "StartCommand",
    "StepOutcome",
    "StepRunner",
    "TemplateBase",
    "TemplateCorrupt",
    "TemplateError",
    "TemplateManifest",
    "TemplateNotFound",
    "build_template",
    "layer_id",
    "list_templates",
    "load_template",
    "parse_recipe",
    "plan_steps",
    "read_manifest",
    "shipped_recipe",
    "shipped_recipe_names",
]
