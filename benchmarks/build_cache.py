"""Measure `moby-asm build` with an empty content store (cold) against a rebuild with a filled one (warm).

The script starts Debian's docker-registry on a free port of 127.0.0.1 with storage in
a temporary folder. It pushes a kernel image and busybox images made with umoci and
skopeo, two of them with some MB of random data, and writes a project that uses them.
Each round then runs, as subprocesses and in this order:

- cold: `python -m moby_asm build PROJECT --cache EMPTY -o OUT --json`, with a new empty
  content store, so every image is pulled;
- warm: the same command with the content store that an unmeasured first build filled,
  nothing changed; its JSON report must list no pulled image.

The registry's access log gives the requests of each build. The medians of the rounds
are printed with the ratio warm/cold.

    python benchmarks/build_cache.py [--rounds 5] [--data-mb 8] [--formats tar]

Needs docker-registry, umoci, skopeo and busybox-static (Debian packages).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import Timings, format_seconds, print_machine, print_timings, ratio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures_registry import (  # noqa: E402
    MissingTool,
    RunningRegistry,
    _run,
    build_busybox_layout,
    check_tools,
    push,
    run_registry,
)

MEGABYTE = 1 << 20
KERNEL_VERSION = "6.6.1"
ASSEMBLY_NAME = "bench"
BUILD_TIMEOUT_SECONDS = 600
# One line of the registry's access log (Apache combined format), e.g.
# 127.0.0.1 - - [04/Dec/2026:21:38:31 +0000] "GET /v2/bench/app/manifests/1 HTTP/1.1" 200 527 "" "moby-asm"
ACCESS_LINE = re.compile(r'^\S+ \S+ \S+ \[[^]]*] "(?P<method>[A-Z]+) (?P<uri>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) ')
MARKER_WAIT_SECONDS = 10

# Requests to 127.0.0.1 must not go through a proxy configured in the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# Images


@dataclass(frozen=True)
class Content:
    """Files that a second layer adds on top of busybox: small text files and files of random bytes."""

    small_files: int = 0
    data_files: int = 0
    data_file_bytes: int = 0

    @property
    def empty(self) -> bool:
        return self.small_files == 0 and self.data_files == 0


@dataclass(frozen=True)
class KernelContent:
    """A kernel image in LinuxKit's layout: /kernel of random bytes and /kernel.tar with modules."""

    kernel_bytes: int
    modules: int


@dataclass(frozen=True)
class Component:
    """One container of the project: its name, its stage (init, onboot or service) and its image's extra files."""

    name: str
    stage: str
    content: Content = Content()


def text_pool(rng: random.Random, size: int = 256 * 1024) -> bytes:
    """Return text resembling configuration files. Slices of it compress about as well as real ones."""
    words = ["enable", "path", "timeout", "user", "listen", "level", "retries", "name", "mode", "size"]
    lines = []
    while sum(map(len, lines)) < size:
        lines.append(f"{rng.choice(words)}_{rng.randrange(1000)} = {rng.random():.6f}  # {rng.choice(words)}\n")
    return "".join(lines).encode()


def write_content(rootfs: Path, content: Content, rng: random.Random) -> None:
    """Write `content` under rootfs/usr/share/bench (100 small files per folder) and rootfs/opt/data."""
    pool = text_pool(rng)
    for number in range(content.small_files):
        folder = rootfs / "usr/share/bench" / f"{number // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        size = rng.randrange(200, 4096)
        start = rng.randrange(len(pool) - size)
        (folder / f"file-{number:05d}.conf").write_bytes(pool[start:start + size])
    for number in range(content.data_files):
        folder = rootfs / "opt/data"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"blob-{number}.bin").write_bytes(rng.randbytes(content.data_file_bytes))


def unpack_arguments() -> list[str]:
    return ["--rootless"] if os.geteuid() != 0 else []


def add_layer(layout: Path, tag: str, fill: Callable[[Path], None]) -> None:
    """Add one layer to the image `tag` of the OCI layout: unpack it, call `fill` on the root folder, repack."""
    image = f"{layout}:{tag}"
    with tempfile.TemporaryDirectory(dir=layout.parent) as work:
        bundle = Path(work) / "bundle"
        _run(["umoci", "unpack", *unpack_arguments(), "--image", image, str(bundle)])
        fill(bundle / "rootfs")
        _run(["umoci", "repack", "--image", image, str(bundle)])


def make_image(registry_url: str, repo: str, content: Content, seed: int) -> str:
    """Push busybox, with `content` in a second layer unless it is empty, as REPO:1 and return the reference."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as work:
        layout = Path(work) / "layout"
        build_busybox_layout(layout, "1")
        if not content.empty:
            add_layer(layout, "1", lambda rootfs: write_content(rootfs, content, rng))
        return push(f"oci:{layout}:1", registry_url, repo, "1")


def modules_tar(modules: int, rng: random.Random) -> bytes:
    """Return a tar of `modules` files of 1 to 16 KB under lib/modules/VERSION, laid out as in a kernel.tar."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for number in range(modules):
            data = rng.randbytes(rng.randrange(1024, 16 * 1024))
            info = tarfile.TarInfo(f"lib/modules/{KERNEL_VERSION}/kernel/drivers/{number // 50:02d}/m{number:04d}.ko")
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write_kernel_files(rootfs: Path, kernel: KernelContent, rng: random.Random) -> None:
    (rootfs / "kernel").write_bytes(rng.randbytes(kernel.kernel_bytes))
    (rootfs / "kernel.tar").write_bytes(modules_tar(kernel.modules, rng))


