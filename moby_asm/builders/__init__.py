"""Builders turn a rendered LinuxKit config and pulled images into output files.

`base` defines the interface; `native` is the builder that needs no Docker daemon.
"""

from moby_asm.builders.base import Builder, BuildJob, BuildOutput

__all__ = ["BuildJob", "BuildOutput", "Builder"]
