"""Measure resolving and unpacking the Debian packages of debian-containerd: moby-asm against apt-get and dpkg-deb.

The component `components/debian-containerd.yml` requests `containerd (>= 1.6.20~)` from
suite bookworm. Both sides read the same archive: the mirrors of the system's apt sources
that serve that suite (moby-asm's default), with the suite's `main` component only.

- moby-asm: `DebianPackages(DebianOptions(cache=STORE))` in this script's process, then
  `resolve` and `image` for linux/amd64. It fetches and verifies InRelease and the
  Packages index, chooses the packages, fetches and verifies the .debs into the content
  store, unpacks their data archives and writes a one-layer image into the store.
  moby-asm's modules are imported before the rounds, so no round pays for imports.
- apt: `apt-get install --download-only --no-install-recommends NAME` into a private
  root, then `dpkg-deb -x` of each downloaded .deb, one after the other, into one
  folder. The root has its own Dir::Etc, Dir::State and Dir::Cache and an empty dpkg status file.
  APT_CONFIG points at the root's apt.conf, so the system's apt.conf.d is not read. That
  config reads the system's trusted keyrings, turns off Translation files
  (Acquire::Languages "none"), and each command also gets
  `-o APT::Get::AllowUnauthenticated=false`. Its sources list has one entry per mirror
  that moby-asm reads, with the same suite, components and Signed-By keyrings. Each
  command is a new process, so apt's time includes starting apt-get and dpkg-deb.
  apt-get takes no version range on its command line, so it gets the package name and
  installs its candidate, the highest version. The printed lists show whether that
  matches moby-asm's choice.

Two cases, each measured once per round on each side. The side that runs first
alternates from round to round:

- cold: a new content store for moby-asm, and a new private root on which `apt-get
  update` runs before the install. Both download the index and every package.
- warm: the content store and the root of one unmeasured run before the rounds. apt
  skips `apt-get update`, finds every .deb in its archives folder and downloads nothing.
  moby-asm's image tag is removed before each run (`ContentStore.untag`), so it
  resolves again and unpacks again. Online, it still fetches InRelease and verifies its
  signature, because it checks for a newer index on every run. The extra row "warm,
  offline" uses `DebianOptions(offline=True)`, which reads the last verified InRelease
  from the store instead.

Not timed: removing the folders of a finished run. moby-asm removes its own scratch
folder before `image` returns, so that removal is timed. The script prints each side's package
list size and any difference between the lists, the files each side unpacked, and the
bytes each side downloaded in the last cold round. moby-asm's bytes are counted as HTTP
response bodies. apt's bytes are the totals of its `Fetched` lines (1 kB is 1000 bytes).

    python benchmarks/debian_packages.py [--rounds 3] [--profile]

The script runs only as root, the one way it was tried. apt-get then downloads as its
`_apt` user, so the work folder is made readable for others. Needs apt-get and dpkg-deb,
and access to the Debian archive that the apt sources name.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import yaml
from common import Timings, print_machine, print_timings, ratio

from moby_asm.debian.mirrors import Mirror, apt_sources, mirrors_for
from moby_asm.debian.model import DebianSource
from moby_asm.debian.packages import DebianOptions, DebianPackages
from moby_asm.store import ContentStore

COMPONENT = "debian-containerd"
COMPONENT_FILE = Path(__file__).resolve().parents[1] / "components" / f"{COMPONENT}.yml"
PLATFORM = "linux/amd64"
APT_OPTIONS = ["-o", "APT::Get::AllowUnauthenticated=false", "-q"]
FETCHED = re.compile(r"^Fetched ([\d.,]+) ([kMG]?)B", re.MULTILINE)
SI_FACTOR = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9}


def load_source() -> DebianSource:
    """Return the Debian source of the first version of the shipped containerd component."""
    document = yaml.safe_load(COMPONENT_FILE.read_text(encoding="utf-8"))
    return DebianSource.model_validate(document["versions"][0]["source"]["debian"])


@dataclass
class MobyRun:
    """One moby-asm resolve and image build: what it chose, what it wrote, and the bytes it downloaded."""

    store_root: Path
    offline: bool = False
    packages: list[str] = field(default_factory=list)
    reference: str = ""
    downloaded: int = 0

    def __call__(self, source: DebianSource) -> None:
        debian = DebianPackages(DebianOptions(cache=self.store_root, offline=self.offline))
        # NOTE: the hook is added to Archive's private session, because every download goes through it.
        debian.archive()._http().hooks["response"].append(self._count)
        record = debian.resolve(COMPONENT, source, PLATFORM)
        image = debian.image(COMPONENT, source, PLATFORM, record)
        if image.how != "built":
            raise SystemExit(f"moby-asm found {image.reference} in the store, but each timed run must build it")
        self.packages = [f"{package['name']}={package['version']}" for package in record["packages"]]
        self.reference = record["image"]

    def _count(self, response, *args, **kwargs) -> None:
        self.downloaded += len(response.content)

    def untag(self) -> None:
        ContentStore(self.store_root).untag(self.reference)


@dataclass
class AptRun:
    """A private apt root: `apt-get update` (cold only), a download-only install and `dpkg-deb -x` of the .debs."""

    root: Path
    mirrors: list[Mirror]
    source: DebianSource
    downloaded: int = 0

    def __post_init__(self) -> None:
        for folder in ("etc/apt.conf.d", "etc/preferences.d", "etc/sources.list.d", "state/lists/partial",
                       "cache/archives/partial"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        (self.root / "state" / "status").write_bytes(b"")
        (self.root / "etc" / "sources.list.d" / "bench.sources").write_text(self._sources(), encoding="utf-8")
        (self.root / "apt.conf").write_text(self._config(), encoding="utf-8")

    def _sources(self) -> str:
        paragraphs = [f"Types: deb\nURIs: {mirror.uri}\nSuites: {self.source.suite}\n"
                      f"Components: {' '.join(self.source.components)}\n"
                      f"Signed-By: {', '.join(str(path) for path in mirror.keyrings)}\n" for mirror in self.mirrors]
        return "\n".join(paragraphs)

    def _config(self) -> str:
        settings = {"Dir::Etc": self.root / "etc", "Dir::State": self.root / "state",
                    "Dir::Cache": self.root / "cache", "Dir::State::status": self.root / "state" / "status",
                    "Dir::Etc::Trusted": "/etc/apt/trusted.gpg", "Dir::Etc::TrustedParts": "/etc/apt/trusted.gpg.d",
                    "Acquire::Languages": "none"}
        return "".join(f'{key} "{value}";\n' for key, value in settings.items())

    def run(self, output: Path, update: bool) -> None:
        """Download the packages (after `apt-get update` when `update`) and unpack each into `output`."""
        if update:
            self._apt(["update"])
        self._apt(["install", "-y", "--download-only", "--no-install-recommends",
                   *(item["name"] for item in self.source.requested())])
        output.mkdir()
        for deb in self.debs():
            _check_call(["dpkg-deb", "-x", str(deb), str(output)], os.environ)

    def _apt(self, arguments: list[str]) -> None:
        environment = {**os.environ, "APT_CONFIG": str(self.root / "apt.conf"), "DEBIAN_FRONTEND": "noninteractive"}
        output = _check_call(["apt-get", *APT_OPTIONS, *arguments], environment)
        for amount, unit in FETCHED.findall(output):
            self.downloaded += int(float(amount.replace(",", "")) * SI_FACTOR[unit])

    def debs(self) -> list[Path]:
        return sorted((self.root / "cache" / "archives").glob("*.deb"))

    def packages(self) -> list[str]:
        """Return NAME=VERSION of each downloaded .deb, read from its file name (apt writes ':' as %3a)."""
        packages = []
        for deb in self.debs():
            name, version, _ = deb.name.replace("%3a", ":").split("_")
            packages.append(f"{name}={version}")
        return packages


def _check_call(command: list[str], environment: dict[str, str]) -> str:
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {result.returncode}:\n"
                         f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result.stdout


class Bench:
    """The work folder, the component's source, the warm state of both sides and the last cold runs."""

    def __init__(self, work: Path, source: DebianSource):
        self.work = work
        self.source = source
        self.mirrors = mirrors_for(apt_sources(), source.suite, COMPONENT)
        self.count = 0
        self.warm_moby = MobyRun(self.folder("store"))
        self.warm_moby(source)
        self.warm_apt = AptRun(self.folder("apt"), self.mirrors, source)
        self.warm_apt.run(self.folder("unpacked"), update=True)
        self.cold_moby: MobyRun | None = None
        self.cold_apt: AptRun | None = None

    def folder(self, name: str) -> Path:
        """Return a new path in the work folder without creating it."""
        self.count += 1
        return self.work / f"{name}-{self.count}"

    def step(self, case: str, side: str) -> tuple[Callable[[], None], list[Path]]:
        """Return the run to time for a case and side, and the folders to remove after it."""
        if side == "moby-asm":
            return self._moby_cold() if case == "cold" else self._moby_warm(offline=case == "warm, offline")
        return self._apt_cold() if case == "cold" else self._apt_warm()

    def _moby_cold(self) -> tuple[Callable[[], None], list[Path]]:
        self.cold_moby = MobyRun(self.folder("store"))
        return partial(self.cold_moby, self.source), [self.cold_moby.store_root]

    def _moby_warm(self, offline: bool) -> tuple[Callable[[], None], list[Path]]:
        self.warm_moby.untag()
        return partial(MobyRun(self.warm_moby.store_root, offline), self.source), []

    def _apt_cold(self) -> tuple[Callable[[], None], list[Path]]:
        self.cold_apt = AptRun(self.folder("apt"), self.mirrors, self.source)
        output = self.folder("unpacked")
        return partial(self.cold_apt.run, output, update=True), [self.cold_apt.root, output]

    def _apt_warm(self) -> tuple[Callable[[], None], list[Path]]:
        output = self.folder("unpacked")
        return partial(self.warm_apt.run, output, update=False), [output]


