"""LinuxKit YAML configs: the JSON Schema they must match and the checks moby-asm runs on them.

`validate_linuxkit` checks a file loaded with positions and `check_config` checks a config
held in memory, such as one that moby-asm renders.
"""

from moby_asm.linuxkit.schema import (
    check_config,
    is_linuxkit_config,
    load_schema,
    validate_linuxkit,
)

__all__ = ["check_config", "is_linuxkit_config", "load_schema", "validate_linuxkit"]
