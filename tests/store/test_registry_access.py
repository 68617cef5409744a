"""Registry access: credentials, bearer tokens, mirrors, retries, timeouts and logging."""

from __future__ import annotations

import base64
import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import fixtures_registry
import pytest

from moby_asm.registry import (
    CredentialsError,
    RegistryClient,
    RegistryTimeout,
    RegistryUnavailable,
    Unauthorized,
)

from .conftest import AUTH_PASSWORD, AUTH_USER


def write_config(path: Path, config: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))


def basic_auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def install_helper(folder: Path, name: str, host: str, user: str, password: str) -> None:
    """Write docker-credential-NAME, which returns credentials for `host` only."""
    folder.mkdir(parents=True, exist_ok=True)
    helper = folder / f"docker-credential-{name}"
    answer = json.dumps({"ServerURL": host, "Username": user, "Secret": password})
    helper.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "assert sys.argv[1:] == ['get']\n"
        f"if sys.stdin.read().strip() != {host!r}:\n"
        "    print('credentials not found in native keychain')\n"
        "    sys.exit(1)\n"
        f"print({answer!r})\n"
    )
    helper.chmod(0o755)


# Basic auth (distribution's htpasswd)


def test_unauthorized_without_credentials(client, store, private_image, auth_registry):
    with pytest.raises(Unauthorized) as caught:
        client.pull(private_image, "linux/amd64", store)

    assert caught.value.status == 401
    assert caught.value.host == auth_registry.host
    assert caught.value.reference == private_image
    assert f"docker login {auth_registry.host}" in str(caught.value)


def test_pull_with_auths_credentials(client, store, private_image, auth_registry, docker_config):
    write_config(docker_config, {"auths": {auth_registry.host: {"auth": basic_auth(AUTH_USER, AUTH_PASSWORD)}}})

    image = client.pull(private_image, "linux/amd64", store)

    assert store.has_blob(image.layers[0].digest)


def test_auths_key_written_as_url(client, store, private_image, auth_registry, docker_config):
    key = f"http://{auth_registry.host}/v2/"
    write_config(docker_config, {"auths": {key: {"auth": basic_auth(AUTH_USER, AUTH_PASSWORD)}}})

    image = client.pull(private_image, "linux/amd64", store)

    assert image.config["os"] == "linux"


def test_wrong_password_unauthorized(client, store, private_image, auth_registry, docker_config):
    write_config(docker_config, {"auths": {auth_registry.host: {"auth": basic_auth(AUTH_USER, "wrong")}}})

    with pytest.raises(Unauthorized) as caught:
        client.pull(private_image, "linux/amd64", store)

    assert caught.value.status == 401
    assert "were rejected" in str(caught.value)


def test_credentials_from_creds_store(
    client, store, private_image, auth_registry, docker_config, tmp_path, monkeypatch
):
    install_helper(tmp_path / "bin", "testing", auth_registry.host, AUTH_USER, AUTH_PASSWORD)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"), prepend=":")
    write_config(docker_config, {"credsStore": "testing", "auths": {auth_registry.host: {}}})

    image = client.pull(private_image, "linux/amd64", store)

    assert store.resolve(private_image).digest == image.manifest.digest


def test_credentials_from_cred_helpers(
    client, store, private_image, auth_registry, docker_config, tmp_path, monkeypatch
):
    install_helper(tmp_path / "bin", "per-host", auth_registry.host, AUTH_USER, AUTH_PASSWORD)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"), prepend=":")
    write_config(docker_config, {"credHelpers": {auth_registry.host: "per-host"}})

    image = client.pull(private_image, "linux/amd64", store)

    assert image.reference == private_image


def test_missing_credential_helper(client, store, private_image, auth_registry, docker_config):
    write_config(docker_config, {"credsStore": "not-installed-anywhere"})

    with pytest.raises(CredentialsError) as caught:
        client.pull(private_image, "linux/amd64", store)

    assert caught.value.helper == "docker-credential-not-installed-anywhere"
    assert caught.value.host == auth_registry.host


def test_docker_config_variable(store, private_image, auth_registry, tmp_path, monkeypatch):
    folder = tmp_path / "from-variable"
    write_config(
        folder / "config.json", {"auths": {auth_registry.host: {"auth": basic_auth(AUTH_USER, AUTH_PASSWORD)}}}
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))

    image = RegistryClient(retries=0, timeout=5).pull(private_image, "linux/amd64", store)

    assert image.reference == private_image


def test_debug_log_has_no_secrets(client, store, private_image, auth_registry, docker_config, caplog):
    write_config(docker_config, {"auths": {auth_registry.host: {"auth": basic_auth(AUTH_USER, AUTH_PASSWORD)}}})

    with caplog.at_level(logging.DEBUG):
        client.pull(private_image, "linux/amd64", store)

    assert f"GET http://{auth_registry.host}/v2/private/busybox/manifests/v1" in caplog.text
    assert AUTH_PASSWORD not in caplog.text
    assert basic_auth(AUTH_USER, AUTH_PASSWORD) not in caplog.text


# Bearer tokens, as Docker Hub requires them


