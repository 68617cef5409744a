"""Build, push, save and load images on a Docker Engine, with errors that name the component and step."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moby_asm.engine.connection import EngineError
from moby_asm.engine.streams import cancellable

LineSink = Callable[[str], None]
TAIL_LINES = 30


@dataclass(frozen=True)
class ImageBuild:
    """One component image to build from a Docker build context."""

    component: str
    context: Path
    tag: str
    dockerfile: str = "Dockerfile"
    args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    platform: str | None = None
    network: str | None = None


class BuildFailed(EngineError):
    """`docker build` of a component failed; the engine's last output lines are kept in `log`."""

    def __init__(self, component: str, cause: str, log: list[str], dockerfile: Path | None = None):
        self.component = component
        self.cause = cause
        self.log = log
        tail = "".join(f"\n  | {line}" for line in log)
        source = f" of {dockerfile}" if dockerfile else ""
        super().__init__(f"component {component!r}: docker build{source} failed: {cause}{tail}")


class PushFailed(EngineError):
    """The push of a built image to its registry failed."""

    def __init__(self, component: str, reference: str, cause: str):
        self.component = component
        self.reference = reference
        super().__init__(f"component {component!r}: pushing {reference} failed: {cause}; check that the "
                         "registry is running and accepts pushes (credentials from 'docker login')")


class _Log:
    """A sink for output lines that also keeps the last few for an error message."""

    def __init__(self, sink: LineSink):
        self.sink = sink
        self.lines: list[str] = []

    def add(self, text: str) -> None:
        for line in text.splitlines():
            if line.strip():
                self.sink(line)
                self.lines = [*self.lines[-(TAIL_LINES - 1):], line]


def build_image(client, build: ImageBuild, on_line: LineSink, cancel: threading.Event | None = None) -> str:
    """Build `build` with the engine, tag it, and return the image ID."""
    from docker.errors import APIError

    log = _Log(on_line)
    options: dict[str, Any] = {"path": str(build.context), "dockerfile": build.dockerfile, "tag": build.tag,
                               "buildargs": dict(build.args), "target": build.target, "rm": True, "forcerm": True,
                               "decode": True, "platform": build.platform, "network_mode": build.network}
    image_id = None
    try:
        stream = client.api.build(**{key: value for key, value in options.items() if value is not None})
        for message in cancellable(stream, cancel, f"building {build.component}"):
            image_id = _build_message(message, log, build) or image_id
    except APIError as error:
        raise BuildFailed(build.component, _explain(error), log.lines, build.context / build.dockerfile) from error
    except OSError as error:
        # The SDK reads the context into a tar before the request; an unreadable entry fails there.
        raise BuildFailed(build.component, f"cannot read {error.filename}: {error.strerror}", log.lines) from error
    if image_id is None:
        raise BuildFailed(build.component, "the engine reported no image", log.lines)
    return image_id


def _build_message(message: dict, log: _Log, build: ImageBuild) -> str | None:
    if "error" in message:
        raise BuildFailed(build.component, message["error"].strip(), log.lines, build.context / build.dockerfile)
    if "stream" in message:
        log.add(message["stream"])
    return (message.get("aux") or {}).get("ID")


def push_image(client, component: str, reference: str, on_line: LineSink,
               cancel: threading.Event | None = None) -> str:
    """Push a tagged image and return the manifest digest the registry stored."""
    from docker.errors import APIError

    repository, _, tag = reference.rpartition(":")
    digest = None
    try:
        stream = client.api.push(repository, tag=tag, stream=True, decode=True)
        for message in cancellable(stream, cancel, f"pushing {reference}"):
            if "error" in message:
                raise PushFailed(component, reference, message["error"].strip())
            if message.get("status") and not message.get("progressDetail"):
                on_line(f"{message.get('id', '')} {message['status']}".strip())
            digest = (message.get("aux") or {}).get("Digest") or digest
    except APIError as error:
        raise PushFailed(component, reference, _explain(error)) from error
    if digest is None:
        raise PushFailed(component, reference, "the engine reported no digest")
    return digest


def save_image(client, component: str, image_id: str, target: Path,
               cancel: threading.Event | None = None) -> None:
    """Write the `docker save` archive of an image to `target`."""
    from docker.errors import APIError

    try:
        with open(target, "wb") as output:
            for chunk in cancellable(client.api.get_image(image_id), cancel, f"saving {component}"):
                output.write(chunk)
    except APIError as error:
        raise EngineError(f"component {component!r}: saving image {image_id} failed: {_explain(error)}") from error


def load_archive(client, archive: Path, tag: str) -> str:
    """Load a `docker save` archive into the engine, tag its image `tag`, and return the image ID."""
    from docker.errors import APIError

    try:
        with open(archive, "rb") as data:
            images = client.images.load(data)
        if not images:
            raise EngineError(f"loading {archive} into the engine gave no image")
        repository, _, version = tag.rpartition(":")
        images[0].tag(repository, version)
    except APIError as error:
        raise EngineError(f"loading {archive} into the engine failed: {_explain(error)}") from error
    return images[0].id


def _explain(error) -> str:
    explanation = getattr(error, "explanation", None)
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    return (explanation or str(error)).strip()
