"""The assembly: the user's request for a platform, read from `assembly.yml`."""

from moby_asm.assembly.model import Assembly, BuilderPreferences, load_assembly

__all__ = ["Assembly", "BuilderPreferences", "load_assembly"]
