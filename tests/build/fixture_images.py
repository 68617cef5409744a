"""Stand-in images for the Docker Hub images that the shipped components name.

Each image is pushed to a local registry under the repository path and tag that Docker
Hub serves it under, so that `moby-asm build --mirror docker.io=HOST:PORT` finds it
there. Kernel images are copies of one LinuxKit-style kernel image with /kernel and
/kernel.tar. Every other image is a small busybox image made with umoci.

The mapping from a reference to its Docker Hub path is written out here instead of
taken from moby_asm.registry, so that a wrong normalisation in moby-asm fails the build.
"""

from __future__ import annotations

from collections.abc import Iterable

from fixtures_registry import make_busybox_image, push

DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")
OFFICIAL_NAMESPACE = "library"
DEFAULT_TAG = "latest"


class UnsupportedReference(ValueError):
    """An image reference that no stand-in image on the Docker Hub mirror can serve."""


def docker_hub_path(reference: str) -> tuple[str, str]:
    """Return the repository path and tag under which Docker Hub serves `reference`.

    `linuxkit/init:v1` gives ("linuxkit/init", "v1") and `redis:7` gives ("library/redis", "7").
    Raise UnsupportedReference for another registry or a reference pinned by digest.
    """
    if "@" in reference:
        raise UnsupportedReference(f"{reference} is pinned by digest, which a stand-in image cannot match")
    name, tag = _split_tag(reference)
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        if first not in DOCKER_HUB_HOSTS:
            raise UnsupportedReference(f"{reference} is on registry {first}, but only Docker Hub is mirrored")
        name = rest
    if "/" not in name:
        name = f"{OFFICIAL_NAMESPACE}/{name}"
    return name, tag


def _split_tag(reference: str) -> tuple[str, str]:
    name, colon, tag = reference.rpartition(":")
    if not colon or "/" in tag:
        return reference, DEFAULT_TAG
    return name, tag


class StandInImages:
    """Stand-in images in one registry, pushed on request, each repository path and tag once.

    `kernel_source` (HOST:PORT/REPOSITORY:TAG in the same registry) is copied for kernel
    images; every other image is a new busybox image.
    """

    def __init__(self, registry_url: str, kernel_source: str):
        self.registry_url = registry_url
        self.kernel_source = kernel_source
        self.pushed: dict[tuple[str, str], str] = {}

    def provide(self, references: Iterable[str], kernel_references: Iterable[str] = ()) -> None:
        """Push a stand-in for each reference that the registry does not hold yet."""
        kernels = set(kernel_references)
        for reference in references:
            repository, tag = docker_hub_path(reference)
            if (repository, tag) in self.pushed:
                continue
            if reference in kernels:
                source = f"docker://{self.kernel_source}"
                pushed = push(source, self.registry_url, repository, tag, "--src-tls-verify=false")
            else:
                pushed = make_busybox_image(self.registry_url, repository, tag)
            self.pushed[repository, tag] = pushed
