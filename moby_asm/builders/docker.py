"""The `docker` builder: the docker format made natively, then loaded into the Docker Engine as an image."""

from __future__ import annotations

from dataclasses import replace

from moby_asm.builders.base import BuildOutput
from moby_asm.reporter import Reporter


def load_into_engine(outputs: list[BuildOutput], tag: str, engine: str | None, reporter: Reporter) -> list[BuildOutput]:
    """Load each docker archive of `outputs` into the engine, tagged `tag`, and name the image in the output."""
    from moby_asm.engine import connect, load_archive

    client = connect(engine)
    loaded = []
    for output in outputs:
        if output.format != "docker":
            loaded.append(output)
            continue
        reporter.step(f"loading {output.path.name} into the Docker Engine as {tag}")
        image_id = load_archive(client, output.path, tag)
        loaded.append(replace(output, image=f"{tag}@{image_id}"))
    return loaded
