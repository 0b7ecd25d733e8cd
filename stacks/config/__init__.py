"""The stack's typed configuration, read once from `pulumi.Config()`.

Every check names the config key and says how to fix it, so `pulumi up` fails before it creates
anything rather than halfway through. The public names live here; the checks live in the modules
named for what they check (validate, secret_overrides, names, access, instances, clickhouse) and
`load` builds the `StackConfig` from them.
"""

from stacks.config.load import load_stack_config
from stacks.config.model import AZ_COUNTS, EGRESS, SecretValues, StackConfig
from stacks.config.validate import PROJECT, StackConfigError

__all__ = [
    "AZ_COUNTS",
    "EGRESS",
    "PROJECT",
    "SecretValues",
    "StackConfig",
    "StackConfigError",
    "load_stack_config",
]