def test_bearer_token_per_repository(client, store, proxy, busybox_image, multiplatform_image, docker_config):
    proxy.require_bearer(AUTH_USER, AUTH_PASSWORD)
    write_config(docker_config, {"auths": {proxy.host: {"auth": basic_auth(AUTH_USER, AUTH_PASSWORD)}}})

    client.pull(proxy.host + "/test/busybox:v1", "linux/amd64", store)
    client.pull(proxy.host + "/test/multi:v1", "linux/amd64", store)

    assert proxy.issued_tokens == ["token-for-repository:test/busybox:pull", "token-for-repository:test/multi:pull"]
    assert len(list(store.iter_images())) == 2


def test_bearer_without_credentials(client, store, proxy, busybox_image):
    proxy.require_bearer(AUTH_USER, AUTH_PASSWORD)

    with pytest.raises(Unauthorized) as caught:
        client.pull(proxy.host + "/test/busybox:v1", "linux/amd64", store)

    assert caught.value.host == proxy.host
    assert proxy.issued_tokens == []


# Mirrors


def test_mirror_serves_docker_hub_name(store, proxy, registry, docker_config):
    fixtures_registry.make_busybox_image(registry.url, "library/busybox", "mirror-test")
    client = RegistryClient(mirrors={"docker.io": proxy.host}, docker_config=docker_config, retries=0, timeout=5)

    image = client.pull("busybox:mirror-test", "linux/amd64", store)

    assert image.reference == "docker.io/library/busybox:mirror-test"
    assert store.resolve("docker.io/library/busybox:mirror-test") is not None
    assert proxy.paths("manifests") == ["/v2/library/busybox/manifests/mirror-test"]


def test_mirror_for_index_docker_io_spelling(store, registry, docker_config):
    fixtures_registry.make_busybox_image(registry.url, "linuxkit/busybox", "mirror-test")
    client = RegistryClient(mirrors={"index.docker.io": f"http://{registry.host}/"}, docker_config=docker_config)

    image = client.pull("linuxkit/busybox:mirror-test", "linux/amd64", store)

    assert image.reference == "docker.io/linuxkit/busybox:mirror-test"


# Failures and retries


def test_unreachable_port_unavailable(store, docker_config):
    port = fixtures_registry.free_port()
    client = RegistryClient(docker_config=docker_config, retries=2, timeout=2, backoff=0.01)
    started = time.monotonic()

    with pytest.raises(RegistryUnavailable) as caught:
        client.pull(f"127.0.0.1:{port}/test/busybox:v1", "linux/amd64", store)

    assert caught.value.attempts == 3
    assert caught.value.host == f"127.0.0.1:{port}"
    assert "refused" in caught.value.reason.lower()
    assert not isinstance(caught.value, RegistryTimeout)
    assert time.monotonic() - started < 5


def test_silent_server_times_out(store, docker_config):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        host = f"127.0.0.1:{silent.getsockname()[1]}"
        client = RegistryClient(docker_config=docker_config, retries=1, timeout=0.3, backoff=0.01)
        started = time.monotonic()

        with pytest.raises(RegistryTimeout) as caught:
            client.pull(f"{host}/test/busybox:v1", "linux/amd64", store)

    assert caught.value.timeout == 0.3
    assert caught.value.attempts == 2
    assert caught.value.host == host
    assert time.monotonic() - started < 5


def test_retries_after_server_errors(client, store, proxy, busybox_image):
    proxy.fail_next(2, 503)

    image = client.pull(proxy.host + "/test/busybox:v1", "linux/amd64", store)

    assert len(proxy.paths("manifests")) == 3
    assert store.has_blob(image.layers[0].digest)


def test_retry_after_header_honoured(client, store, proxy, busybox_image):
    proxy.fail_next(1, 429, {"Retry-After": "1"})
    started = time.monotonic()

    client.pull(proxy.host + "/test/busybox:v1", "linux/amd64", store)

    assert time.monotonic() - started >= 1


def test_server_errors_exhaust_retries(client, store, proxy, busybox_image):
    proxy.fail_next(10, 500)

    with pytest.raises(RegistryUnavailable) as caught:
        client.pull(proxy.host + "/test/busybox:v1", "linux/amd64", store)

    assert caught.value.attempts == 3
    assert caught.value.reason == "HTTP 500"
    assert len(proxy.requests) == 3


def test_blob_download_retried(client, store, proxy, busybox_image):
    proxy.fail_next(1, 502, path_contains="/blobs/")

    image = client.pull(proxy.host + "/test/busybox:v1", "linux/amd64", store)

    assert store.has_blob(image.layers[0].digest)
    assert len(proxy.paths("blobs")) == 3  # the config twice, then the layer


def test_truncated_blob_retried(client, store, proxy, busybox_image):
    proxy.truncate_next(1, path_contains="/blobs/")

    image = client.pull(proxy.host + "/test/busybox:v1", "linux/amd64", store)

    blob_folder = store.root / "blobs" / "sha256"
    assert store.has_blob(image.layers[0].digest)
    assert len(proxy.paths("blobs")) == 3  # the config twice, then the layer
    assert [path.name for path in blob_folder.iterdir() if path.name.startswith(".")] == []


def test_truncated_manifest_retried(client, store, proxy, busybox_image):
    proxy.truncate_next(1, path_contains="/manifests/")

    client.pull(proxy.host + "/test/busybox:v1", "linux/amd64", store)

    assert len(proxy.paths("manifests")) == 2


# Start-up cost


def test_import_loads_no_http_library():
    code = (
        "import sys, moby_asm.registry, moby_asm.store\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('oras', 'requests')))"
    )

    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)

    assert completed.stdout.strip() == "[]"
