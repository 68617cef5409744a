"""Measure `moby-asm build` of a component built from a Docker build context against `docker build` + `docker save`.

The peer is what a build script without moby-asm runs to get a component image out of
the engine: `docker build -t TAG CONTEXT` then `docker save TAG -o FILE`. moby-asm runs
`python -m moby_asm build PROJECT --cache STORE -o OUT --json`, which also assembles the
platform's root filesystem tar around the image. Both run against the same private
Docker Engine (DOCKER_HOST, else a dockerd started here as root on a unix socket, with
no bridge network). The context contains the host's static busybox and DATA_MB of random
data. Two cases, each measured over several rounds:

- unchanged: nothing changed since the last build (the engine's build cache hits, and
  moby-asm finds the image in its content store without asking the engine);
- changed: one small file of the context changed before each run, so both rebuild the
  last layer and export the image again.

    python benchmarks/context_build.py [--rounds 5] [--data-mb 32]

Needs docker.io and busybox-static (Debian packages).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import Timings, print_machine, print_timings, ratio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures_engine import busybox_context, start_engine  # noqa: E402

TAG = "bench-context:latest"


def write_project(folder: Path, data_mb: int) -> Path:
    context = busybox_context(folder / "components" / "app", ["/bin/sh"],
                              "COPY data.bin /data.bin\nCOPY stamp.txt /stamp.txt\n")
    (context / "data.bin").write_bytes(os.urandom(data_mb << 20))
    (context / "stamp.txt").write_text("0\n")
    (folder / "components" / "app.yml").write_text(
        "name: app\nversions:\n  - version: 1.0.0\n    stage: onboot\n"
        "    source:\n      build:\n        context: app\n")
    (folder / "assembly.yml").write_text("name: bench\nrequires: [app]\noutputs: [tar]\n")
    return context


def run(command: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data-mb", type=int, default=32)
    options = parser.parse_args()
    print_machine()
    engine = start_engine() if "DOCKER_HOST" not in os.environ else None
    url = os.environ.get("DOCKER_HOST") or engine.url
    environment = {**os.environ, "DOCKER_HOST": url, "NO_COLOR": "1"}
    try:
        with tempfile.TemporaryDirectory(prefix="moby-asm-bench-") as work:
            measure(Path(work), options, environment)
    finally:
        if engine is not None:
            engine.stop()


def measure(work: Path, options, environment: dict[str, str]) -> None:
    project = work / "project"
    context = write_project(project, options.data_mb)
    moby = [sys.executable, "-m", "moby_asm", "build", str(project), "--cache", str(work / "store"),
            "-o", str(work / "out"), "--build-network", "none", "--json"]
    peer_build = ["docker", "build", "--network", "none", "-q", "-t", TAG, str(context)]
    peer_save = ["docker", "save", TAG, "-o", str(work / "image.tar")]

    def peer() -> None:
        run(peer_build, environment)
        run(peer_save, environment)

    def moby_asm() -> None:
        run(moby, environment)

    peer()
    moby_asm()
    report = json.loads(run(moby, environment).stdout)
    assert report["built"][0]["how"] == "cached", "an unchanged context must not be built again"
    results = []
    for case in ("unchanged", "changed"):
        moby_timings, peer_timings = Timings(f"moby-asm, {case}"), Timings(f"docker build + save, {case}")
        for round_number in range(options.rounds):
            for timings, function in ((moby_timings, moby_asm), (peer_timings, peer)):
                if case == "changed":
                    (context / "stamp.txt").write_text(f"{case} {round_number} {timings.label}\n")
                timings.measure(function)
        results.append((moby_timings, peer_timings))
    print(f"context: busybox + {options.data_mb} MB of random data; {options.rounds} rounds per case")
    print_timings([row for pair in results for row in pair])
    for moby_timings, peer_timings in results:
        print(f"ratio {moby_timings.label} / {peer_timings.label}: {ratio(moby_timings, peer_timings)}")


if __name__ == "__main__":
    main()
