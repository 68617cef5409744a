"""Boot `kernel+initrd` outputs under QEMU and watch their serial console."""

from moby_asm.boot.console import BootFailed, BootResult, watch_console
from moby_asm.boot.outputs import BootImage, find_boot_image
from moby_asm.boot.qemu import QemuSettings, choose_accelerator, qemu_command

__all__ = ["BootFailed", "BootImage", "BootResult", "QemuSettings", "choose_accelerator", "find_boot_image",
           "qemu_command", "watch_console"]
