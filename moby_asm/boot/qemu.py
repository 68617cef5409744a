"""Build the QEMU command line for a boot, and choose between KVM and TCG.

KVM is used only when /dev/kvm can be opened, the processor announces hardware
virtualisation (vmx or svm), and the host architecture matches the guest's. Otherwise
QEMU emulates the processor with TCG, which is slower but works everywhere.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

from moby_asm.boot.outputs import BootImage
from moby_asm.errors import InputError

QEMU_BINARIES = {"linux/amd64": "qemu-system-x86_64", "linux/arm64": "qemu-system-aarch64"}
SERIAL_CONSOLES = {"linux/amd64": "ttyS0", "linux/arm64": "ttyAMA0"}
HOST_MACHINES = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}
ACCELERATORS = ("auto", "kvm", "tcg")


@dataclass(frozen=True)
class QemuSettings:
    """Settings of the virtual machine: platform, memory in MiB, processors, accelerator and extra kernel arguments."""

    platform: str = "linux/amd64"
    memory: int = 1024
    cpus: int = 1
    accelerator: str = "auto"
    append: list[str] = field(default_factory=list)


def choose_accelerator(settings: QemuSettings, kvm_device: Path = Path("/dev/kvm"),
                       cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, str]:
    """Return the accelerator to use and why; `auto` picks KVM only where it can work."""
    if settings.accelerator not in ACCELERATORS:
        raise InputError(f"unknown accelerator {settings.accelerator!r}; use one of {', '.join(ACCELERATORS)}")
    if settings.accelerator != "auto":
        return settings.accelerator, "chosen with --accel"
    if HOST_MACHINES.get(platform.machine()) != settings.platform:
        return "tcg", f"the host is {platform.machine()}, the guest {settings.platform}"
    if not os.access(kvm_device, os.R_OK | os.W_OK):
        return "tcg", f"{kvm_device} is missing or not accessible"
    flags = cpuinfo.read_text(errors="replace") if cpuinfo.is_file() else ""
    if platform.machine() == "x86_64" and " vmx" not in flags and " svm" not in flags:
        return "tcg", "the processor announces no hardware virtualisation (vmx or svm)"
    return "kvm", f"{kvm_device} is usable"


def qemu_command(image: BootImage, settings: QemuSettings, accelerator: str) -> list[str]:
    """Return the QEMU arguments that boot `image` with its serial console on standard input and output."""
    if settings.platform not in QEMU_BINARIES:
        raise InputError(f"booting {settings.platform} is not supported; moby-asm boots "
                         f"{', '.join(QEMU_BINARIES)}")
    machine = ["-machine", "q35"] if settings.platform == "linux/amd64" else ["-machine", "virt", "-cpu", "max"]
    return [QEMU_BINARIES[settings.platform], *machine, "-accel", accelerator,
            "-m", str(settings.memory), "-smp", str(settings.cpus),
            "-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", kernel_arguments(image, settings),
            # No network device: the guest reaches nothing outside itself.
            "-nic", "none", "-nographic", "-no-reboot"]


def kernel_arguments(image: BootImage, settings: QemuSettings) -> str:
    """Return the kernel command line: the output's, a serial console last, a reboot on panic, then `append`."""
    console = f"console={SERIAL_CONSOLES[settings.platform]}"
    words = image.cmdline.split()
    # The last console= names /dev/console, where init logs; it must be the serial port.
    consoles = [word for word in words if word.startswith("console=")]
    if consoles[-1:] != [console]:
        words.append(console)
    if not any(word.startswith("panic=") for word in words):
        words.append("panic=-1")
    return " ".join(words + settings.append)
