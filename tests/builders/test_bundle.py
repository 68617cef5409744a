"""config.json and runtime.json: defaults, precedence of entry, label and image, and invalid values."""

from __future__ import annotations

import json

import pytest

from moby_asm.builders.errors import InvalidBuildConfig
from moby_asm.builders.native.bundle import ALL_CAPABILITIES, UNLIMITED, make_bundle_config, rootfs_mounts
from moby_asm.builders.native.volumes import apply_volumes

IDS = {"dhcpcd": 100, "sshd": 101}


def image_config(label: dict | None = None, **config) -> dict:
    settings = {"Entrypoint": None, "Cmd": None, "Env": None, "WorkingDir": "", **config}
    if label is not None:
        settings["Labels"] = {"org.mobyproject.config": json.dumps(label)}
    return {"architecture": "amd64", "os": "linux", "config": settings}


def spec_of(entry: dict, image: dict | None = None) -> dict:
    return make_bundle_config({"name": "c", "image": "i", **entry}, image or image_config(), IDS, "onboot[0] (c)").spec


def mounts_by_destination(spec: dict) -> dict[str, dict]:
    return {mount["destination"]: mount for mount in spec["mounts"]}


def test_defaults_match_linuxkit():
    spec = spec_of({})

    assert spec["ociVersion"] == "1.0.2"
    assert spec["root"] == {"path": "rootfs"}
    assert spec["process"]["user"] == {"uid": 0, "gid": 0}
    assert spec["process"]["cwd"] == "/"
    assert spec["process"]["capabilities"] == {}
    assert spec["linux"]["namespaces"] == [{"type": "pid"}, {"type": "mount"}, {"type": "cgroup"}]
    assert [mount["destination"] for mount in spec["mounts"]] == ["/dev", "/dev/pts", "/proc", "/sys", "/sys/fs/cgroup"]
    assert mounts_by_destination(spec)["/sys/fs/cgroup"]["options"][-1] == "ro"
    assert "ro" not in mounts_by_destination(spec)["/sys"]["options"]
    assert "maskedPaths" not in spec["linux"]
    assert "hostname" not in spec


def test_readonly_dev_and_sys_mounts():
    spec = spec_of({"readonly": True})

    assert spec["root"] == {"path": "rootfs", "readonly": True}
    assert mounts_by_destination(spec)["/dev"]["options"][-1] == "ro"
    assert mounts_by_destination(spec)["/sys"]["options"][-1] == "ro"


def test_image_config_command_env_cwd():
    image = image_config(Entrypoint=["/usr/bin/app"], Cmd=["--serve"], Env=["PATH=/usr/bin"], WorkingDir="/srv")
    process = spec_of({}, image)["process"]

    assert process["args"] == ["/usr/bin/app", "--serve"]
    assert process["env"] == ["PATH=/usr/bin"]
    assert process["cwd"] == "/srv"


def test_precedence_entry_label_image():
    label = {"command": ["/label"], "env": ["FROM=label"], "cwd": "/label", "hostname": "label-host"}
    image = image_config(label, Cmd=["/image"], Env=["FROM=image"], WorkingDir="/image")

    from_label = spec_of({}, image)
    from_entry = spec_of({"command": ["/entry"], "cwd": "/entry"}, image)

    assert from_label["process"]["args"] == ["/label"]
    assert from_label["process"]["env"] == ["FROM=label"]
    assert from_label["process"]["cwd"] == "/label"
    assert from_label["hostname"] == "label-host"
    assert from_entry["process"]["args"] == ["/entry"]
    assert from_entry["process"]["cwd"] == "/entry"
    assert from_entry["process"]["env"] == ["FROM=label"]


def test_empty_entry_list_replaces_label():
    image = image_config({"env": ["A=1"], "capabilities": ["CAP_NET_ADMIN"]})
    spec = spec_of({"env": [], "capabilities": []}, image)

    assert "env" not in spec["process"]
    assert spec["process"]["capabilities"] == {}


def test_image_user_not_used():
    spec = spec_of({}, image_config(User="nobody"))

    assert spec["process"]["user"] == {"uid": 0, "gid": 0}


def test_bind_without_options_gets_rshared():
    mount = mounts_by_destination(spec_of({"binds": ["/var:/var"]}))["/var"]

    assert mount == {"destination": "/var", "type": "bind", "source": "/var", "options": ["rw", "rbind", "rshared"]}


def test_bind_with_options_adds_rbind():
    mount = mounts_by_destination(spec_of({"binds": ["/etc/ssl:/etc/ssl:ro"]}))["/etc/ssl"]

    assert mount["options"] == ["ro", "rbind"]


