"""`moby-asm run` boots real outputs under QEMU (TCG) and reports what happened on the console.

The debian-minimal example is built from the Debian archive of this machine's apt
sources, then booted: the run passes only when both its onboot container and its
service print their lines. Failures use the same kernel with small hand-made initrds: one
without an init (a kernel panic) and one whose init never prints the expected text.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from moby_asm.boot import QemuSettings, choose_accelerator
from moby_asm.boot.outputs import BootImage, NoBootImage, find_boot_image
from moby_asm.boot.qemu import kernel_arguments
from tests.compose.helpers import EXAMPLES_FOLDER, explain

ONBOOT_LINE = "hello-onboot: the onboot container ran"
SERVICE_LINE = "127.0.0.1:8080 answered: the service is up"
STEP_FAILED = "failed (exit"
BUILD_TIMEOUT_SECONDS = 900
BOOT_TIMEOUT_SECONDS = 240

needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                                reason="qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")


def moby_asm(*args: object, cwd: Path, env: dict[str, str] | None = None, timeout: float = BOOT_TIMEOUT_SECONDS + 60):
    environment = {key: value for key, value in os.environ.items() if key != "MOBY_ASM_CATALOG_PATH"}
    environment.update({"NO_COLOR": "1", "COLUMNS": "400", **(env or {})})
    return subprocess.run([sys.executable, "-m", "moby_asm", *map(str, args)], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def debian_minimal(tmp_path_factory) -> tuple[Path, Path]:
    """Return a copy of the debian-minimal project and the output folder of its kernel+initrd build."""
    root = tmp_path_factory.mktemp("debian-minimal")
    project = root / "project"
    shutil.copytree(EXAMPLES_FOLDER / "debian-minimal", project, ignore=shutil.ignore_patterns("dist", "build"))
    result = moby_asm("build", project, "-o", root / "dist", cwd=root, timeout=BUILD_TIMEOUT_SECONDS)
    assert result.returncode == 0, explain(result)
    return project, root / "dist"


@pytest.fixture
def kernel_only(debian_minimal, tmp_path) -> Callable:
    """Return a maker of NAME-kernel/NAME-initrd.img pairs using the example's kernel and a given /init."""
    _, dist = debian_minimal

    def make(init: str | None) -> Path:
        tree = tmp_path / "tree"
        (tree / "bin").mkdir(parents=True)
        shutil.copy(shutil.which("busybox"), tree / "bin" / "busybox")
        if init is not None:
            (tree / "init").write_text(init)
            (tree / "init").chmod(0o755)
        files = "\n".join(str(path.relative_to(tree)) for path in sorted(tree.rglob("*"))) + "\n"
        archive = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=tree, input=files.encode(),
                                 capture_output=True, check=True).stdout
        folder = tmp_path / "out"
        folder.mkdir()
        shutil.copy(dist / "debian-minimal-kernel", folder / "bare-kernel")
        (folder / "bare-initrd.img").write_bytes(archive)
        (folder / "bare-cmdline").write_text("console=ttyS0\n")
        return folder / "bare-kernel"

    return make


def running_qemu(kernel: Path) -> list[str]:
    """Return the QEMU processes that boot `kernel`."""
    found = subprocess.run(["pgrep", "-f", f"qemu-system.*{kernel}"], capture_output=True, text=True, check=False)
    return found.stdout.split()


@needs_qemu
def test_debian_minimal_runs_onboot_container_and_service(debian_minimal):
    project, dist = debian_minimal
    result = moby_asm("run", project, "-o", dist, "--expect", ONBOOT_LINE, "--expect", SERVICE_LINE,
                      "--fail-on", STEP_FAILED, "--timeout", BOOT_TIMEOUT_SECONDS, cwd=project)
    assert result.returncode == 0, explain(result)
    assert "2 of 2 expected texts shown after" in result.stderr
    log = (dist / "debian-minimal-console.log").read_text(errors="replace")
    for step in ("mount system filesystems: ok", "onboot 000-hello-onboot: ok", "start containerd: ok",
                 "service hello-service: ok"):
        assert f"moby-init: {step}" in log
    assert not running_qemu(dist / "debian-minimal-kernel")


@needs_qemu
@pytest.mark.parametrize(("component", "reported"), [
    ("hello-onboot", "moby-init: onboot 000-hello-onboot: failed (exit 1)"),
    ("hello-service", "moby-init: service hello-service: failed (exited; containerd reports it stopped)"),
])
def test_failing_container_fails_the_run(debian_minimal, tmp_path, component, reported):
    project, _ = debian_minimal
    broken = tmp_path / "broken"
    shutil.copytree(project, broken, ignore=shutil.ignore_patterns("build"))
    assembly = broken / "assembly.yml"
    assembly.write_text(assembly.read_text() + f"config:\n  {component}:\n    command: [/bin/busybox, 'false']\n")
    built = moby_asm("build", broken, "-o", tmp_path / "dist", cwd=broken, timeout=BUILD_TIMEOUT_SECONDS)
    assert built.returncode == 0, explain(built)
    result = moby_asm("run", broken, "-o", tmp_path / "dist", "--expect", ONBOOT_LINE, "--expect", SERVICE_LINE,
                      "--fail-on", STEP_FAILED, "--timeout", BOOT_TIMEOUT_SECONDS, cwd=broken)
    assert result.returncode == 1, explain(result)
    assert reported in result.stderr
    assert not running_qemu(tmp_path / "dist" / "debian-minimal-kernel")


