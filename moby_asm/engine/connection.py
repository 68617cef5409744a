"""Connect to the Docker Engine named by DOCKER_HOST, or the default socket, and explain why that failed."""

from __future__ import annotations

import os

from moby_asm.errors import InputError, MobyAsmError

DEFAULT_ENGINE = "unix:///var/run/docker.sock"
ENGINE_SCHEMES = ("unix", "tcp", "http", "https", "ssh", "npipe")


class InvalidEngineAddress(InputError):
    """DOCKER_HOST or --engine is not an address the docker SDK can connect to."""


class EngineError(MobyAsmError):
    """A failed Docker Engine request. The message names the component and the step."""


class EngineUnavailable(EngineError):
    """No Docker Engine responds at the address, or the socket cannot be opened."""

    def __init__(self, url: str, cause: str):
        self.url = url
        self.cause = cause
        super().__init__(f"cannot reach the Docker Engine at {url}: {cause}; {_advice(cause)}")


def _advice(cause: str) -> str:
    if "permission denied" in cause.lower():
        return ("run as a user in the 'docker' group, or point DOCKER_HOST (or --engine) at a socket "
                "you may open")
    return "start dockerd, or point DOCKER_HOST (or --engine) at a running engine"


def engine_url(url: str | None = None) -> str:
    """Return the engine address in use: the one given, else DOCKER_HOST, else the default socket."""
    return url or os.environ.get("DOCKER_HOST") or DEFAULT_ENGINE


def connect(url: str | None = None, timeout: float = 600):
    """Return a docker SDK client whose engine responded to a ping; raise EngineUnavailable otherwise."""
    import docker
    from docker.errors import DockerException

    address = engine_url(url)
    if address.partition("://")[0] not in ENGINE_SCHEMES or not address.partition("://")[2]:
        source = "--engine" if url else "DOCKER_HOST"
        raise InvalidEngineAddress(f"invalid Docker Engine address {address!r} (from {source}): use "
                                   "unix:///PATH/docker.sock, tcp://HOST:PORT or ssh://USER@HOST")
    try:
        client = docker.DockerClient(base_url=address, version="auto", timeout=timeout)
        client.ping()
    except DockerException as error:
        raise EngineUnavailable(address, _cause(error)) from error
    except OSError as error:
        raise EngineUnavailable(address, error.strerror or str(error)) from error
    return client


def _cause(error: Exception) -> str:
    text = str(error)
    for marker in ("Permission denied", "No such file or directory", "Connection refused"):
        if marker in text:
            return marker.lower()
    return text
