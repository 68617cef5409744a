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
    from moby_asm.boot.console import ControlFilter
    from moby_asm.cli.output import interruptible
    from moby_asm.errors import InputError

    if any(not text for text in [*(expect or ()), *(fail_on or ())]):
        raise InputError("--expect and --fail-on need a non-empty TEXT")
    image = find_boot_image(target, output)
    settings = QemuSettings(_platform(target), memory, cpus, accel, list(append or ()))
    accelerator, reason = choose_accelerator(settings)
    command = qemu_command(image, settings, accelerator)
    log = log or image.kernel.with_name(f"{image.name}-console.log")
    expectations = list(expect or ())
    notes = error_console()
    notes.print(f"booting {image.name} with QEMU, {accelerator.upper()} ({reason}); console log: {log}", markup=False)
    interactive = not expectations and sys.stdin.isatty()
    # Firmware and kernel control sequences would clear the screen and turn line wrapping off.
    controls = ControlFilter()
    try:
        with interruptible("the boot was stopped; QEMU has ended"):
            result = watch_console(command, log, expectations, timeout or (300.0 if expectations else None),
                                   _show if interactive else (lambda data: _show(controls.feed(data))),
                                   interactive=interactive,
                                   fail_on=list(fail_on or ()))
    finally:
        _restore_terminal()
    if expectations:
        notes.print(f"{len(result.met)} of {len(expectations)} expected texts shown after {result.seconds:.1f} s",
                    markup=False)


def _show(data: bytes) -> None:
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        # The reader of a pipe (such as `head`) has gone; the console still reaches the log file.
        pass


def _restore_terminal() -> None:
    """Turn line wrapping back on, which the firmware turns off, and end the console's last line."""
    if sys.stdout.isatty():
        _show(b"\x1b[?7h\n")
    else:
        _show(b"\n")


def _platform(target: Path) -> str:
    from moby_asm.assembly.model import ASSEMBLY_FILE, load_assembly

    assembly_file = target / ASSEMBLY_FILE if target.is_dir() else target
    if assembly_file.is_file() and assembly_file.suffix in (".yml", ".yaml"):
        return load_assembly(assembly_file)[0].platforms[0]
    return "linux/amd64"
