"""Generate a synthetic catalog of valid component descriptors for the benchmarks.

The generator is seeded, so the same seed and count write the same files. Each
descriptor has one to five versions with requires, provides, parameters and a
container config (capabilities, binds, env, mounts), like the shipped descriptors.
About one in ten is written as `NAME/component.yml`, the rest as `NAME.yml`.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import yaml

WORDS = (
    "net", "disk", "log", "metrics", "proxy", "agent", "sync", "dns", "ntp", "ssh",
    "audit", "vpn", "store", "queue", "cache", "mesh", "backup", "probe", "shell", "gate",
)
CONTAINER_STAGES = ("onboot", "service", "service", "service", "onshutdown")
CAPABILITIES = ("CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_SETUID", "CAP_SETGID",
                "CAP_DAC_OVERRIDE", "CAP_NET_BIND_SERVICE", "CAP_SYS_TIME", "CAP_KILL")
BIND_SOURCES = ("/etc/resolv.conf", "/var/log", "/run", "/var/lib", "/etc/ssl/certs", "/dev")
PARAMETER_TYPES = ("string", "integer", "boolean", "list")
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

BACKDATE_SECONDS = 3600
"""Age given to the generated files. The catalog index stores only files modified more
than a few seconds before a load, so freshly written files would never come from it."""


def component_names(count: int) -> list[str]:
    """Return `count` distinct valid component names, such as `net-proxy-00042`."""
    return [f"{WORDS[i % len(WORDS)]}-{WORDS[(i // len(WORDS)) % len(WORDS)]}-{i:05d}" for i in range(count)]


def write_catalog(folder: Path, count: int, seed: int = 1) -> list[Path]:
    """Write `count` descriptors into `folder` and return their paths."""
    rng = random.Random(seed)
    names = component_names(count)
    paths = []
    old = time.time() - BACKDATE_SECONDS
    for name in names:
        path = _descriptor_path(folder, name, rng)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.dump(_descriptor(name, names, rng), Dumper=DUMPER, sort_keys=False, default_flow_style=False)
        path.write_text(text, encoding="utf-8")
        os.utime(path, (old, old))
        paths.append(path)
    return paths


def _descriptor_path(folder: Path, name: str, rng: random.Random) -> Path:
    if rng.random() < 0.1:
        return folder / name / "component.yml"
    return folder / f"{name}.yml"


def _descriptor(name: str, names: list[str], rng: random.Random) -> dict[str, Any]:
    releases = sorted({(rng.randint(0, 3), rng.randint(0, 12), rng.randint(0, 9)) for _ in range(rng.randint(1, 5))})
    stage = rng.choice(CONTAINER_STAGES)
    return {
        "name": name,
        "description": f"Synthetic {name.split('-')[0]} component number {name[-5:]}",
        "labels": {"license": "Apache-2.0", "homepage": f"https://example.org/{name}"},
        "versions": [_version(name, names, stage, release, rng) for release in releases],
    }


def _version(name: str, names: list[str], stage: str, release: tuple[int, int, int],
             rng: random.Random) -> dict[str, Any]:
    text = "{}.{}.{}".format(*release)
    version: dict[str, Any] = {
        "version": text,
        "stage": stage,
        "source": {"image": _image(name, text, rng)},
    }
    requires = [_requirement(rng.choice(names), rng) for _ in range(rng.randint(0, 4))]
    if requires:
        version["requires"] = requires
    if rng.random() < 0.5:
        version["provides"] = [f"{name.split('-')[0]}-api {release[0]}.{release[1]}.0"]
    parameters = _parameters(rng)
    if parameters:
        version["parameters"] = parameters
    version["config"] = _config(parameters, rng)
    return version


def _image(name: str, version: str, rng: random.Random) -> str:
    image = f"example/{name}:v{version}"
    if rng.random() < 0.3:
        image += "@sha256:" + "".join(rng.choice("0123456789abcdef") for _ in range(64))
    return image


def _requirement(target: str, rng: random.Random) -> Any:
    major = rng.randint(0, 3)
    ranges = (f"^{major}.1.0", f">={major}.0.0 <{major + 1}.0.0", f"~{major}.2", f"{major}.x", "")
    text = f"{target} {rng.choice(ranges)}".strip()
    if rng.random() < 0.1:
        name, _, range_text = text.partition(" ")
        return {"name": name, "range": range_text or "*", "optional": True}
    return text


def _parameters(rng: random.Random) -> dict[str, Any]:
    parameters = {}
    for index in range(rng.randint(0, 3)):
        kind = rng.choice(PARAMETER_TYPES)
        default = {"string": "info", "integer": 8080, "boolean": False, "list": ["a", "b"]}[kind]
        parameters[f"setting_{index}"] = {"type": kind, "default": default,
                                          "description": f"A {kind} setting of the component"}
    return parameters


def _config(parameters: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    config: dict[str, Any] = {
        "capabilities": rng.sample(CAPABILITIES, rng.randint(1, 4)),
        "binds": [f"{source}:{source}" for source in rng.sample(BIND_SOURCES, rng.randint(1, 3))],
        "env": [f"{key.upper()}=${{{key}}}" for key in parameters] or ["LOG_LEVEL=info"],
    }
    if rng.random() < 0.3:
        config["mounts"] = [{"destination": "/tmp", "type": "tmpfs", "options": ["nosuid", "nodev"]}]
    if rng.random() < 0.3:
        config["net"] = "host"
    if rng.random() < 0.2:
        config["readonly"] = True
    return config
