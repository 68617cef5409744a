"""Build a container's OCI runtime config (`config.json`) and LinuxKit `runtime.json`.

Each setting comes from the container's entry in the config, else from the image label
`org.mobyproject.config` (JSON with the same field names), else from the image config
(entrypoint and cmd, env, working directory), else from LinuxKit's default. A list or
boolean set in the entry replaces the label's even when it is empty; an empty string
counts as unset. `binds.add` and `capabilities.add` extend the label's lists, and an entry
`binds` or `capabilities` replaces both. Facts from LinuxKit's `ConfigToOCI`
(src/cmd/linuxkit/moby/config.go, v1.x). Like LinuxKit, the image config's `User` is not
used: the process runs as uid and gid 0 unless `uid` or `gid` is set.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from moby_asm.builders.errors import InvalidBuildConfig

LABEL = "org.mobyproject.config"

OCI_VERSION = "1.0.2"
"""The runtime-spec version LinuxKit writes (it builds with runtime-spec v1.0.2); runc 1.1 reads it."""

ALL_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)  # fmt: skip
"""Linux capabilities 0 to 40 in number order, the list `capabilities: [all]` expands to."""

_RLIMIT_NAMES = "CPU FSIZE DATA STACK CORE RSS NPROC NOFILE MEMLOCK AS LOCKS SIGPENDING MSGQUEUE NICE RTPRIO RTTIME"
RLIMITS = frozenset(f"RLIMIT_{name}" for name in _RLIMIT_NAMES.split())
UNLIMITED = 2**64 - 1

_DEFAULT_MOUNT_TYPES = {"mqueue", "devpts", "proc", "sysfs", "cgroup"}
_DEFAULT_MOUNTPOINTS = {
    "proc": "/proc",
    "devpts": "/dev/pts",
    "sysfs": "/sys",
    "cgroup": "/sys/fs/cgroup",
    "mqueue": "/dev/mqueue",
}
_RESOURCE_KEYS = {"blockio": "blockIO"}
"""Resource fields whose config name differs from the OCI JSON name."""


@dataclass(frozen=True)
class BundleConfig:
    """`config.json` and `runtime.json` contents of one container, before rootfs mounts are added."""

    spec: dict[str, Any]
    runtime: dict[str, Any]
    readonly: bool


class Settings:
    """The container's config entry and its image's label, which `value` reads in that order."""

    def __init__(self, entry: Mapping[str, Any], label: Mapping[str, Any], where: str):
        self.entry = entry
        self.label = label
        self.where = where

    def value(self, key: str, default: Any = None) -> Any:
        for source in (self.entry, self.label):
            if source.get(key) is not None:
                return copy.deepcopy(source[key])
        return default

    def string(self, key: str, default: str = "") -> str:
        """Return the first non-empty string, because LinuxKit treats '' as unset."""
        for source in (self.entry, self.label):
            if source.get(key):
                return source[key]
        return default

    def merged(self, key: str) -> list[Any]:
        """Return `key` from the entry, else the label's list followed by the entry's `key.add`."""
        if self.entry.get(key) is not None:
            return list(self.entry[key])
        return list(self.label.get(key) or []) + list(self.entry.get(f"{key}.add") or [])

    def fail(self, reason: str) -> InvalidBuildConfig:
        return InvalidBuildConfig(self.where, reason)


def read_label(image_config: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Return the image's `org.mobyproject.config` label as a dict, or {} when it has none.

    LinuxKit parses the label as YAML, of which JSON is a subset, and checks it against
    the schema of a container entry without `name` and `image`.
    """
    labels = (image_config.get("config") or {}).get("Labels") or {}
    text = labels.get(LABEL)
    if not text:
        return {}
    try:
        label = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InvalidBuildConfig(where, f"the image label {LABEL} is not valid JSON or YAML: {error}") from None
    if not isinstance(label, dict):
        raise InvalidBuildConfig(where, f"the image label {LABEL} must be a JSON object")
    for key in ("name", "image"):
        if key in label:
            raise InvalidBuildConfig(where, f"the image label {LABEL} must not set {key!r}")
    _check_label_schema(label, where)
    return label


def _check_label_schema(label: dict[str, Any], where: str) -> None:
    from moby_asm.linuxkit import check_config

    problems = check_config({"services": [{"name": "label", "image": "label", **label}]})
    if problems:
        raise InvalidBuildConfig(where, f"the image label {LABEL} is invalid: {'; '.join(problems)}")


