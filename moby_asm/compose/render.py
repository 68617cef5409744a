"""Render a resolved selection into a LinuxKit YAML config.

Each container entry starts from the component's `config` and takes the assembly's
`config` for that component on top, the way LinuxKit lets a YAML entry override an
image's `org.mobyproject.config` label: a field set in the assembly replaces the
component's, while `binds.add` and `capabilities.add` are appended. The image's own
label is merged later, by the builder that pulls the image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from moby_asm.catalog.loading import CatalogEntry
from moby_asm.catalog.model import ComponentVersion, KernelSettings
from moby_asm.compose.parameters import substitute
from moby_asm.errors import InputError
from moby_asm.resolve.resolution import Resolution
from moby_asm.treehash import tree_digest

EXTENDING_FIELDS = ("binds.add", "capabilities.add")
STAGE_SECTIONS = {"onboot": "onboot", "service": "services", "onshutdown": "onshutdown"}
LOCAL_IMAGE_PREFIX = "moby-asm.local/"
UNRESOLVED_DEBIAN_TAG = "debian-packages-not-locked"


class ComposeError(InputError):
    """The selection cannot be rendered into one LinuxKit config."""


def render_linuxkit(resolution: Resolution, order: dict[str, list[str]],
                    values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Return the LinuxKit config of a selection as plain data, sections in LinuxKit's order."""
    config: dict[str, Any] = {}
    kernel = _kernel(resolution, order, values)
    if kernel:
        config["kernel"] = kernel
    platform = resolution.assembly.platforms[0]
    config["init"] = [image_reference(*resolution.selected[name], platform) for name in order["init"]]
    for stage, section in STAGE_SECTIONS.items():
        entries = [_container(resolution, name, values[name]) for name in order[stage]]
        if entries:
            config[section] = entries
    files = _files(resolution, order, values)
    if files:
        config["files"] = files
    if resolution.assembly.volumes:
        config["volumes"] = [v.model_dump(by_alias=True, exclude_none=True) for v in resolution.assembly.volumes]
    return config


def image_reference(entry: CatalogEntry, version: ComponentVersion, platform: str) -> str:
    """Return the image a component version runs: its image, or a local tag for a build context and platform."""
    source = version.source
    if source is None:
        raise ComposeError(f"component {entry.name!r} {version.version} has no source to run")
    if source.image is not None:
        return source.image
    if source.build is not None:
        return f"{LOCAL_IMAGE_PREFIX}{entry.name}:{build_context_digest(entry, version, platform)[:16]}"
    if source.debian is not None:
        # The lock's package list names the real tag; compose puts it in place of this one.
        return f"{LOCAL_IMAGE_PREFIX}{entry.name}:{UNRESOLVED_DEBIAN_TAG}"
    raise ComposeError(f"component {entry.name!r} {version.version} has a path source, which only the "
                       "'files' stage takes; use an image or a build context for containers")


def pinned_reference(image: str, digest: str) -> str:
    """Return how a config names a built image: by digest too, unless it exists only on this machine."""
    return image if image.startswith(LOCAL_IMAGE_PREFIX) else f"{image}@{digest}"


def build_context_digest(entry: CatalogEntry, version: ComponentVersion, platform: str) -> str:
    """Return the SHA-256 over a build context, its Dockerfile, target, build arguments and platform.

    Every entry the engine receives counts: regular files by content and mode, symbolic
    links by target, and folders, empty ones included. A Dockerfile outside the context
    counts by content too. Results are kept for the process while no entry's size, mode
    or modification time changes, so one build hashes each context once.
    """
    build = version.source.build
    context = (entry.path.parent / build.context).resolve()
    if not context.is_dir():
        raise ComposeError(f"{entry.path}: build context {build.context!r} of component {entry.name!r} "
                           f"not found or not a folder ({context})")
    dockerfile = context / build.dockerfile
    if not dockerfile.is_file():
        raise ComposeError(f"{entry.path}: build context of component {entry.name!r} has no "
                           f"{build.dockerfile!r}; add it or set 'dockerfile' to the file's name")
    settings = f"dockerfile={build.dockerfile}\0target={build.target or ''}\0platform={platform}\0" + "".join(
        f"arg:{key}={value}\0" for key, value in sorted(build.args.items()))
    extra = [] if dockerfile.resolve().is_relative_to(context) else [dockerfile]
    try:
        return tree_digest(context, settings, extra)
    except OSError as error:
        raise ComposeError(f"cannot read the build context of component {entry.name!r}: "
                           f"{error.filename}: {error.strerror}") from error