def test_binds_add_and_binds_replace():
    image = image_config({"binds": ["/lib/modules:/lib/modules"]})

    extended = mounts_by_destination(spec_of({"binds.add": ["/data:/data"]}, image))
    replaced = mounts_by_destination(spec_of({"binds": ["/data:/data"], "binds.add": ["/x:/x"]}, image))

    assert {"/lib/modules", "/data"} <= set(extended)
    assert "/data" in replaced
    assert "/lib/modules" not in replaced
    assert "/x" not in replaced


def test_mounts_sorted_and_override_defaults():
    entry = {"tmpfs": ["/run:size=10m"], "mounts": [{"type": "proc", "destination": "/proc", "options": ["ro"]}]}
    spec = spec_of(entry)
    destinations = [mount["destination"] for mount in spec["mounts"]]

    assert destinations == sorted(destinations)
    assert mounts_by_destination(spec)["/run"] == {
        "destination": "/run",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["size=10m"],
    }
    assert mounts_by_destination(spec)["/proc"]["options"] == ["ro"]


def test_mount_defaults_type_and_destination():
    spec = spec_of({"mounts": [{"source": "mqueue"}]})

    assert mounts_by_destination(spec)["/dev/mqueue"] == {
        "destination": "/dev/mqueue",
        "type": "mqueue",
        "source": "mqueue",
    }


def test_mount_without_type_rejected():
    with pytest.raises(InvalidBuildConfig) as raised:
        spec_of({"mounts": [{"source": "/x", "destination": "/y"}]})

    assert "missing its type" in str(raised.value)
    assert raised.value.where == "onboot[0] (c)"


def test_capabilities_add_extends_label():
    image = image_config({"capabilities": ["CAP_NET_ADMIN"]})
    capabilities = spec_of({"capabilities.add": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]}, image)["process"]["capabilities"]

    assert capabilities["effective"] == ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]
    assert capabilities["bounding"] == ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]
    assert capabilities["permitted"] == capabilities["inheritable"] == capabilities["bounding"]


def test_capabilities_all_and_none():
    everything = spec_of({"capabilities": ["all"]})["process"]["capabilities"]
    nothing = spec_of({"capabilities": ["NONE"]}, image_config({"capabilities": ["CAP_KILL"]}))["process"][
        "capabilities"
    ]

    assert everything["effective"] == list(ALL_CAPABILITIES)
    assert everything["bounding"] == sorted(ALL_CAPABILITIES)
    assert len(ALL_CAPABILITIES) == 41
    assert nothing == {}


def test_ambient_capabilities_join_bounding_set():
    capabilities = spec_of({"capabilities": ["CAP_KILL"], "ambient": ["CAP_NET_RAW"]})["process"]["capabilities"]

    assert capabilities["ambient"] == ["CAP_NET_RAW"]
    assert capabilities["bounding"] == ["CAP_KILL", "CAP_NET_RAW"]
    assert capabilities["effective"] == ["CAP_KILL"]


@pytest.mark.parametrize("names", [["CAP_NOPE"], ["net_admin"], ["all", "CAP_KILL"]])
def test_unknown_capability_rejected(names):
    with pytest.raises(InvalidBuildConfig) as raised:
        spec_of({"capabilities": names})

    assert "unknown capability" in str(raised.value)


def test_namespaces_from_settings():
    entry = {"net": "new", "ipc": "/run/ipc", "uts": "host", "pid": "host", "userns": "new"}
    namespaces = spec_of(entry)["linux"]["namespaces"]

    assert namespaces == [
        {"type": "network"},
        {"type": "ipc", "path": "/run/ipc"},
        {"type": "user"},
        {"type": "mount"},
        {"type": "cgroup"},
    ]


def test_uid_gid_by_container_name():
    user = spec_of({"uid": "sshd", "gid": "dhcpcd", "additionalGids": [5, "sshd", "root"]})["process"]["user"]

    assert user == {"uid": 101, "gid": 100, "additionalGids": [5, 101, 0]}


def test_unknown_uid_name_rejected():
    with pytest.raises(InvalidBuildConfig) as raised:
        spec_of({"uid": "nobody"})

    assert "'nobody'" in str(raised.value)


def test_rlimits_parsed():
    rlimits = spec_of({"rlimits": ["nofile,1024,4096", "RLIMIT_CORE, unlimited ,unlimited"]})["process"]["rlimits"]

    assert rlimits == [
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096},
        {"type": "RLIMIT_CORE", "soft": UNLIMITED, "hard": UNLIMITED},
    ]


@pytest.mark.parametrize("text", ["nofile,1024", "bogus,1,2", "nofile,lots,2"])
def test_invalid_rlimit_rejected(text):
    with pytest.raises(InvalidBuildConfig):
        spec_of({"rlimits": [text]})