def make_bundle_config(
    entry: Mapping[str, Any], image_config: Mapping[str, Any], ids: Mapping[str, int], where: str
) -> BundleConfig:
    """Return the OCI runtime config and runtime.json of the container `entry`.

    `ids` maps container names to the uid and gid LinuxKit allocates them.
    `where` names the entry in errors, such as `onboot[0] (dhcpcd)`.
    """
    settings = Settings(entry, read_label(image_config, where), where)
    readonly = bool(settings.value("readonly", False))
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": _process(settings, image_config.get("config") or {}, ids),
        "root": {"path": "rootfs", **({"readonly": True} if readonly else {})},
        "mounts": _mounts(settings, readonly),
        "linux": _linux(settings),
    }
    hostname = settings.string("hostname")
    if hostname:
        spec["hostname"] = hostname
    annotations = settings.value("annotations", {})
    if annotations:
        spec["annotations"] = annotations
    return BundleConfig(spec, _runtime(settings), readonly)


# The process


def _process(settings: Settings, image: Mapping[str, Any], ids: Mapping[str, int]) -> dict[str, Any]:
    image_args = list(image.get("Entrypoint") or []) + list(image.get("Cmd") or [])
    process: dict[str, Any] = {
        "user": _user(settings, ids),
        "cwd": settings.string("cwd") or image.get("WorkingDir") or "/",
        "capabilities": _capabilities(settings),
    }
    _set_if(process, "args", settings.value("command", image_args))
    _set_if(process, "env", settings.value("env", list(image.get("Env") or [])))
    _set_if(process, "rlimits", _rlimits(settings))
    _set_if(process, "noNewPrivileges", bool(settings.value("noNewPrivileges", False)))
    oom_score_adj = settings.value("oomScoreAdj")
    if oom_score_adj is not None:
        process["oomScoreAdj"] = oom_score_adj
    return process


def _set_if(target: dict[str, Any], key: str, value: Any) -> None:
    """Set `key` unless `value` is empty, as Go's `omitempty` leaves such fields out."""
    if value:
        target[key] = value


def resolve_id(value: Any, ids: Mapping[str, int], field: str) -> int:
    """Return the numeric uid or gid of `value`: a number, '' or 'root' (0), or a container name.

    Raise ValueError with a message that names `field` when `value` is neither.
    """
    if value is None or value in ("", "root"):
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value in ids:
        return ids[value]
    raise ValueError(f"{field} {value!r} is neither a number nor the name of a container")


def _user(settings: Settings, ids: Mapping[str, int]) -> dict[str, Any]:
    try:
        user: dict[str, Any] = {
            "uid": resolve_id(settings.value("uid"), ids, "uid"),
            "gid": resolve_id(settings.value("gid"), ids, "gid"),
        }
        groups = [resolve_id(group, ids, "additional gid") for group in settings.value("additionalGids", [])]
    except ValueError as error:
        raise settings.fail(str(error)) from None
    _set_if(user, "additionalGids", groups)
    return user


def _capabilities(settings: Settings) -> dict[str, Any]:
    effective = _capability_list(settings, settings.merged("capabilities"))
    ambient = _capability_list(settings, settings.value("ambient", []))
    bounding = sorted(set(effective) | set(ambient))
    capabilities: dict[str, Any] = {}
    for key, value in (
        ("bounding", bounding),
        ("effective", effective),
        ("inheritable", bounding),
        ("permitted", bounding),
        ("ambient", ambient),
    ):
        _set_if(capabilities, key, value)
    return capabilities


def _capability_list(settings: Settings, names: list[str]) -> list[str]:
    """Expand a single `all` or `none`, check every name and drop duplicates."""
    if len(names) == 1 and names[0].lower() == "none":
        return []
    if len(names) == 1 and names[0].lower() == "all":
        return list(ALL_CAPABILITIES)
    unknown = [name for name in names if name not in ALL_CAPABILITIES]
    if unknown:
        hint = "; 'all' and 'none' must be the only entry" if any(n.lower() in ("all", "none") for n in unknown) else ""
        raise settings.fail(f"unknown capability {unknown[0]!r}; expected names such as CAP_NET_ADMIN{hint}")
    return list(dict.fromkeys(names))


