"""Reference normalisation, platform matching, credential lookup and endpoint choice, without a registry."""

from __future__ import annotations

import base64

import pytest

from moby_asm.errors import InputError
from moby_asm.registry import InvalidReference, RegistryClient, parse_reference
from moby_asm.registry.credentials import DOCKER_HUB_SERVER, Credentials, find_credentials
from moby_asm.registry.reference import is_loopback
from moby_asm.store import InvalidPlatform
from moby_asm.store.platforms import matches, parse_platform

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("linuxkit/init:v1.0.0", "docker.io/linuxkit/init:v1.0.0"),
        ("docker.io/busybox", "docker.io/library/busybox:latest"),
        ("index.docker.io/linuxkit/runc:v1", "docker.io/linuxkit/runc:v1"),
        ("127.0.0.1:5000/team/app:v2", "127.0.0.1:5000/team/app:v2"),
        ("localhost/app", "localhost/app:latest"),
        (f"127.0.0.1:5000/app@{DIGEST}", f"127.0.0.1:5000/app@{DIGEST}"),
        (f"linuxkit/init:v1@{DIGEST}", f"docker.io/linuxkit/init:v1@{DIGEST}"),
        ("[::1]:5000/app:v1", "[::1]:5000/app:v1"),
    ],
)
def test_reference_normalised(text, expected):
    assert str(parse_reference(text)) == expected


def test_reference_parts():
    reference = parse_reference(f"127.0.0.1:5000/team/app:v2@{DIGEST}")

    assert reference.domain == "127.0.0.1:5000"
    assert reference.path == "team/app"
    assert reference.tag == "v2"
    assert reference.digest == DIGEST
    assert reference.target == DIGEST


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("Busybox", "'Busybox'"),
        ("app@sha256:abc", "digest"),
        ("app@sha512:" + "0" * 128, "digest"),
        ("team//app", "''"),
        ("app:-bad", "tag"),
        ("host_name:5000/app", "registry host"),
    ],
)
def test_reference_invalid(text, reason):
    with pytest.raises(InvalidReference) as caught:
        parse_reference(text)

    assert reason in caught.value.reason
    assert isinstance(caught.value, InputError)


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("linux/amd64", {"os": "linux", "architecture": "amd64"}),
        ("linux/x86_64", {"os": "linux", "architecture": "amd64"}),
        ("linux/arm64", {"os": "linux", "architecture": "arm64", "variant": "v8"}),
        ("linux/aarch64", {"os": "linux", "architecture": "arm64", "variant": "v8"}),
        ("linux/arm/v6", {"os": "linux", "architecture": "arm", "variant": "v6"}),
        ("Linux/S390X", {"os": "linux", "architecture": "s390x"}),
    ],
)
def test_platform_parsed(platform, expected):
    assert parse_platform(platform) == expected


@pytest.mark.parametrize("platform", ["linux", "linux/amd64/v2/extra", "linux//v7", "linux/amd 64"])
def test_platform_invalid(platform):
    with pytest.raises(InvalidPlatform):
        parse_platform(platform)


def test_platform_matching():
    arm64 = parse_platform("linux/arm64")

    assert matches(arm64, {"os": "linux", "architecture": "arm64"})
    assert matches(arm64, {"os": "linux", "architecture": "arm64", "variant": "v8"})
    assert not matches(arm64, {"os": "linux", "architecture": "arm", "variant": "v7"})
    assert not matches(arm64, {"os": "unknown", "architecture": "unknown"})
    assert not matches(parse_platform("linux/arm/v6"), {"os": "linux", "architecture": "arm"})


def encoded(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_credentials_from_auths():
    config = {"auths": {"127.0.0.1:5000": {"auth": encoded("user", "pass:with:colons")}}}

    assert find_credentials(config, "127.0.0.1:5000") == Credentials("user", "pass:with:colons")
    assert find_credentials(config, "127.0.0.1:5001") is None


def test_docker_hub_credentials_key():
    config = {"auths": {DOCKER_HUB_SERVER: {"auth": encoded("hubuser", "token")}}}

    assert find_credentials(config, "docker.io") == Credentials("hubuser", "token")


def test_invalid_auth_ignored():
    config = {"auths": {"127.0.0.1:5000": {"auth": "not base64!"}}}

    assert find_credentials(config, "127.0.0.1:5000") is None


def test_credentials_repr_hides_password():
    assert "secret" not in repr(Credentials("user", "secret"))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1:5000", True),
        ("127.1.2.3", True),
        ("localhost:5000", True),
        ("[::1]:5000", True),
        ("registry.example:5000", False),
        ("10.0.0.1:5000", False),
    ],
)
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_plain_http_only_for_loopback_and_insecure():
    client = RegistryClient(insecure={"registry.internal:5000"})

    assert client._plain_http("127.0.0.1:5000")
    assert client._plain_http("registry.internal:5000")
    assert not client._plain_http("registry.internal:5001")
    assert not client._plain_http("registry-1.docker.io")


def test_endpoints_with_mirror():
    client = RegistryClient(mirrors={"index.docker.io": "https://127.0.0.1:5000/"})

    assert client.endpoint(parse_reference("busybox")) == "127.0.0.1:5000"
    assert client.endpoint(parse_reference("127.0.0.1:6000/app")) == "127.0.0.1:6000"
    assert RegistryClient().endpoint(parse_reference("busybox")) == "registry-1.docker.io"


def test_mirror_with_path_rejected():
    with pytest.raises(InputError):
        RegistryClient(mirrors={"docker.io": "127.0.0.1:5000/some/prefix"})
