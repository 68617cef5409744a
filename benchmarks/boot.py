"""Measure boot-to-service time and initrd size of debian-minimal against a hand-made BusyBox initrd.

Setup (not measured):

- moby-asm: `moby-asm build assemblies/debian-minimal --cache STORE -o WORK/moby-asm`,
  which writes the kernel, the gzip cpio initrd and the kernel command line.
- hand-made: what an engineer assembles without moby-asm from the same Debian packages.
  `dpkg-deb -x` unpacks the .debs that the assembly's lock lists for debian-busybox,
  debian-runc and debian-containerd, taken from the content store by their SHA-256.
  The root gets /bin/busybox, containerd, containerd-shim-runc-v2, ctr and runc in
  /bin, and the shared libraries that their ELF headers need (readelf -d, followed
  recursively). /rootfs, the root filesystem of both containers, contains a hard link
  of /bin/busybox. /onboot contains a hand-written OCI bundle config for runc, and /init
  is a short BusyBox script.
  `find . | cpio -o -H newc | gzip` writes the initrd, with gzip's default level 6, the
  level moby-asm uses.

Both boot the kernel file of moby-asm's output, with the same command line. Their /init
runs the onboot command of `hello-onboot` with `runc run --no-pivot`, starts containerd,
and runs the command of `hello-service` with `ctr run --no-pivot`. The commands are read
from the assembly's component files, so both print the same two lines.

Each round boots both once, and the side that boots first alternates between rounds.
A boot is timed from QEMU's start until the console has shown the service's line, with
moby-asm's `qemu_command` and `watch_console` and the same settings for both: TCG,
1024 MiB, 1 processor. One unmeasured boot of each comes first. It checks that both
reach the service and puts the files in the page cache. The script also records when
the kernel starts and ends unpacking the initrd and when it starts /init, each as wall
time and as QEMU's CPU time (from /proc/PID/stat), and prints the medians. The CPU time
depends less on other jobs of the machine, because TCG keeps QEMU's processor thread
busy for most of the boot.

Last, it reads both initrds and compares their regular files by SHA-256: what both
contain, further copies of one content, and what only moby-asm's contains, by folder.

    python benchmarks/boot.py --rounds 3 --cache STORE

Needs qemu-system-x86, cpio, gzip, dpkg-deb and readelf (binutils), and the Debian
archive of the apt sources when STORE does not yet hold the packages.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from common import print_machine

from moby_asm.boot import BootFailed, BootImage, QemuSettings, find_boot_image, qemu_command, watch_console

ASSEMBLY = Path(__file__).resolve().parents[1] / "assemblies" / "debian-minimal"
PACKAGE_COMPONENTS = ("debian-busybox", "debian-runc", "debian-containerd")
BINARIES = ("busybox", "containerd", "containerd-shim-runc-v2", "ctr", "runc")
BINARY_FOLDERS = ("bin", "sbin", "usr/bin", "usr/sbin")
LIBRARY_FOLDERS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu")
SERVICE_LINE = "hello-service: 127.0.0.1:8080 answered: the service is up"
SETTINGS = QemuSettings(platform="linux/amd64", memory=1024, cpus=1, accelerator="tcg")
# Kernel messages that split a boot. They show when unpacking the initrd starts and ends, and when /init starts.
KERNEL_MESSAGES = ("Trying to unpack rootfs image as initramfs", "Freeing initrd memory", "Run /init as init process")

HAND_MADE_INIT = """#!/bin/busybox sh
# PID 1 of the hand-made initrd: mount what runc and containerd need, run the onboot
# container with runc, then the service under containerd.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
runc run --no-pivot --bundle /onboot onboot < /dev/null
containerd > /run/containerd.log 2>&1 &
while [ ! -S /run/containerd/containerd.sock ]; do sleep 0.1; done
ctr run --detach --no-pivot --net-host --read-only --rootfs \\
    --mount type=tmpfs,src=tmpfs,dst=/srv,options=nosuid:nodev \\
    --log-uri file:///dev/console /rootfs service {service}
