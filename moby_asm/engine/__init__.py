"""The Docker Engine, reached through the docker SDK: image builds, pushes, saves and loads.

The SDK is imported on first use, so commands that never talk to an engine start fast.
"""

from moby_asm.engine.connection import EngineError, EngineUnavailable, connect
from moby_asm.engine.images import (
    BuildFailed,
    ImageBuild,
    PushFailed,
    build_image,
    load_archive,
    push_image,
    save_image,
)

__all__ = ["BuildFailed", "EngineError", "EngineUnavailable", "ImageBuild", "PushFailed", "build_image", "connect",
           "load_archive", "push_image", "save_image"]
