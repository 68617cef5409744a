"""Fixtures for content store and registry tests: real registries on 127.0.0.1 and busybox images in them.

The session starts one open registry and, when an htpasswd file can be made, one that
requires basic auth. Images are built once per session. Every test gets an empty store
and a client with short timeouts and a Docker config file that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fixtures_registry
import pytest

from moby_asm.registry import RegistryClient
from moby_asm.store import ContentStore

from .proxy import RegistryProxy

LABEL_CONFIG = {"binds": ["/dev:/dev"], "capabilities": ["CAP_SYS_ADMIN"], "net": "host"}
AUTH_USER = "builder"
AUTH_PASSWORD = "correct horse battery staple"
CLOSED_PROXY = "http://127.0.0.1:9"
"""A loopback port with no server: any request that is not for a loopback host fails at once."""


@pytest.fixture(scope="package", autouse=True)
def loopback_only() -> Iterator[None]:
    """Send requests for any non-loopback host to a closed loopback port, so no test can reach another host."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
            patch.setenv(name, CLOSED_PROXY)
        for name in ("NO_PROXY", "no_proxy"):
            patch.setenv(name, "127.0.0.1,localhost,::1")
        yield


@pytest.fixture(scope="session")
def registry_tools() -> None:
    try:
        fixtures_registry.check_tools()
    except fixtures_registry.MissingTool as missing:
        pytest.skip(str(missing))


@pytest.fixture(scope="session")
def registry(registry_tools, tmp_path_factory) -> Iterator[fixtures_registry.RunningRegistry]:
    """An open registry on 127.0.0.1 for the whole session."""
    running = fixtures_registry.run_registry(tmp_path_factory.mktemp("registry"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def auth_registry(registry_tools, tmp_path_factory) -> Iterator[fixtures_registry.RunningRegistry]:
    """A registry that requires HTTP basic auth as AUTH_USER with AUTH_PASSWORD."""
    line = fixtures_registry.htpasswd_line(AUTH_USER, AUTH_PASSWORD)
    if line is None:
        pytest.skip("no bcrypt hasher: install the Python package bcrypt or Debian's apache2-utils (htpasswd)")
    folder = tmp_path_factory.mktemp("auth-registry")
    htpasswd = folder / "htpasswd"
    htpasswd.write_text(line)
    running = fixtures_registry.run_registry(folder, htpasswd=htpasswd)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def busybox_image(registry) -> str:
    """An OCI busybox image for linux/amd64 with an org.mobyproject.config label."""
    return fixtures_registry.make_busybox_image(registry.url, "test/busybox", "v1", LABEL_CONFIG)


@pytest.fixture(scope="session")
def multiplatform_image(registry) -> str:
    """An OCI image index with linux/amd64 and linux/arm64/v8 images."""
    return fixtures_registry.make_multiplatform_image(registry.url, "test/multi", "v1")


@pytest.fixture(scope="session")
def docker_image(registry) -> str:
    """A busybox image with Docker v2 schema 2 media types."""
    return fixtures_registry.make_busybox_image(registry.url, "test/docker-format", "v1", docker_format=True)


@pytest.fixture(scope="session")
def private_image(auth_registry) -> str:
    """A busybox image in the registry that requires basic auth."""
    credentials = f"{AUTH_USER}:{AUTH_PASSWORD}"
    return fixtures_registry.make_busybox_image(
        auth_registry.url, "private/busybox", "v1", push_options=["--dest-creds", credentials]
    )


@pytest.fixture
def store(tmp_path) -> ContentStore:
    return ContentStore.open(tmp_path / "store")


@pytest.fixture
def docker_config(tmp_path) -> Path:
    """Path of a Docker config file that does not exist yet; tests write credentials into it."""
    return tmp_path / "docker" / "config.json"


@pytest.fixture
def client(docker_config) -> RegistryClient:
    return RegistryClient(docker_config=docker_config, retries=2, timeout=5.0, backoff=0.01)


@pytest.fixture
def proxy(registry) -> Iterator[RegistryProxy]:
    """A recording proxy in front of the open registry; references through it use `proxy.host`."""
    running = RegistryProxy(registry.url)
    yield running
    running.stop()
