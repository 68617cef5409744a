"""Image references: parsing and normalisation as Docker does it.

`busybox` becomes `docker.io/library/busybox:latest`, `linuxkit/init:v1.0` becomes
`docker.io/linuxkit/init:v1.0`, and `127.0.0.1:5000/team/app@sha256:...` stays as it is.
The first path component is a registry host when it contains a dot or a colon or is
`localhost`, following the reference grammar of the distribution project
(reference/regexp.go). Only sha256 digests are accepted.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from moby_asm.registry.errors import InvalidReference

DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
"""The host that serves Docker Hub's registry API; references name it `docker.io`."""
DOCKER_HUB_ALIASES = frozenset({DOCKER_HUB, "index.docker.io", DOCKER_HUB_ENDPOINT})
DEFAULT_TAG = "latest"
MAX_NAME_LENGTH = 255

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Reference:
    """A normalised image reference: registry domain, repository path, and a tag, a digest or both."""

    domain: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """Return the repository name with its domain, such as docker.io/library/busybox."""
        return f"{self.domain}/{self.path}"

    @property
    def target(self) -> str:
        """Return what the manifest request names: the digest when pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Parse and normalise an image reference; raise InvalidReference with the reason."""
    if not isinstance(text, str) or not text:
        raise InvalidReference(str(text), "the reference is empty")
    remainder, _, digest = text.partition("@")
    if digest and not _DIGEST.fullmatch(digest):
        raise InvalidReference(text, f"digest {digest!r} is not sha256: followed by 64 lowercase hex digits")
    remainder, tag = _split_tag(remainder)
    if tag is not None and not _TAG.fullmatch(tag):
        raise InvalidReference(text, f"tag {tag!r} is invalid: use letters, digits, '_', '.' and '-', at most 128")
    domain, path = _split_domain(text, remainder)
    if len(f"{domain}/{path}") > MAX_NAME_LENGTH:
        raise InvalidReference(text, f"the repository name is longer than {MAX_NAME_LENGTH} characters")
    if tag is None and not digest:
        tag = DEFAULT_TAG
    return Reference(domain=domain, path=path, tag=tag, digest=digest or None)


def _split_tag(remainder: str) -> tuple[str, str | None]:
    name, colon, tag = remainder.rpartition(":")
    if not colon or "/" in tag:
        return remainder, None
    return name, tag


def _split_domain(text: str, name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _HOST.fullmatch(first):
            raise InvalidReference(text, f"registry host {first!r} is invalid")
        domain, path = first, rest
    else:
        domain, path = DOCKER_HUB, name
    if domain in DOCKER_HUB_ALIASES:
        domain = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    for component in path.split("/"):
        if not _PATH_COMPONENT.fullmatch(component):
            raise InvalidReference(
                text, f"repository path component {component!r} is invalid: use lowercase letters, digits and . _ -"
            )
    return domain, path


def is_loopback(host: str) -> bool:
    """Return whether `host` (with an optional port) is localhost or a loopback address."""
    hostname = split_port(host)[0]
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def split_port(host: str) -> tuple[str, str | None]:
    """Split `host:port`, `[v6]:port` or a bare host into the host name and the port."""
    if host.startswith("["):
        address, _, after = host[1:].partition("]")
        return address, after.removeprefix(":") or None
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        return name, port
    return host, None
