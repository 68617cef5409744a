"""Errors of the builders, each with the values a caller needs to act on it.

MobyAsmError
└── BuildError                    a build failed
    ├── InvalidLayer              a layer that cannot be applied safely
    ├── UnsupportedLayer          a layer compression that is not supported
    ├── MissingImageContent       a file the config names is missing from an image
    ├── PathConflict              two parts of the root filesystem claim one path
    ├── InvalidBuildConfig        also an InputError: a config value that cannot be built
    └── UnsupportedFormat         also an InputError: an output format the builder lacks
"""

from __future__ import annotations

from moby_asm.errors import InputError, MobyAsmError


class BuildError(MobyAsmError):
    """A build failed."""


class InvalidLayer(BuildError):
    """A layer of `image` has a member that cannot be applied without leaving the root.

    `member` is the member name as stored in the layer and `layer` is the layer digest.
    """

    def __init__(self, image: str, layer: str, member: str, reason: str):
        self.image = image
        self.layer = layer
        self.member = member
        self.reason = reason
        super().__init__(
            f"invalid layer {layer} of image {image}: member {member!r} {reason}; "
            "the image cannot be used as it is, so rebuild or replace it"
        )


class UnsupportedLayer(BuildError):
    """A layer of `image` uses a compression that the native builder cannot read."""

    def __init__(self, image: str, layer: str, compression: str):
        self.image = image
        self.layer = layer
        self.compression = compression
        super().__init__(
            f"layer {layer} of image {image} is {compression}-compressed, which the native builder "
            "does not read; use an image whose layers are gzip-compressed or uncompressed"
        )


class MissingImageContent(BuildError):
    """`image` lacks the file `path` that the config requires, or it is not a regular file."""

    def __init__(self, image: str, path: str, reason: str):
        self.image = image
        self.path = path
        self.reason = reason
        super().__init__(f"image {image}: {path!r} {reason}")


class PathConflict(BuildError):
    """An entry cannot be placed at `path` because of what an earlier part put there."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"cannot add {path!r} to the root filesystem: {reason}")


class InvalidBuildConfig(BuildError, InputError):
    """A value of the config at `where`, such as `services[2] (sshd)`, cannot be built."""

    def __init__(self, where: str, reason: str):
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


class UnsupportedFormat(BuildError, InputError):
    """The builder `builder` cannot write the output format `format`."""

    def __init__(self, builder: str, format: str, supported: tuple[str, ...]):
        self.builder = builder
        self.format = format
        self.supported = supported
        super().__init__(
            f"the {builder} builder cannot write the format {format!r}; supported formats: {', '.join(supported)}"
        )