def _rlimits(settings: Settings) -> list[dict[str, Any]]:
    limits = []
    for text in settings.value("rlimits", []):
        parts = [part.strip() for part in text.split(",", 2)]
        if len(parts) != 3:
            raise settings.fail(f"invalid rlimit {text!r}; expected NAME,SOFT,HARD such as nofile,1024,4096")
        name = parts[0].upper()
        name = name if name.startswith("RLIMIT_") else f"RLIMIT_{name}"
        if name not in RLIMITS:
            raise settings.fail(f"unknown rlimit {parts[0]!r} in {text!r}")
        soft, hard = (_rlimit_value(settings, part, text) for part in parts[1:])
        limits.append({"type": name, "soft": soft, "hard": hard})
    return limits


def _rlimit_value(settings: Settings, text: str, rlimit: str) -> int:
    if text.lower() == "unlimited":
        return UNLIMITED
    if text.isdigit() and int(text) <= UNLIMITED:
        return int(text)
    raise settings.fail(f"invalid limit {text!r} in rlimit {rlimit!r}; expected a number or 'unlimited'")


# Mounts


def default_mounts(readonly: bool) -> dict[str, dict[str, Any]]:
    """Return LinuxKit's default mounts by destination. With `readonly`, /dev and /sys are read-only."""
    read_only = ["ro"] if readonly else []
    return {
        "/proc": _mount("/proc", "proc", "proc", ["nosuid", "nodev", "noexec", "relatime"]),
        "/dev": _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k", *read_only]),
        "/dev/pts": _mount(
            "/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
        ),
        "/sys": _mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", *read_only]),
        "/sys/fs/cgroup": _mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime", "ro"]),
    }


def _mount(destination: str, type_: str = "", source: str = "", options: list[str] | None = None) -> dict[str, Any]:
    mount: dict[str, Any] = {"destination": destination}
    _set_if(mount, "type", type_)
    _set_if(mount, "source", source)
    _set_if(mount, "options", list(options or []))
    return mount


def _mounts(settings: Settings, readonly: bool) -> list[dict[str, Any]]:
    mounts = default_mounts(readonly)
    for text in settings.value("tmpfs", []):
        destination, _, options = text.partition(":")
        if ":" in options:
            raise settings.fail(f"invalid tmpfs {text!r}; expected DESTINATION[:OPTIONS]")
        mounts[destination] = _mount(destination, "tmpfs", "tmpfs", options.split(",") if options else [])
    for text in settings.merged("binds"):
        mount = parse_bind(text, settings)
        mounts[mount["destination"]] = mount
    for mount in settings.value("mounts", []):
        converted = _convert_mount(mount, settings)
        mounts[converted["destination"]] = converted
    return [mounts[destination] for destination in sorted(mounts)]


def parse_bind(text: str, settings: Settings) -> dict[str, Any]:
    """Return the bind mount of `SOURCE:DESTINATION[:OPTIONS]`, which is rw,rbind,rshared without options."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise settings.fail(f"invalid bind {text!r}; expected SOURCE:DESTINATION[:OPTIONS]")
    options = [*parts[2].split(","), "rbind"] if len(parts) == 3 else ["rw", "rbind", "rshared"]
    return _mount(parts[1], "bind", parts[0], options)


def _convert_mount(mount: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """Fill in a mount's type, source and destination the way LinuxKit does."""
    type_ = mount.get("type") or ""
    source = mount.get("source") or ""
    destination = mount.get("destination") or ""
    if not type_ and source in _DEFAULT_MOUNT_TYPES:
        type_ = source
    if not type_ and destination == "/dev":
        type_ = "tmpfs"
    if not type_:
        raise settings.fail(f"the mount for destination {destination!r} is missing its type")
    destination = destination or _DEFAULT_MOUNTPOINTS.get(type_, "")
    if not destination:
        raise settings.fail(f"the mount of type {type_!r} is missing its destination")
    converted = _mount(destination, type_, source or type_, mount.get("options"))
    for key, name in (("uidmappings", "uidMappings"), ("gidmappings", "gidMappings")):
        _set_if(converted, name, mount.get(key) or mount.get(name))
    return converted


# Namespaces, resources and devices


def _namespaces(settings: Settings) -> list[dict[str, Any]]:
    """Return the namespaces in LinuxKit's order: net, ipc, uts, pid, user, then mount and cgroup.

    net, ipc, uts and user default to the host's and pid to a new one. A value is `host`
    (or `root`), `new`, `none` or the path of a namespace to join. LinuxKit treats `none`
    as new only for net; here it is new for every type, because a path `none` cannot work.
    """
    namespaces = []
    for key, type_, default in (
        ("net", "network", "host"),
        ("ipc", "ipc", "host"),
        ("uts", "uts", "host"),
        ("pid", "pid", "new"),
        ("userns", "user", "host"),
    ):
        value = settings.string(key, default)
        if value in ("host", "root"):
            continue
        namespaces.append({"type": type_, **({} if value in ("new", "none") else {"path": value})})
    namespaces.append({"type": "mount"})
    namespaces.append({"type": "cgroup"})
    return namespaces