CASES = ("cold", "warm", "warm, offline")
PEER = "apt-get + dpkg-deb"


def measure(bench: Bench, rounds: int) -> dict[tuple[str, str], Timings]:
    """Time every case and side `rounds` times. The side that runs first alternates between rounds."""
    timings = {(case, side): Timings(f"{side}, {case}") for case in CASES for side in ("moby-asm", PEER)
               if not (side == PEER and case == "warm, offline")}
    for round_number in range(rounds):
        sides = ("moby-asm", PEER) if round_number % 2 == 0 else (PEER, "moby-asm")
        for case in CASES:
            for side in sides:
                if (case, side) not in timings:
                    continue
                run, leftovers = bench.step(case, side)
                timings[case, side].measure(run)
                for folder in leftovers:
                    shutil.rmtree(folder)
    return timings


def compare_outputs(bench: Bench) -> None:
    """Print the package lists, the unpacked files and the downloaded bytes of both sides."""
    moby_packages, apt_packages = bench.warm_moby.packages, bench.warm_apt.packages()
    print(f"packages: moby-asm {len(moby_packages)}, apt {len(apt_packages)}")
    print(f"  moby-asm: {' '.join(moby_packages)}")
    print(f"  apt:      {' '.join(apt_packages)}")
    only_moby, only_apt = sorted(set(moby_packages) - set(apt_packages)), sorted(set(apt_packages) - set(moby_packages))
    if only_moby or only_apt:
        print(f"  only moby-asm: {' '.join(only_moby) or '-'}; only apt: {' '.join(only_apt) or '-'}")
    layer_files, layer_bytes = layer_contents(bench.warm_moby)
    output = bench.folder("unpacked")
    bench.warm_apt.run(output, update=False)
    folder_files, folder_bytes = folder_contents(output)
    shutil.rmtree(output)
    print(f"unpacked regular files: moby-asm layer {layer_files} ({layer_bytes / 1e6:.1f} MB), "
          f"dpkg-deb folder {folder_files} ({folder_bytes / 1e6:.1f} MB)")
    if bench.cold_moby is not None and bench.cold_apt is not None:
        print(f"downloaded in the last cold round: moby-asm {bench.cold_moby.downloaded / 1e6:.2f} MB, "
              f"apt {bench.cold_apt.downloaded / 1e6:.2f} MB (MB is 10^6 bytes)")