exec sleep 2147483647
"""


def container_command(name: str) -> list[str]:
    """Return the command of the assembly's component `name` (its first version)."""
    descriptor = yaml.safe_load((ASSEMBLY / "components" / f"{name}.yml").read_text())
    return descriptor["versions"][0]["config"]["command"]


def run(command: list[str] | str, **options) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, check=False, **options)
    if result.returncode != 0:
        command_text = command if isinstance(command, str) else shlex.join(command)
        raise SystemExit(f"{command_text} failed (exit {result.returncode}): {result.stderr[-2000:]}")
    return result


def build_moby_asm(store: Path, output: Path) -> BootImage:
    started = time.perf_counter()
    run([sys.executable, "-m", "moby_asm", "build", str(ASSEMBLY), "--cache", str(store), "-o", str(output)])
    print(f"moby-asm build (not measured): {time.perf_counter() - started:.1f} s")
    return find_boot_image(output)


def locked_packages(store: Path) -> list[Path]:
    """Return the store's blob of every .deb that the lock lists for the packaged components, each once."""
    lock = yaml.safe_load((ASSEMBLY / "assembly.lock").read_text())
    digests = {package["sha256"]: package["name"]
               for component in lock["components"] if component["name"] in PACKAGE_COMPONENTS
               for package in component["source"]["packages"]}
    blobs = []
    for digest, name in sorted(digests.items(), key=lambda item: item[1]):
        blob = store / "blobs" / "sha256" / digest
        if not blob.is_file():
            raise SystemExit(f"the content store has no blob {digest} for package {name}. "
                             "Run moby-asm build with this --cache first")
        blobs.append(blob)
    return blobs


def resolve_inside(tree: Path, path: Path) -> Path:
    """Follow the symbolic links of `path` as they resolve with `tree` as the root folder."""
    for _ in range(40):
        if not path.is_symlink():
            return path
        target = os.readlink(path)
        path = tree / target.lstrip("/") if target.startswith("/") else path.parent / target
    raise SystemExit(f"{path}: too many levels of symbolic links")


def find_in(tree: Path, name: str, folders: tuple[str, ...]) -> Path:
    for folder in folders:
        candidate = tree / folder / name
        if candidate.exists() or candidate.is_symlink():
            return resolve_inside(tree, candidate)
    raise SystemExit(f"{name} is not in {', '.join(folders)} of the unpacked packages ({tree})")


def elf_needs(path: Path) -> tuple[list[str], str | None]:
    """Return the NEEDED sonames and the program interpreter of an ELF file, from readelf."""
    needed = []
    for line in run(["readelf", "-d", "-W", str(path)]).stdout.splitlines():
        if "(NEEDED)" in line:
            needed.append(line.rsplit("[", 1)[1].rstrip("]"))
    interpreter = None
    for line in run(["readelf", "-l", "-W", str(path)]).stdout.splitlines():
        if "program interpreter:" in line:
            interpreter = line.split("program interpreter:", 1)[1].strip(" ]")
    return needed, interpreter


def copy_libraries(unpacked: Path, root: Path, binaries: list[Path]) -> None:
    """Copy every shared library that `binaries` need, directly or through other libraries, into `root`."""
    pending, seen = list(binaries), set()
    while pending:
        needed, interpreter = elf_needs(pending.pop())
        if interpreter and interpreter not in seen:
            # The interpreter also satisfies libc's NEEDED entry for its soname.
            seen.update((interpreter, Path(interpreter).name))
            target = root / interpreter.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(find_in(unpacked, Path(interpreter).name, LIBRARY_FOLDERS), target)
        for soname in needed:
            if soname in seen:
                continue
            seen.add(soname)
            source = find_in(unpacked, soname, LIBRARY_FOLDERS)
            target = root / "lib" / "x86_64-linux-gnu" / soname
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
            pending.append(source)


