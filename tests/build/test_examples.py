"""Every shipped example assembly builds against a local registry that mirrors Docker Hub.

Each example is composed to find the images it names, a stand-in for each image is
pushed to one registry on 127.0.0.1, and `moby-asm build --mirror docker.io=HOST:PORT`
builds a copy of the example twice with one private content store. The stand-ins are
busybox images and a LinuxKit-style kernel image, so the outputs show the layout and
the bundles, not the programs of the real images.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fixtures_engine import tag_busybox_base

from moby_asm.build.runner import image_references
from moby_asm.compose.render import LOCAL_IMAGE_PREFIX
from tests.compose.helpers import EXAMPLES, EXAMPLES_FOLDER, explain, read_yaml

from .fixture_images import StandInImages
from .test_build_end_to_end import KERNEL_BYTES, make_kernel_image

# File names of the native formats, from moby_asm/builders/native, where {name} is the assembly name.
OUTPUT_FILES = {
    "tar": ["{name}.tar"],
    "kernel+initrd": ["{name}-kernel", "{name}-initrd.img", "{name}-cmdline"],
    "tar-kernel-initrd": ["{name}-initrd.tar"],
    "docker": ["{name}-docker.tar"],
    "oci": ["{name}-oci.tar"],
}
NEWC_MAGIC = b"070701"
NEWC_HEADER_SIZE = 110
NEWC_TRAILER = "TRAILER!!!"
COMPOSE_WORKERS = 4

ASSEMBLIES = {name: read_yaml(EXAMPLES_FOLDER / name / "assembly.yml") for name in EXAMPLES}
INITRD_EXAMPLES = [name for name in EXAMPLES if "kernel+initrd" in ASSEMBLIES[name].get("outputs", [])]
TAR_FILE_EXAMPLES = [
    name for name in EXAMPLES if "tar" in ASSEMBLIES[name].get("outputs", []) and ASSEMBLIES[name].get("files")
]


@dataclass
class Build:
    """One `moby-asm build --json` run of an example: its project copy, output folder and result."""

    project: Path
    output: Path
    result: subprocess.CompletedProcess

    def report(self) -> dict[str, Any]:
        """Return the --json report after checking that the build succeeded."""
        assert self.result.returncode == 0, explain(self.result)
        return json.loads(self.result.stdout)


class ExampleBuilds:
    """The builds of every example, each run on first request: at most two, sharing one content store."""

    def __init__(self, cli, root: Path, registry_host: str, images: StandInImages, configs: dict[str, dict],
                 engine: Callable[[Path], str]):
        self.engine = engine
        self.cli = cli
        self.root = root
        self.registry_host = registry_host
        self.images = images
        self.configs = configs
        self.runs: dict[tuple[str, int], Build] = {}

    def get(self, example: str, run: int = 1) -> Build:
        """Return build number `run` (1 or 2) of `example`, building every earlier run first."""
        if (example, run) not in self.runs:
            if run > 1:
                self.get(example, run - 1)
            self.runs[example, run] = self._build(example, run)
        return self.runs[example, run]

    def _build(self, example: str, run: int) -> Build:
        config = self.configs[example]
        references = image_references(config)
        local = [reference for reference in references if reference.startswith(LOCAL_IMAGE_PREFIX)]
        pulled = [reference for reference in references if reference not in local]
        self.images.provide(pulled, kernel_references=[config["kernel"]["image"]] if "kernel" in config else [])
        project = self.root / example / "project"
        if run == 1:
            shutil.copytree(EXAMPLES_FOLDER / example, project)
        output = self.root / example / f"dist-{run}"
        environment = isolated_environment(self.root)
        if local:
            environment["DOCKER_HOST"] = self.engine(project)
        result = self.cli(
            "build", project, "-o", output, "--cache", self.root / example / "store",
            "--mirror", f"docker.io={self.registry_host}", "--build-network", "none", "--json",
            cwd=self.root, env=environment,
        )  # fmt: skip
        return Build(project, output, result)


def isolated_environment(root: Path) -> dict[str, str]:
    """Return variables that keep the user's moby-asm configuration and Docker credentials out of a build."""
    docker_config = root / "docker-config"
    docker_config.mkdir(exist_ok=True)
    return {"MOBY_ASM_CONFIG": str(root / "no-config.yml"), "DOCKER_CONFIG": str(docker_config)}


@pytest.fixture(scope="module")
def configs(cli, tmp_path_factory) -> dict[str, dict]:
    """Compose a copy of every example and return its LinuxKit config by example name."""
    root = tmp_path_factory.mktemp("compositions")
    with ThreadPoolExecutor(max_workers=COMPOSE_WORKERS) as pool:
        futures = {name: pool.submit(compose_example, cli, root, name) for name in EXAMPLES}
    return {name: future.result() for name, future in futures.items()}


def compose_example(cli, root: Path, example: str) -> dict:
    project = root / example / "project"
    shutil.copytree(EXAMPLES_FOLDER / example, project)
    result = cli("compose", project, "-o", root / example / "build", cwd=root, env=isolated_environment(root))
    assert result.returncode == 0, explain(result)
    return read_yaml(root / example / "build" / "linuxkit.yml")


@pytest.fixture(scope="module")
def builds(request, cli, tmp_path_factory, registry, configs) -> ExampleBuilds:
    kernel_source = make_kernel_image(registry.url)
    images = StandInImages(registry.url, kernel_source)
    bases = tmp_path_factory.mktemp("base-images")

    def engine(project: Path) -> str:
        """Return the test engine, holding busybox stand-ins for the BASE images the project's Dockerfiles name."""
        url = request.getfixturevalue("docker_engine")
        for component in read_yaml(project / "assembly.lock")["components"]:
            base = component.get("source", {}).get("build", {}).get("args", {}).get("BASE")
            if base:
                tag_busybox_base(url, base, bases / base.replace(":", "-").replace("/", "-"))
        return url

    return ExampleBuilds(cli, tmp_path_factory.mktemp("builds"), registry.host, images, configs, engine)


