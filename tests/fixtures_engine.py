"""A private Docker Engine for the tests: the one .ci/run started, or a dockerd started here.

dockerd listens only on a unix socket in a temporary folder, keeps its data there, and
gets no bridge, no iptables rules and no masquerading, so containers have network
`none` or `host` and nothing leaves loopback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ENGINE_VARIABLE = "MOBY_ASM_TEST_DOCKER_HOST"
START_SECONDS = 60


class EngineMissing(Exception):
    """dockerd cannot run here; the message gives the reason."""


@dataclass
class RunningEngine:
    url: str
    folder: Path | None
    process: subprocess.Popen | None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.folder is not None:
            subprocess.run(["umount", "-R", str(self.folder / "root")], capture_output=True, check=False)
            shutil.rmtree(self.folder, ignore_errors=True)


def dockerd_command(folder: Path) -> list[str]:
    """The dockerd command line that keeps the engine private to `folder` and off every network."""
    return ["dockerd", "--host", f"unix://{folder}/docker.sock", "--data-root", str(folder / "root"),
            "--exec-root", str(folder / "exec"), "--pidfile", str(folder / "docker.pid"),
            "--bridge=none", "--iptables=false", "--ip-masq=false", "--ip6tables=false"]


def start_engine() -> RunningEngine:
    """Return the engine named by MOBY_ASM_TEST_DOCKER_HOST, else start dockerd; raise EngineMissing."""
    given = os.environ.get(ENGINE_VARIABLE)
    if given:
        wait_for_engine(given, None)
        return RunningEngine(given, None, None)
    if shutil.which("dockerd") is None:
        raise EngineMissing("dockerd is not installed (Debian package docker.io)")
    if os.geteuid() != 0:
        raise EngineMissing("dockerd needs root; run the tests as root or set MOBY_ASM_TEST_DOCKER_HOST")
    # A short folder name: dockerd's containerd sockets live under it and unix paths are limited.
    folder = Path(tempfile.mkdtemp(prefix="/tmp/mad-"))
    log = open(folder / "dockerd.log", "wb")
    process = subprocess.Popen(dockerd_command(folder), stdout=log, stderr=subprocess.STDOUT)
    engine = RunningEngine(f"unix://{folder}/docker.sock", folder, process)
    try:
        wait_for_engine(engine.url, process)
    except BaseException:
        engine.stop()
        raise
    return engine


def wait_for_engine(url: str, process: subprocess.Popen | None) -> None:
    import docker

    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            docker.DockerClient(base_url=url, version="auto", timeout=5).ping()
            return
        except Exception as error:
            if process is not None and process.poll() is not None:
                raise EngineMissing(f"dockerd exited with code {process.returncode}") from error
            if time.monotonic() > deadline:
                raise EngineMissing(f"no Docker Engine answered at {url} within {START_SECONDS} s: {error}") from error
            time.sleep(0.3)


def busybox_context(folder: Path, command: list[str], extra: str = "") -> Path:
    """Write a build context whose image is the host's static busybox and `command`, FROM scratch."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox_binary(), folder / "busybox")
    quoted = ", ".join(f'"{part}"' for part in command)
    (folder / "Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        f"{extra}CMD [{quoted}]\n")
    return folder


def busybox_binary() -> Path:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if Path(candidate).is_file():
            return Path(candidate)
    raise EngineMissing("busybox is not installed (Debian package busybox-static)")


def tag_busybox_base(url: str, tag: str, folder: Path) -> None:
    """Build the host's busybox as image `tag` in the engine, to stand in for Docker Hub's busybox."""
    import docker

    client = docker.DockerClient(base_url=url, version="auto")
    context = busybox_context(folder, ["sh"])
    client.images.build(path=str(context), tag=tag, rm=True, network_mode="none")