def layer_contents(run: MobyRun) -> tuple[int, int]:
    """Return the number and total size of the regular files in the layer of the image `run` built."""
    store = ContentStore(run.store_root)
    manifest = store.read_json(store.resolve(run.reference).digest)
    with tarfile.open(store.blob_path(manifest["layers"][0]["digest"])) as layer:
        files = [member for member in layer if member.isfile()]
    return len(files), sum(member.size for member in files)


def folder_contents(folder: Path) -> tuple[int, int]:
    files = [path for path in folder.rglob("*") if path.is_file() and not path.is_symlink()]
    return len(files), sum(path.stat().st_size for path in files)


def profile(bench: Bench, rows: int = 25) -> None:
    """Print cProfile summaries of one cold and one warm (online) moby-asm run."""
    for case in ("cold", "warm"):
        run, leftovers = bench.step(case, "moby-asm")
        profiler = cProfile.Profile()
        profiler.runcall(run)
        for folder in leftovers:
            shutil.rmtree(folder)
        print(f"\ncProfile of one moby-asm {case} run (the profiler slows Python code down, so read shares)")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(rows)
        stats.sort_stats("tottime").print_stats(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per case (default 3)")
    parser.add_argument("--profile", action="store_true",
                        help="also print cProfile summaries of one cold and one warm moby-asm run")
    options = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("this benchmark was tried only as root, so it requires root; run it with sudo")
    print_machine()
    source = load_source()
    with tempfile.TemporaryDirectory(prefix="moby-asm-bench-") as work:
        # apt's _apt user must reach the partial folders below the work folder.
        os.chmod(work, 0o755)
        bench = Bench(Path(work), source)
        timings = measure(bench, options.rounds)
        print(f"component {COMPONENT}: {', '.join(source.packages)} from {source.suite}; "
              f"{options.rounds} rounds per case")
        compare_outputs(bench)
        print_timings(list(timings.values()))
        for case in CASES:
            peer = timings[case.split(",")[0], PEER]
            print(f"ratio moby-asm, {case} / {peer.label}: {ratio(timings[case, 'moby-asm'], peer)}")
        if options.profile:
            profile(bench)


if __name__ == "__main__":
    main()