def runtime_spec(command: list[str]) -> dict:
    """Return the OCI runtime config for runc: the command in new PID and mount namespaces, read-only root."""
    return {
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": command, "cwd": "/",
                    "env": ["PATH=/bin"]},
        "root": {"path": "/rootfs", "readonly": True},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
    }


def write_hand_made_root(unpacked: Path, root: Path) -> None:
    for folder in ("bin", "etc", "proc", "sys", "dev", "run", "tmp", "onboot", "rootfs/bin", "rootfs/etc",
                   "rootfs/proc", "rootfs/dev", "rootfs/sys", "rootfs/srv"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    binaries = []
    for name in BINARIES:
        target = root / "bin" / name
        shutil.copyfile(find_in(unpacked, name, BINARY_FOLDERS), target)
        target.chmod(0o755)
        binaries.append(target)
    copy_libraries(unpacked, root, binaries)
    os.link(root / "bin" / "busybox", root / "rootfs" / "bin" / "busybox")
    # ctr run --net-host bind-mounts these two files of the host into the container.
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (root / "etc" / "resolv.conf").write_text("")
    spec = runtime_spec(container_command("hello-onboot"))
    (root / "onboot" / "config.json").write_text(json.dumps(spec, indent=2) + "\n")
    init = root / "init"
    init.write_text(HAND_MADE_INIT.format(service=shlex.join(container_command("hello-service"))))
    init.chmod(0o755)


def build_hand_made(store: Path, kernel: BootImage, work: Path) -> BootImage:
    """Write the hand-made initrd into `work` and return it with moby-asm's kernel and command line."""
    started = time.perf_counter()
    unpacked, root = work / "unpacked", work / "root"
    unpacked.mkdir(parents=True)
    for blob in locked_packages(store):
        run(["dpkg-deb", "-x", str(blob), str(unpacked)])
    write_hand_made_root(unpacked, root)
    initrd = work / "initrd.img"
    run(f"find . | cpio -o -H newc -R 0:0 --quiet | gzip -n > {shlex.quote(str(initrd))}", shell=True, cwd=root)
    print(f"hand-made initrd (not measured): {time.perf_counter() - started:.1f} s")
    return BootImage(kernel.kernel, initrd, kernel.cmdline)


def child_cpu_seconds() -> float | None:
    """Return the user plus system CPU time of this process's only child (QEMU), or None if it cannot be read."""
    try:
        children = Path(f"/proc/self/task/{os.getpid()}/children").read_text().split()
        if len(children) != 1:
            return None
        fields = Path(f"/proc/{children[0]}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # Fields 14 and 15 of /proc/PID/stat (utime, stime), counted from the state field, which is field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Milestones:
    """Wall and QEMU CPU seconds from the start of a boot until each text first appeared on the console."""

    texts: list[str]
    started: float = field(default_factory=time.monotonic)
    wall: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float | None] = field(default_factory=dict)
    console: bytes = b""

    def __call__(self, data: bytes) -> None:
        self.console += data
        now = time.monotonic() - self.started
        for text in self.texts:
            if text not in self.wall and text.encode() in self.console:
                self.wall[text] = now
                self.cpu[text] = child_cpu_seconds()


@dataclass
class Side:
    """One initrd being compared, with the milestones of each measured boot."""

    label: str
    image: BootImage
    boots: list[Milestones] = field(default_factory=list)

    def medians(self, last: str, first: str | None = None) -> tuple[float, float]:
        """Return the median wall and CPU seconds until `last`, or from `first` to `last` (NaN where unknown)."""
        return (median_span([boot.wall for boot in self.boots], first, last),
                median_span([boot.cpu for boot in self.boots], first, last))


def median_span(boots: list[dict], first: str | None, last: str) -> float:
    """Return the median of `last` minus `first` (or 0) over the boots, or NaN when a boot lacks a value."""
    spans = []
    for seen in boots:
        end = seen.get(last)
        start = seen.get(first) if first is not None else 0.0
        if end is None or start is None:
            return float("nan")
        spans.append(end - start)
    return statistics.median(spans)


def boot(side: Side, markers: list[str], log: Path, timeout: float) -> Milestones:
    command = qemu_command(side.image, SETTINGS, SETTINGS.accelerator)
    milestones = Milestones([*KERNEL_MESSAGES, *markers])
    try:
        watch_console(command, log, markers, timeout, milestones)
    except BootFailed as error:
        raise SystemExit(f"{side.label}: {error}") from None
    return milestones


@dataclass
class InitrdSize:
    """Sizes of a gzip newc initrd: compressed, uncompressed, and each regular file's path, size and SHA-256."""

    compressed: int
    uncompressed: int = 0
    files: list[tuple[str, int, str]] = field(default_factory=list)

    @property
    def digests(self) -> set[str]:
        return {digest for _, _, digest in self.files}


def read_exactly(stream, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise SystemExit("the initrd ends inside a cpio entry")
    return data


def measure_initrd(path: Path) -> InitrdSize:
    """Read the newc entries of a gzip cpio initrd and list its regular files with data.

    A hard link's data comes once, with its last name (as GNU cpio writes it), so linked
    files count once.
    """
    size = InitrdSize(path.stat().st_size)
    with gzip.open(path, "rb") as stream:
        while True:
            header = read_exactly(stream, 110)
            fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
            mode, filesize, namesize = fields[1], fields[6], fields[11]
            name = read_exactly(stream, namesize)[:-1].decode("utf-8", "replace").removeprefix("./")
            read_exactly(stream, -(110 + namesize) % 4)
            if name == "TRAILER!!!":
                break
            digest = hashlib.sha256(read_exactly(stream, filesize)).hexdigest()
            read_exactly(stream, -filesize % 4)
            if mode & 0o170000 == 0o100000 and filesize:
                size.files.append((name, filesize, digest))
        size.uncompressed = stream.tell() + len(stream.read())
    return size


def mib(size: float) -> str:
    return f"{size / (1 << 20):.2f} MiB"


def print_sizes(moby: InitrdSize, hand: InitrdSize) -> None:
    print("\ninitrd sizes:")
    print(f"  {'':<10} {'gzip':>10} {'uncompressed':>13} {'files with data':>16}")
    for label, size in (("moby-asm", moby), ("hand-made", hand)):
        print(f"  {label:<10} {mib(size.compressed):>10} {mib(size.uncompressed):>13} {len(size.files):>16}")
    print(f"  ratio moby-asm / hand-made: gzip {moby.compressed / hand.compressed:.2f}, "
          f"uncompressed {moby.uncompressed / hand.uncompressed:.2f}")
    print_content(moby, hand)


def describe(files: list[tuple[str, int, str]]) -> str:
    return f"{len(files)} files, {mib(sum(size for _, size, _ in files))}"


def print_content(moby: InitrdSize, hand: InitrdSize) -> None:
    """Print how the regular files of the two initrds compare by content (SHA-256)."""
    hand_digests, seen = hand.digests, set()
    shared, copies, only = [], [], []
    for entry in moby.files:
        digest = entry[2]
        if digest in seen:
            copies.append(entry)
        else:
            (shared if digest in hand_digests else only).append(entry)
        seen.add(digest)
    print("\nregular files of moby-asm's initrd, by content (SHA-256):")
    print(f"  also in the hand-made initrd: {describe(shared)}")
    print(f"  further copies of a content already counted: {describe(copies)}")
    for path, size, _ in sorted(copies, key=lambda entry: -entry[1])[:5]:
        print(f"    {mib(size):>10}  {path}")
    print(f"  only in moby-asm's, by folder (3 levels): {describe(only)}")
    print_folders(only)
    hand_only = [entry for entry in hand.files if entry[2] not in moby.digests]
    print(f"regular files only in the hand-made initrd: {describe(hand_only)} "
          f"({', '.join(path for path, _, _ in hand_only)})")


def print_folders(files: list[tuple[str, int, str]]) -> None:
    by_folder: dict[str, list[tuple[str, int, str]]] = {}
    for entry in files:
        by_folder.setdefault("/".join(entry[0].split("/")[:-1][:3]), []).append(entry)
    for folder, entries in sorted(by_folder.items(), key=lambda item: -sum(entry[1] for entry in item[1])):
        largest = ", ".join(f"{path.rsplit('/', 1)[-1]} {mib(size)}"
                            for path, size, _ in sorted(entries, key=lambda entry: -entry[1])[:3])
        total = sum(entry[1] for entry in entries)
        print(f"    {mib(total):>10}  /{folder + '/' if folder else ''} ({len(entries)} files; largest: {largest})")


def print_times(sides: list[Side], markers: list[str]) -> None:
    moby, hand = sides
    print(f"\nseconds from QEMU's start until the console showed the text, medians of {len(moby.boots)} rounds, "
          "moby-asm / hand-made (ratio); CPU is QEMU's user + system time:")
    for text in (*KERNEL_MESSAGES, *markers):
        print_row(repr(text), moby.medians(text), hand.medians(text))
    unpack_start, unpack_end, init_start = KERNEL_MESSAGES
    print_row("unpacking the initrd: from the first to the second kernel message",
              moby.medians(unpack_end, unpack_start), hand.medians(unpack_end, unpack_start))
    print_row("from /init's start to the service line",
              moby.medians(markers[-1], init_start), hand.medians(markers[-1], init_start))
    for side in sides:
        runs = ", ".join(f"{boot.wall[markers[-1]]:.2f}" for boot in side.boots)
        print(f"  {side.label} boots to the service line, wall, in order: {runs} s")


def print_row(label: str, moby: tuple[float, float], hand: tuple[float, float]) -> None:
    wall = f"{moby[0]:6.2f} / {hand[0]:6.2f} s ({moby[0] / hand[0]:.2f})"
    cpu = f"{moby[1]:6.2f} / {hand[1]:6.2f} s ({moby[1] / hand[1]:.2f})"
    print(f"  wall {wall}  CPU {cpu}  {label}")


def qemu_version() -> str:
    binary = qemu_command(BootImage(Path("kernel"), Path("initrd"), ""), SETTINGS, "tcg")[0]
    return run([binary, "--version"]).stdout.splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="measured boots of each side (default: 3)")
    parser.add_argument("--cache", type=Path, required=True, help="moby-asm's content store folder")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one boot may take (default: 300)")
    options = parser.parse_args()
    if options.rounds < 1:
        parser.error("--rounds must be at least 1")
    print_machine()
    print(f"qemu:    {qemu_version()}; accelerator {SETTINGS.accelerator}, {SETTINGS.memory} MiB, "
          f"{SETTINGS.cpus} processor")
    with tempfile.TemporaryDirectory(prefix="moby-asm-bench-boot-") as work_folder:
        measure(Path(work_folder), options)


def measure(work: Path, options) -> None:
    store = options.cache.resolve()
    moby_image = build_moby_asm(store, work / "moby-asm")
    hand_image = build_hand_made(store, moby_image, work / "hand-made")
    print(f"kernel: {moby_image.kernel.name}, {mib(moby_image.kernel.stat().st_size)}, "
          f"command line {moby_image.cmdline!r}")
    sides = [Side("moby-asm", moby_image), Side("hand-made", hand_image)]
    markers = [container_command("hello-onboot")[-1], SERVICE_LINE]
    for side in sides:
        boot(side, markers, work / f"{side.label}-warm-up.log", options.timeout)
    for round_number in range(options.rounds):
        order = sides if round_number % 2 == 0 else sides[::-1]
        for side in order:
            log = work / f"{side.label}-{round_number}.log"
            side.boots.append(boot(side, markers, log, options.timeout))
    print_times(sides, markers)
    print_sizes(measure_initrd(moby_image.initrd), measure_initrd(hand_image.initrd))

if __name__ == "__main__":
    main()
