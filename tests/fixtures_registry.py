"""A real OCI registry on 127.0.0.1 and small busybox images pushed to it, for tests in any folder.

The registry is CNCF distribution as Debian packages it (`docker-registry`), with
filesystem storage in a folder the caller owns. Images are built with umoci from
Debian's static busybox (package busybox-static) and pushed with skopeo. Every address
used here is on 127.0.0.1.

    url, stop = start_registry(tmp_path)
    reference = make_busybox_image(url, "test/busybox", "v1", {"net": "host"})
    stop()
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
BUSYBOX_APPLETS = ("sh", "echo", "cat", "ls", "sleep", "true")
LABEL_CONFIG = "org.mobyproject.config"
STARTUP_TIMEOUT_SECONDS = 15
COMMAND_TIMEOUT_SECONDS = 120
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"
)
REQUIRED_TOOLS = {
    "docker-registry": "Debian package docker-registry",
    "umoci": "Debian package umoci",
    "skopeo": "Debian package skopeo",
}

# Requests to 127.0.0.1 must not go through a proxy configured in the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class MissingTool(Exception):
    """A program the fixtures need is not installed; the message names the Debian package."""


def check_tools() -> None:
    """Raise MissingTool unless docker-registry, umoci, skopeo and /bin/busybox are installed."""
    for program, package in REQUIRED_TOOLS.items():
        if shutil.which(program) is None:
            raise MissingTool(f"{program} is not installed ({package})")
    if not BUSYBOX.is_file():
        raise MissingTool(f"{BUSYBOX} is missing (Debian package busybox-static)")


def skip_unless_tools() -> None:
    """Skip the calling test or fixture, naming the missing Debian package, unless check_tools passes."""
    import pytest

    try:
        check_tools()
    except MissingTool as missing:
        pytest.skip(str(missing))


@dataclass
class RunningRegistry:
    """A registry process: `url` is http://127.0.0.1:PORT, `host` 127.0.0.1:PORT, `storage` its data folder."""

    url: str
    host: str
    storage: Path
    log: Path
    process: subprocess.Popen

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def blob_file(self, digest: str) -> Path:
        """Return the file in which the registry's filesystem driver keeps a blob."""
        hex_digest = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_digest[:2] / hex_digest / "data"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_registry(folder: Path, *, htpasswd: Path | None = None, read_only: bool = False) -> RunningRegistry:
    """Start a registry on a free port of 127.0.0.1, storing into `folder`/storage; wait until /v2/ responds."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = folder / "config.yml"
    config.write_text(_registry_config(folder / "storage", port, htpasswd, read_only))
    log = folder / "registry.log"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("REGISTRY_")}
    with open(log, "wb") as output:
        process = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=output, stderr=subprocess.STDOUT, env=environment
        )
    registry = RunningRegistry(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", folder / "storage", log, process)
    try:
        _wait_until_ready(registry)
    except BaseException:
        registry.stop()
        raise
    return registry


def start_registry(tmp_path: Path, htpasswd: Path | None = None) -> tuple[str, Callable[[], None]]:
    """Start a registry storing under `tmp_path`/storage and return its URL and a function that stops it."""
    registry = run_registry(tmp_path, htpasswd=htpasswd)
    return registry.url, registry.stop


def _registry_config(storage: Path, port: int, htpasswd: Path | None, read_only: bool = False) -> str:
    config = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if read_only:
        config["storage"]["maintenance"] = {"readonly": {"enabled": True}}
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "moby-asm-tests", "path": str(htpasswd)}}
    return json.dumps(config, indent=2)  # JSON is valid YAML


def _wait_until_ready(registry: RunningRegistry) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if registry.process.poll() is not None:
            raise RuntimeError(f"docker-registry exited early: {registry.log.read_text(errors='replace')}")
        try:
            with _DIRECT.open(f"{registry.url}/v2/", timeout=1):
                return
        except urllib.error.HTTPError as error:
            if error.code == 401:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"docker-registry did not answer on {registry.url} within {STARTUP_TIMEOUT_SECONDS} s")


def htpasswd_line(user: str, password: str) -> str | None:
    """Return an htpasswd line with a bcrypt hash (the only kind distribution accepts), or None without a tool."""
    try:
        import bcrypt
    except ImportError:
        bcrypt = None
    if bcrypt is not None:
        return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}\n"
    if shutil.which("htpasswd"):
        completed = _run(["htpasswd", "-nbB", user, password])
        return completed.stdout.strip() + "\n"
    return None


def _run(command: list[str]) -> subprocess.CompletedProcess:
    completed = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with exit code {completed.returncode}: {completed.stderr}")
    return completed


# Images


def build_busybox_layout(
    layout: Path, tag: str, *, architecture: str = "amd64", label_config: dict | None = None
) -> None:
    """Add an image `tag` to the OCI layout at `layout` (created if missing): busybox, its applets and a unique file.

    The file /etc/image-id contains random bytes, so no two images share a layer digest and
    damaging one image's blobs in the registry leaves the others intact.
    """
    if not (layout / "index.json").exists():
        _run(["umoci", "init", "--layout", str(layout)])
    image = f"{layout}:{tag}"
    _run(["umoci", "new", "--image", image])
    with tempfile.TemporaryDirectory(dir=layout.parent) as work:
        bundle = Path(work) / "bundle"
        rootless = ["--rootless"] if os.geteuid() != 0 else []
        _run(["umoci", "unpack", *rootless, "--image", image, str(bundle)])
        _fill_rootfs(bundle / "rootfs")
        _run(["umoci", "repack", "--image", image, str(bundle)])
    _run(["umoci", "config", "--image", image, *_config_arguments(architecture, label_config)])


def _fill_rootfs(rootfs: Path) -> None:
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc").mkdir(exist_ok=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    for applet in BUSYBOX_APPLETS:
        (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc" / "image-id").write_text(secrets.token_hex(16) + "\n")


def _config_arguments(architecture: str, label_config: dict | None) -> list[str]:
    arguments = [
        "--architecture", architecture,
        "--os", "linux",
        "--config.entrypoint", "/bin/sh",
        "--config.cmd", "-c",
        "--config.cmd", "echo hello from busybox",
        "--config.env", "PATH=/bin",
        "--config.env", "GREETING=hello",
        "--config.workingdir", "/",
        "--config.label", "org.opencontainers.image.title=busybox test image",
    ]  # fmt: skip
    if label_config is not None:
        arguments += ["--config.label", f"{LABEL_CONFIG}={json.dumps(label_config, sort_keys=True)}"]
    return arguments


def push(source: str, registry_url: str, repo: str, tag: str, *extra: str) -> str:
    """Copy `source` (a skopeo image name such as oci:LAYOUT:TAG) to the registry; return the reference."""
    host = registry_host(registry_url)
    destination = f"{host}/{repo}:{tag}"
    _run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", *extra, source, f"docker://{destination}"])
    return destination


def make_busybox_image(
    registry_url: str,
    repo: str,
    tag: str,
    label_config: dict | None = None,
    *,
    architecture: str = "amd64",
    docker_format: bool = False,
    push_options: Sequence[str] = (),
) -> str:
    """Build a busybox image and push it as `repo`:`tag`; return the reference HOST:PORT/REPO:TAG.

    With `docker_format`, skopeo converts it to Docker v2 schema 2 media types.
    `push_options` go to `skopeo copy`, such as ["--dest-creds", "USER:PASSWORD"].
    """
    with tempfile.TemporaryDirectory() as work:
        layout = Path(work) / "layout"
        build_busybox_layout(layout, tag, architecture=architecture, label_config=label_config)
        extra = ["--format", "v2s2"] if docker_format else []
        return push(f"oci:{layout}:{tag}", registry_url, repo, tag, *extra, *push_options)


def make_multiplatform_image(
    registry_url: str,
    repo: str,
    tag: str,
    platforms: Iterable[tuple[str, str | None]] = (("amd64", None), ("arm64", "v8")),
    label_config: dict | None = None,
) -> str:
    """Push an OCI image index with one busybox image per (architecture, variant); return the reference.

    Every image contains the same amd64 busybox: the architecture is only data here.
    """
    with tempfile.TemporaryDirectory() as work:
        layout = Path(work) / "layout"
        entries = []
        for architecture, variant in platforms:
            build_busybox_layout(layout, architecture, architecture=architecture, label_config=label_config)
            entries.append((_layout_entry(layout, architecture), architecture, variant))
        _add_index(layout, tag, entries)
        return push(f"oci:{layout}:{tag}", registry_url, repo, tag, "--all")


def _layout_entry(layout: Path, name: str) -> dict:
    index = json.loads((layout / "index.json").read_text())
    for entry in index["manifests"]:
        if entry.get("annotations", {}).get("org.opencontainers.image.ref.name") == name:
            return {key: entry[key] for key in ("mediaType", "digest", "size")}
    raise KeyError(f"{name} is not in {layout}/index.json")


def _add_index(layout: Path, tag: str, entries: list[tuple[dict, str, str | None]]) -> None:
    manifests = []
    for entry, architecture, variant in entries:
        platform = {"architecture": architecture, "os": "linux"}
        if variant:
            platform["variant"] = variant
        manifests.append({**entry, "platform": platform})
    raw = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}
    ).encode()
    digest = hashlib.sha256(raw).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(raw)
    layout_index = json.loads((layout / "index.json").read_text())
    layout_index["manifests"].append(
        {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": f"sha256:{digest}",
            "size": len(raw),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }
    )
    (layout / "index.json").write_text(json.dumps(layout_index))


# Reading the registry directly


def registry_host(registry_url: str) -> str:
    """Return HOST:PORT from http://HOST:PORT (a bare HOST:PORT is returned as it is)."""
    return registry_url.removeprefix("http://").removeprefix("https://").rstrip("/")


def fetch_manifest(registry_url: str, repo: str, target: str) -> tuple[bytes, str]:
    """GET a manifest by tag or digest from a registry without auth; return its bytes and content type."""
    url = f"http://{registry_host(registry_url)}/v2/{repo}/manifests/{target}"
    request = urllib.request.Request(url, headers={"Accept": MANIFEST_TYPES})
    with _DIRECT.open(request, timeout=10) as response:
        return response.read(), response.headers.get("Content-Type", "")


def manifest_digest(registry_url: str, repo: str, target: str) -> str:
    """Return the sha256 digest of the manifest or index that `target` names."""
    raw, _ = fetch_manifest(registry_url, repo, target)
    return f"sha256:{hashlib.sha256(raw).hexdigest()}"


def isolate_registry_access(patch, docker_config: Path) -> None:
    """Keep requests to 127.0.0.1 off any proxy and point Docker's configuration at an empty folder."""
    patch.setenv("NO_PROXY", "127.0.0.1,localhost,::1")
    patch.setenv("no_proxy", "127.0.0.1,localhost,::1")
    patch.setenv("DOCKER_CONFIG", str(docker_config))
