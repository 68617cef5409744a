"""Find the kernel, initrd and command line that a `kernel+initrd` build wrote."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moby_asm.errors import InputError

KERNEL_SUFFIX = "-kernel"
INITRD_SUFFIX = "-initrd.img"
CMDLINE_SUFFIX = "-cmdline"


class NoBootImage(InputError):
    """The path names no `kernel+initrd` output, and no assembly whose output exists."""


@dataclass(frozen=True)
class BootImage:
    """The three files of a `kernel+initrd` output."""

    kernel: Path
    initrd: Path
    cmdline: str

    @property
    def name(self) -> str:
        return self.kernel.name.removesuffix(KERNEL_SUFFIX)


def find_boot_image(path: Path, output: Path | None = None) -> BootImage:
    """Return the output that `path` names: an assembly (its output folder), an output folder, or a kernel file.

    `output` is the assembly's output folder when it is not the default dist/ beside it.
    """
    if not path.exists():
        raise NoBootImage(f"{path} does not exist; give an assembly, its output folder or a NAME-kernel file")
    if path.is_file() and path.name.endswith(KERNEL_SUFFIX):
        return _image(path)
    folder, name = _folder_and_name(path, output)
    kernels = sorted(folder.glob(f"{name or '*'}{KERNEL_SUFFIX}")) if folder.is_dir() else []
    if not kernels:
        hint = f"run 'moby-asm build {path} -f kernel+initrd' first" if name else "build a kernel+initrd output first"
        raise NoBootImage(f"{folder} contains no {name or 'NAME'}{KERNEL_SUFFIX}; {hint}")
    if len(kernels) > 1:
        raise NoBootImage(f"{folder} contains several kernels ({', '.join(k.name for k in kernels)}); "
                          "give the NAME-kernel file to boot")
    return _image(kernels[0])


def _folder_and_name(path: Path, output: Path | None) -> tuple[Path, str | None]:
    from moby_asm.assembly.model import ASSEMBLY_FILE, load_assembly

    assembly_file = path / ASSEMBLY_FILE if path.is_dir() else path
    if assembly_file.is_file() and assembly_file.suffix in (".yml", ".yaml"):
        assembly, _ = load_assembly(assembly_file)
        return (output or assembly_file.parent / "dist"), assembly.name
    return path, None


def _image(kernel: Path) -> BootImage:
    stem = kernel.name.removesuffix(KERNEL_SUFFIX)
    initrd = kernel.with_name(stem + INITRD_SUFFIX)
    if not initrd.is_file():
        raise NoBootImage(f"{kernel} has no {initrd.name} beside it; build the kernel+initrd format again")
    cmdline_file = kernel.with_name(stem + CMDLINE_SUFFIX)
    cmdline = cmdline_file.read_text().strip() if cmdline_file.is_file() else ""
    return BootImage(kernel, initrd, cmdline)