def read_newc_names(archive: bytes) -> list[str]:
    """Return the entry names of a newc cpio archive. A header without the newc magic fails an assertion."""
    names, offset = [], 0
    while True:
        header = archive[offset : offset + NEWC_HEADER_SIZE]
        assert header[:6] == NEWC_MAGIC, f"byte {offset} starts {header[:6]!r}, not a newc header"
        fields = [int(header[start : start + 8], 16) for start in range(6, NEWC_HEADER_SIZE, 8)]
        file_size, name_size = fields[6], fields[11]
        name_start = offset + NEWC_HEADER_SIZE
        name = archive[name_start : name_start + name_size - 1].decode("utf-8", "surrogateescape")
        if name == NEWC_TRAILER:
            return names
        names.append(name)
        data_start = align4(name_start + name_size)
        offset = align4(data_start + file_size)


def align4(offset: int) -> int:
    return (offset + 3) & ~3


def expected_bundles(lock: dict) -> list[str]:
    """Return the bundle folders the native builder writes for the lock's onboot and service components."""
    order = lock["order"]
    onboot = [f"containers/onboot/{index:03d}-{name}" for index, name in enumerate(order["onboot"])]
    services = [f"containers/services/{name}" for name in order["service"]]
    return onboot + services


@pytest.mark.parametrize("example", EXAMPLES)
def test_build_writes_listed_outputs(builds, example):
    build = builds.get(example)
    report = build.report()
    name = ASSEMBLIES[example]["name"]

    expected = sorted(
        pattern.format(name=name) for output in ASSEMBLIES[example]["outputs"] for pattern in OUTPUT_FILES[output]
    )
    reported = sorted(Path(row["path"]).name for row in report["outputs"])
    written = sorted(path.name for path in build.output.iterdir())

    assert reported == expected
    assert written == expected


@pytest.mark.parametrize("example", EXAMPLES)
def test_outputs_match_reported_size_and_digest(builds, example):
    build = builds.get(example)
    report = build.report()

    for row in report["outputs"]:
        path = Path(row["path"])
        assert path.parent == build.output.absolute()
        assert path.stat().st_size == row["size"], path
        assert f"sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}" == row["digest"], path


@pytest.mark.parametrize("example", INITRD_EXAMPLES)
def test_initrd_contains_lock_bundles(builds, example):
    build = builds.get(example)
    build.report()
    name = ASSEMBLIES[example]["name"]
    lock = read_yaml(build.project / "assembly.lock")

    names = set(read_newc_names(gzip.decompress((build.output / f"{name}-initrd.img").read_bytes())))
    missing = [
        f"{bundle}/{file}" for bundle in expected_bundles(lock) for file in ("config.json", "runtime.json")
        if f"{bundle}/{file}" not in names
    ]  # fmt: skip

    assert missing == []
    kernel = (build.output / f"{name}-kernel").read_bytes()
    if "debian" in lock_source(lock, "kernel"):
        assert kernel[:2] == b"MZ"  # a real x86 kernel from a Debian package: the bzImage starts as a PE file
    else:
        assert kernel == KERNEL_BYTES


def lock_source(lock: dict, stage: str) -> dict:
    """Return the source the lock records for the component of `stage`."""
    return next(item["source"] for item in lock["components"] if item["stage"] == stage)


@pytest.mark.parametrize("example", TAR_FILE_EXAMPLES)
def test_tar_contains_declared_files(builds, example):
    build = builds.get(example)
    build.report()
    assembly = ASSEMBLIES[example]

    with tarfile.open(build.output / f"{assembly['name']}.tar") as archive:
        names = archive.getnames()
        for declared in assembly["files"]:
            assert declared["path"] in names
            member = archive.getmember(declared["path"])
            if "contents" in declared:
                assert archive.extractfile(member).read().decode() == declared["contents"], declared["path"]
            if "mode" in declared:
                assert member.mode == int(declared["mode"], 8), declared["path"]


@pytest.mark.parametrize("example", EXAMPLES)
def test_rebuild_pulls_nothing(builds, example):
    references = image_references(builds.configs[example])
    first = builds.get(example, 1).report()
    second = builds.get(example, 2).report()

    local = [reference for reference in references if reference.startswith(LOCAL_IMAGE_PREFIX)]

    assert sorted(first["pulled"]) == sorted(set(references) - set(local))
    assert second["pulled"] == [], "the second build pulled images that the first stored in the same --cache"
    # The first build pinned every tag in the project's lock, so the second fetches by digest.
    assert sorted(reference.partition("@")[0] for reference in second["cached"]) == \
        sorted(set(references) - set(local))
    assert all("@sha256:" in reference for reference in second["cached"])
    assert [item["how"] for item in first["built"]] == ["built"] * len(local)
    assert [item["how"] for item in second["built"]] == ["cached"] * len(local)


@pytest.mark.parametrize("example", EXAMPLES)
def test_build_pins_every_image_in_the_lock(builds, example):
    build = builds.get(example, 1)
    build.report()

    lock = read_yaml(build.project / "assembly.lock")

    sources = [component["source"] for component in lock["components"] if "source" in component]
    unpinned = [source for source in sources if "path" not in source and not source.get("digest")]
    assert unpinned == []