def _linux(settings: Settings) -> dict[str, Any]:
    resources = _resources(settings.value("resources", {}))
    devices = _devices(settings, resources)
    linux: dict[str, Any] = {"namespaces": _namespaces(settings), "resources": resources}
    for key in ("uidMappings", "gidMappings", "sysctl", "maskedPaths", "readonlyPaths"):
        _set_if(linux, key, settings.value(key))
    for key in ("cgroupsPath", "rootfsPropagation"):
        _set_if(linux, key, settings.value(key, ""))
    _set_if(linux, "devices", devices)
    return linux


def _resources(resources: Mapping[str, Any]) -> dict[str, Any]:
    return {_RESOURCE_KEYS.get(key, key): value for key, value in resources.items()}


def _devices(settings: Settings, resources: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the devices to create, and allow each of them (and each `path: all` type) in `resources`."""
    devices = []
    rules = resources.setdefault("devices", [])
    for device in settings.value("devices", []):
        type_ = device.get("type", "")
        if device.get("path") == "all":
            rules.append({"allow": True, "type": type_, "access": "rwm"})
            continue
        mode_text = str(device.get("mode", ""))
        if not mode_text or any(digit not in "01234567" for digit in mode_text):
            raise settings.fail(f'device {device.get("path")!r} needs an octal mode such as "0666"')
        major, minor = device.get("major", 0), device.get("minor", 0)
        devices.append(
            {
                "path": device.get("path", ""),
                "type": type_,
                "major": major,
                "minor": minor,
                "fileMode": int(mode_text, 8),
            }
        )
        rules.append({"allow": True, "type": type_, "major": major, "minor": minor, "access": "rwm"})
    if not rules:
        del resources["devices"]
    return devices


# runtime.json


def _runtime(settings: Settings) -> dict[str, Any]:
    """Return runtime.json's fields, each from the entry's `runtime`, else the label's, else empty."""
    entry = settings.entry.get("runtime") or {}
    label = settings.label.get("runtime") or {}
    runtime_settings = Settings(entry, label, settings.where)
    bind_ns = Settings(entry.get("bindNS") or {}, label.get("bindNS") or {}, settings.where)
    return {
        "cgroups": runtime_settings.value("cgroups", []),
        "mounts": [_runtime_mount(mount) for mount in runtime_settings.value("mounts", [])],
        "mkdir": runtime_settings.value("mkdir", []),
        "interfaces": [_interface(interface) for interface in runtime_settings.value("interfaces", [])],
        "bindNS": {key: bind_ns.value(key, "") for key in ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")},
        "namespace": runtime_settings.value("namespace", ""),
    }


def _runtime_mount(mount: Mapping[str, Any]) -> dict[str, Any]:
    return _mount(mount.get("destination", ""), mount.get("type", ""), mount.get("source", ""), mount.get("options"))


def _interface(interface: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"createInRoot": bool(interface.get("createInRoot", False))}
    for key in ("name", "add", "peer"):
        _set_if(converted, key, interface.get(key, ""))
    return converted


def rootfs_mounts(prefix: str, root: str, readonly: bool) -> list[dict[str, Any]]:
    """Return the mounts LinuxKit's init makes before it starts a bundle at `prefix`.

    `root` is where the image is unpacked: `prefix/rootfs`, `prefix/lower`, or the folder
    of an earlier bundle of the same image. A writable container gets an overlay of a
    tmpfs over the image, a read-only one a bind mount of the image.
    """
    if readonly:
        return [_mount(f"/{prefix}/rootfs", "", f"/{root}", ["bind"])]
    tmp = f"/{prefix}/tmp"
    overlay_options = [f"lowerdir=/{root}", f"upperdir={tmp}/upper", f"workdir={tmp}/work"]
    return [
        _mount(tmp, "tmpfs", "tmpfs"),
        _mount(tmp, "", "", ["remount", "private"]),
        _mount(f"/{prefix}/rootfs", "overlay", "overlay", overlay_options),
    ]


def to_json(value: Any) -> bytes:
    """Encode `value` as LinuxKit does (4-space indent, no final newline) but with sorted keys."""
    return json.dumps(value, indent=4, sort_keys=True).encode()
