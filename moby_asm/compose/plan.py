"""The build plan: a DAG of steps whose keys hash every input, so unchanged steps can be skipped.

Steps: `pull` an image, `build-image` from a Docker build context or `debian-image` from
locked Debian packages; `kernel` and `unpack` (init images) from those images; `bundle`
each container into an OCI runtime bundle; `files` for the file entries; `assemble` the
root filesystem; and `emit`, one step per output format with the builder that makes it.
A step's key is the SHA-256 of its kind, its inputs and the keys of the steps it depends on.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from moby_asm.assembly.model import Assembly
from moby_asm.compose.render import STAGE_SECTIONS, build_context_digest, image_reference
from moby_asm.resolve.resolution import Resolution

PLAN_VERSION = 1
NATIVE_FORMATS = ("tar", "kernel+initrd", "tar-kernel-initrd", "docker", "oci")
"""Formats the native builder makes; the others need the `linuxkit` tool."""


def builder_for(assembly: Assembly, output: str) -> str:
    """Return the builder for an output: the assembly's choice, else native where it can."""
    chosen = assembly.builder.formats.get(output)
    if chosen is not None:
        return chosen
    if assembly.builder.default == "native" and output not in NATIVE_FORMATS:
        return "linuxkit"
    return assembly.builder.default


class _Plan:
    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.keys: dict[str, str] = {}

    def add(self, step_id: str, kind: str, inputs: dict[str, Any], after: list[str]) -> str:
        if step_id in self.keys:
            return step_id
        after = sorted(set(after))
        material = json.dumps({"kind": kind, "inputs": inputs, "after": [self.keys[a] for a in after]},
                              sort_keys=True, separators=(",", ":"))
        key = "sha256:" + hashlib.sha256(material.encode()).hexdigest()
        self.keys[step_id] = key
        self.steps.append({"id": step_id, "kind": kind, "inputs": inputs, "after": after, "key": key})
        return step_id


def build_plan(resolution: Resolution, order: dict[str, list[str]], config: dict[str, Any],
               packaged: dict[str, str] | None = None) -> dict[str, Any]:
    """Return the plan that builds `config`, the rendered LinuxKit config of `resolution`.

    `packaged` maps each component made from Debian packages to the image tag of its locked
    packages, so that a step's key changes when they do.
    """
    plan = _Plan()
    platforms = list(resolution.assembly.platforms)
    packaged = packaged or {}
    image_steps = {name: _image_step(plan, resolution, name, platforms, packaged.get(name))
                   for name, (_, version) in resolution.selected.items()
                   if version.source is not None and version.source.path is None}
    parts = []
    if "kernel" in config:
        name = order["kernel"][0]
        parts.append(plan.add("kernel", "kernel", {"kernel": config["kernel"]}, [image_steps[name]]))
    for position, name in enumerate(order["init"]):
        parts.append(plan.add(f"init:{position:03d}-{name}", "unpack", {"image": config["init"][position]},
                              [image_steps[name]]))
    for stage, section in STAGE_SECTIONS.items():
        for position, entry in enumerate(config.get(section, [])):
            folder = f"{section}/{entry['name']}" if stage == "service" else f"{section}/{position:03d}-{entry['name']}"
            parts.append(plan.add(f"bundle:{folder}", "bundle", {"entry": entry, "path": f"containers/{folder}"},
                                  [image_steps[entry["name"]]]))
    if config.get("files"):
        parts.append(plan.add("files", "files", {"files": config["files"]}, []))
    assemble = plan.add("rootfs", "assemble", {"platforms": platforms}, parts)
    for output in resolution.assembly.outputs:
        plan.add(f"output:{output}", "emit", {"format": output, "builder": builder_for(resolution.assembly, output),
                                              "name": resolution.assembly.name}, [assemble])
    return {"planVersion": PLAN_VERSION, "assembly": resolution.assembly.name, "steps": plan.steps}


def _image_step(plan: _Plan, resolution: Resolution, name: str, platforms: list[str], packaged: str | None) -> str:
    entry, version = resolution.selected[name]
    reference = image_reference(entry, version, platforms[0])
    if version.source.build is not None:
        build = version.source.build
        # The context's content digest, not its absolute path, keys the step, so a project
        # checked out elsewhere reuses the same keys.
        inputs = {"image": reference, "context": build.context,
                  "contextDigest": build_context_digest(entry, version, platforms[0]), "dockerfile": build.dockerfile,
                  "args": dict(sorted(build.args.items())), "target": build.target, "platforms": platforms}
        return plan.add(f"build:{name}", "build-image", inputs, [])
    if version.source.debian is not None:
        inputs = {"image": packaged or reference,
                  "debian": version.source.debian.model_dump(mode="json", exclude_defaults=True),
                  "platforms": platforms}
        return plan.add(f"debian:{name}", "debian-image", inputs, [])
    return plan.add(f"pull:{reference}", "pull", {"image": reference, "platforms": platforms}, [])
