"""Validation of the `debian` source of a component: relations, paths and architectures."""

from __future__ import annotations

import pytest
import yaml
from debian_projects import component_descriptor
from pydantic import ValidationError

from moby_asm.debian.model import DebianSource

pytest_plugins = ["debian_fixtures"]

INVALID_SOURCES = {
    "unknown-operator": ({"packages": ["runc (~> 1.1)"]}, "packages", "cannot read 'runc (~> 1.1)'"),
    "uppercase-name": ({"packages": ["Runc"]}, "packages", "cannot read 'Runc'"),
    "missing-version": ({"packages": ["runc (>= )"]}, "packages", "cannot read 'runc (>= )'"),
    "comma-list": ({"packages": ["runc, libc6"]}, "packages", "'runc, libc6' names several packages"),
    "alternatives": ({"packages": ["runc | crun"]}, "packages", "'runc | crun' names several packages"),
    "no-packages": ({"packages": []}, "packages", "at least 1 item"),
    "parent-in-target": ({"paths": {"../etc/runc": "usr/sbin/runc"}}, "paths", "target path '../etc/runc'"),
    "parent-in-pattern": ({"paths": {"bin/runc": "usr/../sbin/runc"}}, "paths", "source pattern 'usr/../sbin/runc'"),
    "parent-in-list": ({"paths": {"bin/runc": ["usr/sbin/runc", ".."]}}, "paths", "source pattern '..'"),
    "absolute-target": ({"paths": {"/bin/runc": "usr/sbin/runc"}}, "paths", "target path '/bin/runc'"),
    "empty-part": ({"paths": {"bin//runc": "usr/sbin/runc"}}, "paths", "target path 'bin//runc'"),
    "unknown-architecture": ({"architecture": "amd65"}, "architecture", "unknown Debian architecture 'amd65'"),
    "platform-as-architecture": ({"architecture": "linux/amd64"}, "architecture",
                                 "unknown Debian architecture 'linux/amd64'"),
    "bad-exclude": ({"exclude": ["Not A Name"]}, "exclude", "'Not A Name' is not a Debian package name"),
    "unknown-key": ({"mirror": "http://127.0.0.1/debian"}, "mirror", "Extra inputs are not permitted"),
}


def source(**fields) -> DebianSource:
    return DebianSource(**{"suite": "bookworm", "packages": ["runc"], **fields})


@pytest.mark.parametrize("case", INVALID_SOURCES, ids=list(INVALID_SOURCES))
def test_invalid_source_rejected(case):
    fields, location, message = INVALID_SOURCES[case]

    with pytest.raises(ValidationError) as raised:
        source(**fields)

    errors = raised.value.errors()
    assert len(errors) == 1, errors
    assert errors[0]["loc"][0] == location
    assert message in errors[0]["msg"]


def test_valid_source_lists_requested_packages():
    valid = source(packages=["runc (>= 1.1.5)", "libseccomp2", "busybox-static (= 1:1.35.0-4+b3)"],
                   architecture="arm64", exclude=["libc6"], paths={"bin/runc": ["usr/sbin/runc", "usr/bin/*"]})

    requested = valid.requested()

    assert [item["name"] for item in requested] == ["runc", "libseccomp2", "busybox-static"]
    assert requested[0]["version"] == (">=", "1.1.5")
    assert requested[1]["version"] is None
    assert requested[2]["version"] == ("=", "1:1.35.0-4+b3")


def test_architecture_follows_platform():
    assert source().architecture_for("linux/arm64") == "arm64"
    assert source().architecture_for("linux/arm/v7") == "armhf"
    assert source(architecture="all").architecture_for("linux/amd64") == "all"


def test_validate_reports_positions(debian_cli, tmp_path):
    debian = {"suite": "bookworm", "packages": ["runc, libc6"], "architecture": "amd65",
              "paths": {"../etc": "usr/bin"}}
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(component_descriptor("bad", debian), sort_keys=False))
    lines = path.read_text().splitlines()

    result = debian_cli("validate", path, cwd=tmp_path)

    assert result.returncode == 2, result.stderr
    packages_line = next(number for number, line in enumerate(lines, 1) if "packages:" in line)
    assert f"bad.yml:{packages_line}:" in result.stderr
    assert "'runc, libc6' names several packages" in result.stderr
    assert "unknown Debian architecture 'amd65'" in result.stderr
    assert "target path '../etc'" in result.stderr
