"""Measure the native builder's root filesystem tar against plain tar programs copying the same layers.

Setup (not measured): Debian's docker-registry on 127.0.0.1 gets a kernel image and
busybox images with a few thousand small text files and some MB of random data, pushed
with umoci and skopeo. One `moby-asm build` pulls them into a content store, and the
registry is stopped. Each round then times, in this order:

- moby-asm: `NativeBuilder().build` for format `tar` only, in this process, on a
  `BuildJob` with the rendered config and the images read from the content store;
- tarfile copy: Python's tarfile reads every layer blob once (gzip, stream mode) and
  copies each member unchanged into one PAX tar, under the same folder that moby-asm
  puts the image in. The kernel layer's /kernel becomes boot/kernel and the members of
  its kernel.tar are copied to /;
- GNU tar -A: `gzip -dc` of the first layer blob into the output, then for every
  further blob `gzip -dc BLOB > part.tar` and `tar -Af OUT part.tar`. Members keep
  their layer paths, and kernel.tar stays one file;
- GNU tar -c: `tar -cf OUT --numeric-owner -C TREE .`, where TREE is moby-asm's output
  unpacked once before the rounds: the same files, read from disk instead of layers.

The medians of the rounds are printed with the ratios to moby-asm.

    python benchmarks/rootfs_assembly.py [--rounds 5] [--small-files 5500] [--data-mb 36]

Needs docker-registry, umoci, skopeo, busybox-static, gzip and GNU tar.
"""

from __future__ import annotations

import argparse
import posixpath
import shlex
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import yaml

from build_cache import (
    MEGABYTE,
    Component,
    Content,
    KernelContent,
    MissingTool,
    check_tools,
    command_environment,
    run_build,
    run_registry,
    write_project,
)
from common import Timings, format_seconds, print_machine, print_timings, ratio

from moby_asm.build.runner import image_references
from moby_asm.builders.base import BuildJob
from moby_asm.builders.native import NativeBuilder
from moby_asm.project import open_project
from moby_asm.reporter import SilentReporter
from moby_asm.store import ContentStore

COMMAND_TIMEOUT_SECONDS = 300


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of measurements (medians are printed)")
    parser.add_argument("--small-files", type=int, default=5500,
                        help="small text files (200 B to 4 KB) over the three larger images")
    parser.add_argument("--data-mb", type=int, default=36,
                        help="MB of random data files over the three larger images")
    return parser.parse_args()


def project_components(small_files: int, data_mb: int) -> tuple[KernelContent, list[Component]]:
    """Return an 8 MB kernel with 1000 modules and five containers, three of which share the files and data."""
    kernel = KernelContent(kernel_bytes=8 * MEGABYTE, modules=1000)

    def content(file_share: float, data_share: float, data_files: int) -> Content:
        data_bytes = int(data_mb * MEGABYTE * data_share) // data_files
        return Content(int(small_files * file_share), data_files, data_bytes)

    components = [
        Component("bench-init", "init", content(0.55, 0.25, 2)),
        Component("setup", "onboot"),
        Component("format", "onboot"),
        Component("app", "service", content(0.35, 0.60, 3)),
        Component("web", "service", content(0.10, 0.15, 1)),
    ]
    return kernel, components


# The layers in moby-asm's order


@dataclass(frozen=True)
class LayerCopy:
    """One layer blob, and the folder of the root filesystem that its members go under ('' for /)."""

    blob: Path
    prefix: str
    kernel: bool = False


def container_folder(section: str, index: int, entry: dict) -> str:
    """Return the folder of a container's image in moby-asm's layout: its bundle's rootfs or lower."""
    name = entry["name"]
    bundle = f"containers/{section}/{name}" if section == "services" else f"containers/{section}/{index:03d}-{name}"
    return f"{bundle}/{'rootfs' if entry.get('readonly') else 'lower'}"