def _kernel(resolution: Resolution, order: dict[str, list[str]], values: dict[str, dict[str, Any]]) -> dict | None:
    names = order["kernel"]
    if not names:
        return None
    if len(names) > 1:
        raise ComposeError(f"assembly {resolution.assembly.name!r} selects {len(names)} kernels "
                           f"({', '.join(names)}); require exactly one kernel component")
    entry, version = resolution.selected[names[0]]
    settings = (version.kernel or KernelSettings()).model_dump(exclude_none=True)
    overrides = resolution.assembly.kernel
    if overrides is not None:
        settings.update(overrides.model_dump(exclude_none=True))
    settings = substitute(settings, values[names[0]])
    image = image_reference(entry, version, resolution.assembly.platforms[0])
    kernel = {"image": image, "cmdline": settings["cmdline"]}
    defaults = KernelSettings().model_dump()
    for key in ("binary", "tar", "ucode"):
        if settings.get(key) is not None and settings[key] != defaults.get(key):
            kernel[key] = settings[key]
    return kernel


def _container(resolution: Resolution, name: str, values: dict[str, Any]) -> dict[str, Any]:
    entry, version = resolution.selected[name]
    settings = version.config.to_linuxkit() if version.config else {}
    override = resolution.assembly.config.get(name)
    if override is not None:
        settings = merge_settings(settings, override.to_linuxkit())
    image = image_reference(entry, version, resolution.assembly.platforms[0])
    return {"name": name, "image": image, **substitute(settings, values)}


def merge_settings(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Merge runtime settings as LinuxKit does: `top` replaces fields and extends the `.add` lists.

    An `.add` list on top of a full list (`binds.add` over `binds`) is folded into the full
    list, since LinuxKit applies `binds.add` only to the label's list. `runtime` merges key by key.
    """
    merged = dict(base)
    for key, value in top.items():
        full_key = key.removesuffix(".add")
        if key in EXTENDING_FIELDS and full_key in merged:
            merged[full_key] = _extend(merged[full_key], value)
        elif key in EXTENDING_FIELDS and key in merged:
            merged[key] = _extend(merged[key], value)
        elif key == "runtime" and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _extend(items: list, extra: list) -> list:
    return list(items) + [item for item in extra if item not in items]


def _files(resolution: Resolution, order: dict[str, list[str]], values: dict[str, dict[str, Any]]) -> list[dict]:
    """Return component files in stage order, then the assembly's; the assembly's replace same paths."""
    owners: dict[str, str] = {}
    by_path: dict[str, dict] = {}
    for stage in ("kernel", "init", "onboot", "service", "onshutdown", "files"):
        for name in order[stage]:
            for item in _component_files(resolution, name, values[name]):
                if item["path"] in owners:
                    raise ComposeError(f"components {owners[item['path']]!r} and {name!r} both write "
                                       f"{item['path']!r}; set the file in the assembly to choose its content")
                owners[item["path"]] = name
                by_path[item["path"]] = item
    for item in resolution.assembly.files:
        by_path.pop(item.path, None)
        by_path[item.path] = item.model_dump(exclude_none=True)
    return list(by_path.values())


def _check_file_path(name: str, path: str) -> None:
    """Reject a file path that a parameter value turned absolute or made climb out with '..'."""
    if path.startswith("/") or ".." in path.split("/") or not path.strip("/"):
        raise ComposeError(f"component {name!r} writes the file {path!r} after its parameters are filled in; "
                           "a file path must stay relative to the root filesystem and must not contain '..'")


def _component_files(resolution: Resolution, name: str, values: dict[str, Any]) -> list[dict]:
    entry, version = resolution.selected[name]
    files = [substitute(item.model_dump(exclude_none=True), values) for item in version.files]
    for item in files:
        _check_file_path(name, item["path"])
        if "source" in item:
            item["source"] = str((entry.path.parent / item["source"]).resolve())
    if version.source is not None and version.source.path is not None:
        files.extend(_folder_files(entry.path.parent / version.source.path))
    return files


def _folder_files(folder: Path) -> list[dict]:
    if not folder.is_dir():
        raise ComposeError(f"path source {str(folder)!r} is not a folder")
    return [{"path": p.relative_to(folder).as_posix(), "source": str(p.resolve())}
            for p in sorted(folder.rglob("*")) if p.is_file()]