def test_devices_allowed_in_cgroup():
    entry = {
        "devices": [
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "mode": "0666"},
            {"path": "all", "type": "b"},
        ]
    }
    linux = spec_of(entry)["linux"]

    assert linux["devices"] == [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666}]
    assert linux["resources"]["devices"] == [
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
        {"allow": True, "type": "b", "access": "rwm"},
    ]


def test_linux_settings_passed_through():
    entry = {
        "sysctl": {"net.ipv4.ip_forward": "1"},
        "maskedPaths": ["/proc/kcore"],
        "readonlyPaths": ["/proc/sys"],
        "cgroupsPath": "podruntime/c",
        "rootfsPropagation": "shared",
        "resources": {"memory": {"limit": 1048576}, "blockio": {"weight": 10}},
        "oomScoreAdj": 0,
        "noNewPrivileges": True,
        "annotations": {"a": "b"},
    }
    spec = spec_of(entry)

    assert spec["linux"]["sysctl"] == {"net.ipv4.ip_forward": "1"}
    assert spec["linux"]["maskedPaths"] == ["/proc/kcore"]
    assert spec["linux"]["readonlyPaths"] == ["/proc/sys"]
    assert spec["linux"]["cgroupsPath"] == "podruntime/c"
    assert spec["linux"]["rootfsPropagation"] == "shared"
    assert spec["linux"]["resources"] == {"memory": {"limit": 1048576}, "blockIO": {"weight": 10}}
    assert spec["process"]["oomScoreAdj"] == 0
    assert spec["process"]["noNewPrivileges"] is True
    assert spec["annotations"] == {"a": "b"}


def test_runtime_defaults_and_label_merge():
    label = {"runtime": {"mkdir": ["/var/lib/x"], "bindNS": {"net": "/run/netns/label"}}}
    entry = {"runtime": {"bindNS": {"ipc": "/run/ipc"}, "interfaces": [{"name": "eth1", "add": "veth", "peer": "p"}]}}
    runtime = make_bundle_config(
        {"name": "c", "image": "i", **entry}, image_config(label), IDS, "services[0] (c)"
    ).runtime

    assert runtime["mkdir"] == ["/var/lib/x"]
    assert runtime["cgroups"] == []
    assert runtime["mounts"] == []
    assert runtime["namespace"] == ""
    assert runtime["interfaces"] == [{"name": "eth1", "add": "veth", "peer": "p", "createInRoot": False}]
    assert runtime["bindNS"] == {
        "cgroup": "",
        "ipc": "/run/ipc",
        "mnt": "",
        "net": "/run/netns/label",
        "pid": "",
        "user": "",
        "uts": "",
    }


def test_label_with_name_rejected():
    with pytest.raises(InvalidBuildConfig) as raised:
        spec_of({}, image_config({"name": "x"}))

    assert "must not set 'name'" in str(raised.value)


def test_label_with_unknown_field_rejected():
    with pytest.raises(InvalidBuildConfig) as raised:
        spec_of({}, image_config({"capabilitis": ["CAP_KILL"]}))

    assert "org.mobyproject.config" in str(raised.value)


def test_rootfs_mounts_per_mode():
    writable = rootfs_mounts("containers/services/sshd", "containers/services/sshd/lower", readonly=False)
    read_only = rootfs_mounts("containers/onboot/000-x", "containers/onboot/000-x/rootfs", readonly=True)

    assert writable[2] == {
        "destination": "/containers/services/sshd/rootfs",
        "type": "overlay",
        "source": "overlay",
        "options": [
            "lowerdir=/containers/services/sshd/lower",
            "upperdir=/containers/services/sshd/tmp/upper",
            "workdir=/containers/services/sshd/tmp/work",
        ],
    }
    assert read_only == [
        {
            "destination": "/containers/onboot/000-x/rootfs",
            "source": "/containers/onboot/000-x/rootfs",
            "options": ["bind"],
        }
    ]


def test_volume_binds_point_at_merged_folder():
    volumes = {"data": {"name": "data"}, "keys": {"name": "keys", "readonly": True}}
    entry = {
        "binds": ["data:/data", "keys:/keys:ro", "/etc:/etc"],
        "mounts": [{"type": "bind", "source": "data", "destination": "/m"}],
    }
    updated = apply_volumes(entry, volumes, "services[0] (c)")

    assert updated["binds"] == [
        "/containers/volumes/data/merged:/data",
        "/containers/volumes/keys/merged:/keys:ro",
        "/etc:/etc",
    ]
    assert updated["mounts"][0]["source"] == "/containers/volumes/data/merged"


@pytest.mark.parametrize("bind", ["keys:/keys", "missing:/m"])
def test_invalid_volume_bind_rejected(bind):
    with pytest.raises(InvalidBuildConfig):
        apply_volumes({"binds": [bind]}, {"keys": {"name": "keys", "readonly": True}}, "services[0] (c)")
