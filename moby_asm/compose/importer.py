"""Import LinuxKit configs: turn one or more layered YAML files into an assembly and components.

Layers combine as `linuxkit build` combines several files: lists concatenate in order
and later kernel fields win. Each image is matched against the catalog: a container
entry whose name is a catalog component with a version of exactly that image, and whose
settings equal the component's or only add to them, becomes a requirement on that
version (with the difference as an assembly `config` override); anything else becomes
a local component in `components/` that keeps every setting. The assembly's `order`
keeps the init, onboot and onshutdown order of the original.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from moby_asm.catalog.loading import Catalog, CatalogEntry
from moby_asm.catalog.model import NAME_PATTERN, ComponentVersion, KernelSettings
from moby_asm.compose.parameters import substitute
from moby_asm.compose.render import EXTENDING_FIELDS
from moby_asm.errors import InputError
from moby_asm.versions import InvalidVersion, Version

SECTIONS = {"onboot": "onboot", "services": "service", "onshutdown": "onshutdown"}
LIST_SECTIONS = ("init", "onboot", "services", "onshutdown", "files", "volumes")


class ImportError_(InputError):
    """A LinuxKit config cannot be imported."""


@dataclass
class ImportResult:
    """The assembly data and local component descriptors that reproduce the imported configs."""

    assembly: dict[str, Any]
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    matched: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def merge_layers(layers: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Combine LinuxKit configs as `linuxkit build` does with several files."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key == "kernel":
                merged.setdefault("kernel", {}).update(value)
            elif key in LIST_SECTIONS:
                merged.setdefault(key, []).extend(value)
            else:
                merged[key] = value
    return merged


def import_config(config: dict[str, Any], catalog: Catalog, name: str, use_catalog: bool = True) -> ImportResult:
    """Return an assembly named `name` whose composition is equivalent to `config`.

    With `use_catalog` false every image becomes a local component, which always
    reproduces the config; the caller falls back to that when matching the catalog
    gives a different composition (a catalog component's order hints, say).
    """
    _check_unique_names(config)
    result = ImportResult({"name": name, "requires": []})
    _Importer(catalog if use_catalog else Catalog([]), result, catalog).run(config)
    if "trust" in config:
        result.ignored.append("trust (LinuxKit ignores it since content trust was removed)")
    return result


def _check_unique_names(config: dict[str, Any]) -> None:
    """Reject a container name used in two stages: moby-asm names containers after components."""
    seen: dict[str, str] = {}
    for section in SECTIONS:
        for entry in config.get(section, []):
            name = entry.get("name")
            if name in seen and seen[name] != section:
                raise ImportError_(f"container name {name!r} is used in both {seen[name]} and {section}; "
                                   "moby-asm names each container after its component, so rename one of them")
            seen.setdefault(name, section)


class _Importer:
    def __init__(self, catalog: Catalog, result: ImportResult, capabilities_from: Catalog):
        self.catalog = catalog
        self.capabilities_from = capabilities_from
        self.result = result
        self.assembly = result.assembly

    def run(self, config: dict[str, Any]) -> None:
        if "kernel" in config:
            self._kernel(config["kernel"])
        # LinuxKit unpacks a repeated init image twice with the same result, so once is enough.
        order = [self._init(image) for image in dict.fromkeys(config.get("init", []))]
        self._order("init", order)
        for section, stage in SECTIONS.items():
            names = [self._container(entry, stage) for entry in config.get(section, [])]
            if stage != "service":
                self._order(stage, names)
        if config.get("files"):
            self.assembly["files"] = list(config["files"])
        if config.get("volumes"):
            self.assembly["volumes"] = list(config["volumes"])

    def _require(self, name: str, version: str) -> None:
        self.assembly["requires"].append(f"{name} {version}")

    def _order(self, stage: str, names: list[str]) -> None:
        if len(names) > 1:
            self.assembly.setdefault("order", {})[stage] = names

    def _kernel(self, kernel: dict[str, Any]) -> None:
        image = kernel["image"]
        found = self._find_by_image(image, "kernel")
        settings = {key: value for key, value in kernel.items() if key != "image"}
        if found is None:
            name = self._local_name(image, "kernel")
            self._add_local(name, image, "kernel", {"kernel": settings} if settings else {})
            return
        entry, version = found
        self._require(entry.name, version.version)
        self.result.matched.append(f"kernel {image} -> {entry.name} {version.version}")
        current = (version.kernel or KernelSettings()).model_dump()
        # A field the config leaves out takes LinuxKit's default, not the component's.
        wanted = {**KernelSettings().model_dump(), **settings}
        overrides = {key: wanted[key] for key in ("cmdline", "binary", "tar", "ucode") if current.get(key) != wanted[key]}
        if overrides:
            self.assembly["kernel"] = overrides

    def _init(self, image: str) -> str:
        found = self._find_by_image(image, "init")
        if found is None:
            name = self._local_name(image, "init")
            self._add_local(name, image, "init", {})
            return name
        entry, version = found
        self._require(entry.name, version.version)
        self.result.matched.append(f"init {image} -> {entry.name} {version.version}")
        return entry.name

    def _container(self, item: dict[str, Any], stage: str) -> str:
        name, image = item["name"], item["image"]
        settings = {key: value for key, value in item.items() if key not in ("name", "image")}
        entry = self.catalog.get(name)
        version = _version_with_image(entry, image, stage) if entry else None
        override = _override(version, settings) if version else None
        if override is None:
            local = self._check_local_name(name)
            self._add_local(local, image, stage, {"config": settings} if settings else {})
            return local
        self._require(name, version.version)
        self.result.matched.append(f"{stage} {name} {image} -> {name} {version.version}")
        if override:
            self.assembly.setdefault("config", {})[name] = override
        return name

    def _find_by_image(self, image: str, stage: str) -> tuple[CatalogEntry, ComponentVersion] | None:
        for entry in self.catalog:
            version = _version_with_image(entry, image, stage)
            if version is not None:
                return entry, version
        return None

    def _local_name(self, image: str, stage: str) -> str:
        base = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0].lower()
        return self._check_local_name(base if NAME_PATTERN.fullmatch(base) else f"{stage}-image")

    def _check_local_name(self, name: str) -> str:
        if not NAME_PATTERN.fullmatch(name):
            raise ImportError_(f"entry name {name!r} cannot name a component: use lowercase letters, digits and '-'")
        candidate, suffix = name, 2
        while candidate in self.result.components:
            candidate, suffix = f"{name}-{suffix}", suffix + 1
        return candidate

    def _add_local(self, name: str, image: str, stage: str, fields: dict[str, Any]) -> None:
        version = _version_from_tag(image)
        descriptor_version = {"version": version, "stage": stage, "source": {"image": image}, **fields}
        provides = self._provides_like(image, version)
        if provides:
            descriptor_version["provides"] = provides
        self.result.components[name] = {
            "name": name,
            "description": f"Imported from a LinuxKit config: {image}",
            "versions": [descriptor_version],
        }
        self._require(name, version)

    def _provides_like(self, image: str, version: str) -> list[str]:
        """Copy the capabilities of a catalog component built from the same repository."""
        repository = image.split("@")[0].rsplit(":", 1)[0]
        for entry in self.capabilities_from:
            for candidate in entry.component.versions:
                source = candidate.source.image if candidate.source else None
                if source and source.split("@")[0].rsplit(":", 1)[0] == repository and candidate.provides:
                    return [f"{p.name} {p.version}" for p in candidate.provides]
        return []


def _version_with_image(entry: CatalogEntry, image: str, stage: str) -> ComponentVersion | None:
    """Return the version that runs exactly `image` in `stage` and adds no files of its own."""
    for version in entry.component.versions:
        if version.stage == stage and version.source is not None and version.source.image == image:
            return None if version.files else version
    return None


def _override(version: ComponentVersion, settings: dict[str, Any]) -> dict[str, Any] | None:
    """Return the assembly override that turns the version's settings into `settings`.

    Returns None when no override can: a field of the component that the entry lacks,
    or an `.add` list that does not start with the component's items.
    """
    defaults = {key: parameter.default for key, parameter in version.parameters.items()
                if parameter.default is not None}
    current = substitute(version.config.to_linuxkit(), defaults) if version.config else {}
    if any(key not in settings for key in current):
        return None
    override = {}
    for key, value in settings.items():
        if current.get(key) == value:
            continue
        if key in EXTENDING_FIELDS and key in current:
            base = current[key]
            if value[: len(base)] != base or any(item in base for item in value[len(base):]):
                return None
            override[key] = value[len(base):]
        else:
            override[key] = value
    return override


def _version_from_tag(image: str) -> str:
    """Use an image tag that is a semantic version (`v1.2.0`, `6.6.71`) as the version, else 0.0.0."""
    tag = image.split("@")[0].rsplit("/", 1)[-1].partition(":")[2]
    try:
        return str(Version.parse(tag))
    except InvalidVersion:
        return "0.0.0"


def differences(original: dict[str, Any], composed: dict[str, Any]) -> list[str]:
    """List how two LinuxKit configs differ in what they build; service order does not count."""
    found = []
    if _kernel_settings(original) != _kernel_settings(composed):
        found.append("kernel differs")
    for key in ("onboot", "onshutdown", "volumes"):
        if original.get(key) != composed.get(key):
            found.append(f"{key} differs")
    if list(dict.fromkeys(original.get("init", []))) != composed.get("init", []):
        found.append("init differs")
    services = [sorted(c.get("services", []), key=lambda s: s["name"]) for c in (original, composed)]
    if services[0] != services[1]:
        found.append("services differ")
    files = [sorted(c.get("files", []), key=lambda f: f["path"]) for c in (original, composed)]
    if files[0] != files[1]:
        found.append("files differ")
    return found


def _kernel_settings(config: dict[str, Any]) -> dict[str, Any] | None:
    """Return the kernel section with LinuxKit's defaults filled in, or None without a kernel."""
    if "kernel" not in config:
        return None
    defaults = KernelSettings().model_dump(exclude_none=True)
    return {**defaults, **config["kernel"]}