@needs_qemu
def test_kernel_panic_is_reported_with_console_tail(kernel_only, tmp_path):
    kernel = kernel_only(None)
    result = moby_asm("run", kernel, "--expect", "never printed", "--timeout", BOOT_TIMEOUT_SECONDS, cwd=tmp_path)
    assert result.returncode == 1, explain(result)
    assert "error: the kernel panicked: Kernel panic - not syncing" in result.stderr
    assert "last console lines" in result.stderr
    assert (kernel.parent / "bare-console.log").stat().st_size > 0
    assert not running_qemu(kernel)


@needs_qemu
def test_hung_boot_times_out_and_qemu_is_stopped(kernel_only, tmp_path):
    kernel = kernel_only("#!/bin/busybox sh\n/bin/busybox echo init is waiting forever\n"
                         "exec /bin/busybox sleep 100000\n")
    result = moby_asm("run", kernel, "--expect", "init is waiting forever", "--expect", "never printed",
                      "--timeout", 60, cwd=tmp_path)
    assert result.returncode == 1, explain(result)
    assert "after 60 s the console had not shown 'never printed'" in result.stderr
    assert "init is waiting forever" in result.stderr
    assert not running_qemu(kernel)


def test_missing_qemu_names_the_package(debian_minimal, tmp_path):
    project, dist = debian_minimal
    empty = tmp_path / "bin"
    empty.mkdir()
    result = moby_asm("run", project, "-o", dist, "--expect", "x", cwd=project, env={"PATH": str(empty)})
    assert result.returncode == 1, explain(result)
    assert "qemu-system-x86_64 is not installed or not on PATH" in result.stderr
    assert "qemu-system-x86" in result.stderr


def test_unbuilt_assembly_says_to_build_it(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES_FOLDER / "debian-minimal", project, ignore=shutil.ignore_patterns("dist", "build"))
    result = moby_asm("run", project, cwd=tmp_path)
    assert result.returncode == 2, explain(result)
    assert f"contains no debian-minimal-kernel; run 'moby-asm build {project} -f kernel+initrd' first" in result.stderr


def test_boot_image_needs_initrd(tmp_path):
    (tmp_path / "a-kernel").write_bytes(b"k")
    with pytest.raises(NoBootImage, match="has no a-initrd.img beside it"):
        find_boot_image(tmp_path / "a-kernel")
    (tmp_path / "a-initrd.img").write_bytes(b"i")
    image = find_boot_image(tmp_path)
    assert (image.kernel, image.initrd, image.cmdline) == (tmp_path / "a-kernel", tmp_path / "a-initrd.img", "")


@pytest.mark.parametrize(("cmdline", "expected"), [
    ("", "console=ttyS0 panic=-1"),
    ("console=ttyS0 console=tty0", "console=ttyS0 console=tty0 console=ttyS0 panic=-1"),
    ("console=tty0 console=ttyS0 panic=5", "console=tty0 console=ttyS0 panic=5"),
])
def test_kernel_arguments_end_with_the_serial_console(cmdline, expected):
    image = BootImage(Path("k"), Path("i"), cmdline)
    assert kernel_arguments(image, QemuSettings()) == expected
    assert kernel_arguments(image, QemuSettings(append=["quiet"])) == expected + " quiet"


def test_accelerator_falls_back_to_tcg_without_usable_kvm(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags : fpu vme sse2\n")
    device = tmp_path / "kvm"
    assert choose_accelerator(QemuSettings(), device, cpuinfo)[0] == "tcg"
    device.write_bytes(b"")
    assert choose_accelerator(QemuSettings(), device, cpuinfo) == (
        "tcg", "the processor announces no hardware virtualisation (vmx or svm)")
    assert choose_accelerator(QemuSettings(accelerator="kvm"), device, cpuinfo) == ("kvm", "chosen with --accel")
    assert choose_accelerator(QemuSettings(platform="linux/arm64"), device, cpuinfo)[0] == "tcg"


def test_accelerator_takes_kvm_where_it_can_work(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags : fpu vmx sse2\n")
    device = tmp_path / "kvm"
    device.write_bytes(b"")
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        pytest.skip("the KVM choice is checked for x86_64 hosts")
    assert choose_accelerator(QemuSettings(), device, cpuinfo) == ("kvm", f"{device} is usable")