def layer_plan(config: dict, images: dict, store: ContentStore) -> list[LayerCopy]:
    """Return every layer of the config's images in the order the root filesystem uses them, each image once."""
    plan: list[LayerCopy] = []

    def add(reference: str, prefix: str, kernel: bool = False) -> None:
        plan.extend(LayerCopy(store.blob_path(layer.digest), prefix, kernel) for layer in images[reference].layers)

    add(config["kernel"]["image"], "", kernel=True)
    for reference in config.get("init") or []:
        add(reference, "")
    seen: set[str] = set()
    for section in ("onboot", "onshutdown", "services"):
        for index, entry in enumerate(config.get(section) or []):
            if entry["image"] not in seen:
                seen.add(entry["image"])
                add(entry["image"], container_folder(section, index, entry))
    return plan


# The measured steps


def build_native(job: BuildJob) -> None:
    outputs = NativeBuilder().build(job, SilentReporter())
    assert [output.format for output in outputs] == ["tar"], outputs


def join_member(prefix: str, name: str) -> str:
    name = posixpath.normpath("/" + name).lstrip("/")
    return posixpath.join(prefix, name) if name else prefix.rstrip("/") or "."


def copy_members(source: tarfile.TarFile, target: tarfile.TarFile, prefix: str,
                 special: Callable[[tarfile.TarInfo], bool] | None = None) -> None:
    """Copy every member of `source` (a stream) into `target` below `prefix`, unless `special` handles it."""
    for member in source:
        if special is not None and special(member):
            continue
        member.name = join_member(prefix, member.name)
        if member.islnk():
            member.linkname = join_member(prefix, member.linkname)
        target.addfile(member, source.extractfile(member) if member.isfile() else None)


def copy_with_tarfile(plan: list[LayerCopy], output: Path) -> None:
    with tarfile.open(output, "w", format=tarfile.PAX_FORMAT) as target:
        for layer in plan:
            with tarfile.open(layer.blob, "r|gz") as source:
                special = kernel_member_handler(source, target) if layer.kernel else None
                copy_members(source, target, layer.prefix, special)


def kernel_member_handler(source: tarfile.TarFile, target: tarfile.TarFile) -> Callable[[tarfile.TarInfo], bool]:
    """Return a handler that writes /kernel as boot/kernel and copies the members of /kernel.tar to /."""

    def handle(member: tarfile.TarInfo) -> bool:
        name = posixpath.normpath("/" + member.name)
        if name == "/kernel":
            member.name = "boot/kernel"
            target.addfile(member, source.extractfile(member))
            return True
        if name == "/kernel.tar":
            with tarfile.open(fileobj=source.extractfile(member), mode="r|") as modules:
                copy_members(modules, target, "")
            return True
        return False

    return handle


def run(command: list[str], stdout: BinaryIO | int = subprocess.DEVNULL) -> None:
    completed = subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, timeout=COMMAND_TIMEOUT_SECONDS,
                               check=False)
    if completed.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed with exit code {completed.returncode}: "
                         f"{completed.stderr.decode(errors='replace')}")


def decompress(blob: Path, target: Path) -> None:
    with open(target, "wb") as stdout:
        run(["gzip", "-dc", str(blob)], stdout)


def concatenate_with_gnu_tar(plan: list[LayerCopy], output: Path, scratch: Path) -> None:
    part = scratch / "part.tar"
    decompress(plan[0].blob, output)
    for layer in plan[1:]:
        decompress(layer.blob, part)
        run(["tar", "-Af", str(output), str(part)])
    part.unlink()


def tar_tree(tree: Path, output: Path) -> None:
    run(["tar", "-cf", str(output), "--numeric-owner", "-C", str(tree), "."])


# Setup and report


@dataclass
class Prepared:
    """Inputs of the measured steps: the build job, the layers in order and moby-asm's output unpacked."""

    job: BuildJob
    plan: list[LayerCopy]
    tree: Path


