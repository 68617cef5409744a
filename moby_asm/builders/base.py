"""The interface between moby-asm and the programs that turn a LinuxKit config into images.

A caller pulls every image that the config names into the content store, then hands the
builder a `BuildJob` whose `images` callable returns the pulled images. The builder writes
each requested output format into `output_dir` and returns one `BuildOutput` per file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from moby_asm.reporter import Reporter
    from moby_asm.store.model import ImageContent


@dataclass(frozen=True)
class BuildOutput:
    """One file that a build wrote, with its size in bytes and the sha256 digest of its contents.

    `image` names the Docker Engine image the file was loaded as, for the docker builder.
    """

    format: str
    path: Path
    size: int
    digest: str
    image: str | None = None


@dataclass
class BuildJob:
    """Everything a builder needs to build one assembly.

    `config` is the rendered LinuxKit config, as written to `linuxkit.yml`. `images` returns
    the pulled image for an image reference of the config, and `blob_path` the path of a
    verified blob of the content store for a digest. `platform` is OS/ARCH[/VARIANT].
    """

    name: str
    config: dict
    formats: list[str]
    platform: str
    output_dir: Path
    images: Callable[[str], ImageContent]
    blob_path: Callable[[str], Path]


class Builder(Protocol):
    """A program that builds the output formats in `formats` from a `BuildJob`."""

    name: str
    formats: tuple[str, ...]

    def build(self, job: BuildJob, reporter: Reporter) -> list[BuildOutput]:
        """Write every format of `job.formats` into `job.output_dir` and return the files written."""
        ...