def make_kernel_image(registry_url: str, kernel: KernelContent, seed: int) -> str:
    """Push an image with only /kernel and /kernel.tar, as LinuxKit's kernel images are, and return the reference."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as work:
        layout = Path(work) / "layout"
        _run(["umoci", "init", "--layout", str(layout)])
        _run(["umoci", "new", "--image", f"{layout}:{KERNEL_VERSION}"])
        add_layer(layout, KERNEL_VERSION, lambda rootfs: write_kernel_files(rootfs, kernel, rng))
        _run(["umoci", "config", "--image", f"{layout}:{KERNEL_VERSION}", "--architecture", "amd64", "--os", "linux"])
        return push(f"oci:{layout}:{KERNEL_VERSION}", registry_url, "bench/kernel", KERNEL_VERSION)


# Project


def descriptor(name: str, stage: str, image: str, extra: str = "") -> str:
    return (f"name: {name}\nversions:\n  - version: 1.0.0\n    stage: {stage}\n"
            f"    source:\n      image: {image}\n{extra}")


def write_project(folder: Path, registry_url: str, kernel: KernelContent, components: list[Component],
                  formats: list[str]) -> Path:
    """Push the images, write a project (assembly.yml and components/) into `folder` and return `folder`."""
    catalog = folder / "components"
    catalog.mkdir(parents=True)
    kernel_reference = make_kernel_image(registry_url, kernel, seed=1)
    (catalog / "bench-kernel.yml").write_text(
        descriptor("bench-kernel", "kernel", kernel_reference, "    kernel:\n      cmdline: console=ttyS0\n"))
    for seed, component in enumerate(components, start=2):
        reference = make_image(registry_url, f"bench/{component.name}", component.content, seed)
        extra = ""
        if component.stage == "onboot":
            extra = f"    config:\n      command: [/bin/echo, {component.name} done]\n"
        (catalog / f"{component.name}.yml").write_text(descriptor(component.name, component.stage, reference, extra))
    names = ["bench-kernel", *(component.name for component in components)]
    (folder / "assembly.yml").write_text(
        f"name: {ASSEMBLY_NAME}\nrequires: [{', '.join(names)}]\noutputs: [{', '.join(formats)}]\n"
        "files:\n  - path: etc/motd\n    contents: hello\n    mode: \"0644\"\n")
    return folder


def command_environment(work: Path, project: Path) -> dict[str, str]:
    """Return the environment of the build commands: no colour, a private catalog index, no user config."""
    environment = {key: value for key, value in os.environ.items() if key != "MOBY_ASM_CATALOG_PATH"}
    environment.update({
        "NO_COLOR": "1",
        "MOBY_ASM_CACHE_DIR": str(work / "moby-asm-cache"),
        "MOBY_ASM_CONFIG": str(project / "no-config.yml"),
    })
    return environment


def build_command(project: Path, cache: Path, output: Path) -> list[str]:
    return [sys.executable, "-m", "moby_asm", "build", str(project), "--cache", str(cache), "-o", str(output), "--json"]


def run_build(project: Path, cache: Path, output: Path, environment: dict[str, str]) -> dict:
    """Run `moby-asm build` and return its JSON report. Exit with its error output when it fails."""
    command = build_command(project, cache, output)
    completed = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=project,
                               timeout=BUILD_TIMEOUT_SECONDS, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed with exit code {completed.returncode}:\n{completed.stderr}")
    return json.loads(completed.stdout)


# Registry requests


class AccessLog:
    """Counter of the requests in the registry's access log that arrive between `start` and `stop`."""

    def __init__(self, registry: RunningRegistry):
        self.registry = registry
        self._offset = 0
        self._markers = 0

    def start(self) -> None:
        self._offset = self.registry.log.stat().st_size

    def stop(self) -> Counter:
        """Return the requests since `start` by kind: manifests, blobs, other.

        The registry may write a log line after its response has left, so a marker request
        is sent last and the log is read once the marker's line is in it.
        """
        self._markers += 1
        marker = f"/v2/?benchmark-marker={self._markers}"
        with _DIRECT.open(f"{self.registry.url}{marker}", timeout=10):
            pass
        lines = self._lines_until(marker)
        return Counter(request_kind(match["uri"]) for match in map(ACCESS_LINE.match, lines) if match)

    def _lines_until(self, marker: str) -> list[str]:
        deadline = time.monotonic() + MARKER_WAIT_SECONDS
        while time.monotonic() < deadline:
            with open(self.registry.log, "rb") as log:
                log.seek(self._offset)
                lines = log.read().decode(errors="replace").splitlines()
            for index, line in enumerate(lines):
                if f" {marker} HTTP/" in line:
                    return lines[:index]
            time.sleep(0.05)
        raise SystemExit(f"the registry's access log {self.registry.log} has no line for {marker} "
                         f"after {MARKER_WAIT_SECONDS} s")


