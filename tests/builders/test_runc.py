"""Generated bundles run under the real runc, read-only directly and writable on the overlay init mounts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.builders.helpers import BUSYBOX, build, standard_config

RUNC_TIMEOUT_SECONDS = 60

pytestmark = pytest.mark.skipif(
    shutil.which("runc") is None or os.geteuid() != 0 or not BUSYBOX.exists(),
    reason="needs runc, root and a static busybox at /bin/busybox",
)


def extract(tar: Path, target: Path) -> Path:
    with tarfile.open(tar) as archive:
        archive.extractall(target, filter="tar")
    return target


def run_bundle(bundle: Path, state: Path) -> subprocess.CompletedProcess:
    """Run the bundle with runc, keeping runc's state in `state`, and return the finished process."""
    container_id = f"moby-asm-test-{uuid.uuid4().hex[:12]}"
    command = ["runc", "--root", str(state), "run", "--bundle", str(bundle), container_id]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=RUNC_TIMEOUT_SECONDS, check=False)
    finally:
        subprocess.run(
            ["runc", "--root", str(state), "delete", "--force", container_id], capture_output=True, check=False
        )


@contextmanager
def runtime_mounts(root: Path, bundle: str) -> Iterator[None]:
    """Make the mounts of the bundle's runtime.json below `root`, as LinuxKit's init does at boot."""
    runtime = json.loads((root / bundle / "runtime.json").read_text())
    mounted: list[Path] = []
    try:
        for mount in runtime["mounts"]:
            destination = root / mount["destination"].lstrip("/")
            options = [_rooted_option(option, root) for option in mount.get("options", [])]
            if "remount" in options:
                subprocess.run(["mount", "--make-private", str(destination)], check=True, capture_output=True)
                continue
            subprocess.run(
                [
                    "mount",
                    "-t",
                    mount["type"],
                    "-o",
                    ",".join(options) or "defaults",
                    mount["source"],
                    str(destination),
                ],
                check=True,
                capture_output=True,
            )
            mounted.append(destination)
            if mount["type"] == "tmpfs":
                (destination / "upper").mkdir()
                (destination / "work").mkdir()
        yield
    finally:
        for destination in reversed(mounted):
            subprocess.run(["umount", str(destination)], check=False, capture_output=True)


def _rooted_option(option: str, root: Path) -> str:
    key, separator, value = option.partition("=")
    if separator and value.startswith("/"):
        return f"{key}={root}{value}"
    return option


def test_read_only_onboot_bundle_runs(images, tmp_path):
    build(images, standard_config(services=[]), tmp_path / "out", ["tar"])
    root = extract(tmp_path / "out" / "demo.tar", tmp_path / "root")

    result = run_bundle(root / "containers/onboot/000-hello", tmp_path / "runc-state")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello from onboot\n"


def test_writable_service_bundle_runs_on_overlay(images, tmp_path):
    service = {
        "name": "writer",
        "image": "example.org/busybox:1",
        "command": ["/bin/sh", "-c", "echo written > /note && cat /note"],
    }
    build(images, standard_config(onboot=[], services=[service]), tmp_path / "out", ["tar"])
    root = extract(tmp_path / "out" / "demo.tar", tmp_path / "root")
    bundle = "containers/services/writer"

    with runtime_mounts(root, bundle):
        result = run_bundle(root / bundle, tmp_path / "runc-state")
        assert (root / bundle / "tmp/upper/note").read_text() == "written\n"

    assert result.returncode == 0, result.stderr
    assert result.stdout == "written\n"
    assert not (root / bundle / "lower/note").exists(), "writes go to the overlay, not to the image"