def prepare(work: Path, small_files: int, data_mb: int) -> Prepared:
    """Push the images, pull them with one `moby-asm build`, stop the registry and open the content store."""
    kernel, components = project_components(small_files, data_mb)
    store_folder = work / "store"
    registry = run_registry(work / "registry")
    try:
        started = time.perf_counter()
        project = write_project(work / "project", registry.url, kernel, components, ["tar"])
        print(f"images pushed to {registry.url} in {format_seconds(time.perf_counter() - started)}")
        run_build(project, store_folder, work / "dist-cli", command_environment(work, project))
    finally:
        registry.stop()
    assembly = open_project(project).assembly
    config = yaml.safe_load((project / "build" / "linuxkit.yml").read_text())
    store = ContentStore.open(store_folder)
    platform = assembly.platforms[0]
    images = {reference: store.image(reference, platform) for reference in image_references(config)}
    job = BuildJob(assembly.name, config, ["tar"], platform, work / "dist-native", images.__getitem__,
                   store.blob_path)
    tree = work / "tree"
    tree.mkdir()
    run(["tar", "-xf", str(work / "dist-cli" / f"{assembly.name}.tar"), "--numeric-owner",
         "--warning=no-unknown-keyword", "-C", str(tree)])
    return Prepared(job, layer_plan(config, images, store), tree)


def describe_tar(path: Path) -> str:
    """Return the size of a tar, its member count and the bytes of its regular files."""
    members = file_bytes = 0
    with tarfile.open(path) as archive:
        for member in archive:
            members += 1
            file_bytes += member.size if member.isfile() else 0
    size = path.stat().st_size
    return f"{size / MEGABYTE:.1f} MB, {members} members, {file_bytes / MEGABYTE:.1f} MB of file contents"


def print_inputs(prepared: Prepared) -> None:
    compressed = sum(layer.blob.stat().st_size for layer in prepared.plan)
    print(f"input: {len(prepared.plan)} gzip layer blobs, {compressed / MEGABYTE:.1f} MB")


def measure(prepared: Prepared, work: Path, rounds: int) -> None:
    job = prepared.job
    outputs = {
        "moby-asm": job.output_dir / f"{job.name}.tar",
        "tarfile copy": work / "tarfile.tar",
        "GNU tar -A": work / "concatenated.tar",
        "GNU tar -c": work / "tree.tar",
    }
    steps: dict[str, Callable[[], object]] = {
        "moby-asm": lambda: build_native(job),
        "tarfile copy": lambda: copy_with_tarfile(prepared.plan, outputs["tarfile copy"]),
        "GNU tar -A": lambda: concatenate_with_gnu_tar(prepared.plan, outputs["GNU tar -A"], work),
        "GNU tar -c": lambda: tar_tree(prepared.tree, outputs["GNU tar -c"]),
    }
    timings = {label: Timings(label) for label in steps}
    for round_number in range(rounds + 1):
        for label, step in steps.items():
            outputs[label].unlink(missing_ok=True)
            if round_number == 0:
                step()  # warm-up: fills the page cache and imports lazily imported modules
            else:
                timings[label].measure(step)
    print_report(timings, outputs)


def print_report(timings: dict[str, Timings], outputs: dict[str, Path]) -> None:
    rows = list(timings.values())
    print(f"\nmedians of {len(rows[0].wall)} rounds:")
    print_timings(rows)
    for row in rows[1:]:
        print(f"  moby-asm / {row.label}: {ratio(rows[0], row)}")
    print("\noutputs:")
    for label, path in outputs.items():
        print(f"  {label}: {describe_tar(path)}")


def main() -> None:
    arguments = parse_arguments()
    print_machine()
    try:
        check_tools()
    except MissingTool as missing:
        raise SystemExit(str(missing)) from None
    tar_version = subprocess.run(["tar", "--version"], capture_output=True, text=True, check=True).stdout
    gzip_version = subprocess.run(["gzip", "--version"], capture_output=True, text=True, check=True).stdout
    print(f"tools:   {tar_version.splitlines()[0]}, {gzip_version.splitlines()[0]}")
    with tempfile.TemporaryDirectory(prefix="moby-asm-rootfs-") as folder:
        work = Path(folder)
        prepared = prepare(work, arguments.small_files, arguments.data_mb)
        print_inputs(prepared)
        measure(prepared, work, arguments.rounds)


if __name__ == "__main__":
    main()