def request_kind(uri: str) -> str:
    if "/manifests/" in uri:
        return "manifests"
    if "/blobs/" in uri:
        return "blobs"
    return "other"


def format_requests(requests: Counter) -> str:
    return ", ".join(f"{requests[kind]} {kind}" for kind in ("manifests", "blobs", "other"))


# Measurement


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of one cold and one warm build (medians are printed)")
    parser.add_argument("--data-mb", type=int, default=8,
                        help="MB of random data in the image of the 'app' service (in two files)")
    parser.add_argument("--formats", default="tar", help="comma-separated output formats of the assembly")
    return parser.parse_args()


def project_components(data_mb: int) -> tuple[KernelContent, list[Component]]:
    """Return the kernel and the containers: two plain busybox images and two with more content."""
    kernel = KernelContent(kernel_bytes=4 * MEGABYTE, modules=200)
    components = [
        Component("bench-init", "init"),
        Component("setup", "onboot"),
        Component("app", "service", Content(data_files=2, data_file_bytes=data_mb * MEGABYTE // 2)),
        Component("web", "service", Content(small_files=300, data_files=1, data_file_bytes=2 * MEGABYTE)),
    ]
    return kernel, components


def check_report(report: dict, expected_pulled: int, label: str) -> None:
    if len(report["pulled"]) != expected_pulled:
        raise SystemExit(f"{label} build pulled {len(report['pulled'])} images, expected {expected_pulled}: "
                         f"{report['pulled']}")


def measure(project: Path, work: Path, log: AccessLog, rounds: int) -> None:
    environment = command_environment(work, project)
    warm_cache, output = work / "store-warm", work / "dist"
    print("build command:", shlex.join(build_command(project, Path("STORE"), Path("OUT"))))
    first = run_build(project, warm_cache, output, environment)  # Not measured: fills the warm store.
    references = len(first["pulled"])
    cold, warm = Timings("cold (empty store)"), Timings("warm (filled store)")
    requests: dict[str, list[Counter]] = {"cold": [], "warm": []}
    for round_number in range(rounds):
        cold_cache = work / f"store-cold-{round_number}"
        log.start()
        report = cold.measure(lambda cache=cold_cache: run_build(project, cache, output, environment))
        check_report(report, references, "cold")
        requests["cold"].append(log.stop())
        shutil.rmtree(cold_cache)
        log.start()
        report = warm.measure(lambda: run_build(project, warm_cache, output, environment))
        check_report(report, 0, "warm")
        requests["warm"].append(log.stop())
    print_results(cold, warm, requests, references)
    print_sizes(warm_cache, first)


def print_results(cold: Timings, warm: Timings, requests: dict[str, list[Counter]], references: int) -> None:
    print(f"\n{references} images; medians of {len(cold.wall)} rounds:")
    print_timings([cold, warm])
    print(f"  warm / cold: {ratio(warm, cold)}")
    print(f"  cold - warm: {format_seconds(cold.median - warm.median)} wall")
    print("\nregistry requests per build (from the access log):")
    for label, counts in requests.items():
        distinct = sorted({format_requests(count) for count in counts})
        print(f"  {label}: {' | '.join(distinct)}")


def print_sizes(store: Path, report: dict) -> None:
    blobs = [path for path in (store / "blobs" / "sha256").iterdir() if not path.name.startswith(".")]
    stored = sum(path.stat().st_size for path in blobs)
    print(f"\ncontent store: {len(blobs)} blobs, {stored / MEGABYTE:.1f} MB")
    for entry in report["outputs"]:
        print(f"output: {entry['format']} {Path(entry['path']).name} {entry['size'] / MEGABYTE:.1f} MB")


def main() -> None:
    arguments = parse_arguments()
    print_machine()
    try:
        check_tools()
    except MissingTool as missing:
        raise SystemExit(str(missing)) from None
    kernel, components = project_components(arguments.data_mb)
    formats = [value.strip() for value in arguments.formats.split(",") if value.strip()]
    with tempfile.TemporaryDirectory(prefix="moby-asm-build-cache-") as folder:
        work = Path(folder)
        registry = run_registry(work / "registry")
        try:
            print(f"registry: {registry.url}, storage {registry.storage}")
            started = time.perf_counter()
            project = write_project(work / "project", registry.url, kernel, components, formats)
            print(f"images pushed in {format_seconds(time.perf_counter() - started)}")
            measure(project, work, AccessLog(registry), arguments.rounds)
        finally:
            registry.stop()


if __name__ == "__main__":
    main()
