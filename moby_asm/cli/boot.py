"""`moby-asm run`: boot a `kernel+initrd` output under QEMU, for a look or a smoke test."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from moby_asm.cli.output import error_console


def run(
    target: Path = typer.Argument(Path("."), metavar="[ASSEMBLY or OUTPUT]",
                                  help="An assembly (its built output is booted), an output folder, or a "
                                       "NAME-kernel file."),
    output: Path = typer.Option(None, "--output", "-o", help="The assembly's output folder, when not dist/."),
    memory: int = typer.Option(1024, "--memory", "-m", min=64, help="Memory of the virtual machine in MiB."),
    cpus: int = typer.Option(1, "--cpus", min=1, help="Processors of the virtual machine."),
    accel: str = typer.Option("auto", "--accel", metavar="auto|kvm|tcg",
                              help="QEMU accelerator; auto uses KVM where it works, else TCG."),
    expect: list[str] = typer.Option(None, "--expect", metavar="TEXT",
                                     help="Text the console must show; repeat for several. The run ends, with "
                                          "exit code 0, once all have appeared."),
    timeout: float = typer.Option(None, "--timeout", metavar="SECONDS", min=1,
                                  help="Stop after this long; with --expect, a missed expectation exits 1. "
                                       "Default with --expect: 300."),
    fail_on: list[str] = typer.Option(None, "--fail-on", metavar="TEXT",
                                      help="Text that fails the run at once when the console shows it; repeatable."),
    append: list[str] = typer.Option(None, "--append", metavar="ARG", help="Extra kernel argument; repeatable."),
    log: Path = typer.Option(None, "--log", help="Console log file; default: NAME-console.log beside the kernel."),
) -> None:
    """Boot a kernel+initrd output with QEMU, its serial console on this terminal."""
    from moby_asm.boot import QemuSettings, choose_accelerator, find_boot_image, qemu_command, watch_console

    image = find_boot_image(target, output)
    settings = QemuSettings(_platform(target), memory, cpus, accel, list(append or ()))
    accelerator, reason = choose_accelerator(settings)
    command = qemu_command(image, settings, accelerator)
    log = log or image.kernel.with_name(f"{image.name}-console.log")
    expectations = list(expect or ())
    notes = error_console()
    notes.print(f"booting {image.name} with QEMU, {accelerator.upper()} ({reason}); console log: {log}", markup=False)
    result = watch_console(command, log, expectations, timeout or (300.0 if expectations else None), _show,
                           interactive=not expectations and sys.stdin.isatty(), fail_on=list(fail_on or ()))
    if expectations:
        notes.print(f"all {len(expectations)} expectations met after {result.seconds:.1f} s", markup=False)


def _show(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _platform(target: Path) -> str:
    from moby_asm.assembly.model import ASSEMBLY_FILE, load_assembly

    assembly_file = target / ASSEMBLY_FILE if target.is_dir() else target
    if assembly_file.is_file() and assembly_file.suffix in (".yml", ".yaml"):
        return load_assembly(assembly_file)[0].platforms[0]
    return "linux/amd64"
